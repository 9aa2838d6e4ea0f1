"""Deployment shapes: a real Apache in the configuration layouts people actually deploy, each
one started and serving. A server-level WSGIDaemonProcess next to a <VirtualHost> without WSGI
directives (Debian's 000-default.conf) once stopped Apache from starting (commit 9327377);
these tests start Apache the way such sites are laid out rather than one flat httpd.conf.

Debian's layout (a copy of /etc/apache2, modules and confs enabled with a2enmod / a2enconf /
a2ensite) comes from layouts.DebianLayout; the virtual-host, TLS and HTTP/2 shapes use
harness.py's generated httpd.conf with the vhosts in the site config. Every shape runs
against Debian's mod_wsgi 4.9.4 too (RWSGI_TEST_MODULE=modwsgi).
"""
import json
import os
import pwd
import re
import shutil
import subprocess

import pytest

import harness
from layouts import (DEBIAN_CONFDIR, DebianLayout, free_port, join_stoppers, proc_uid,
                     scoreboard_pids, self_signed_cert)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as Apache runs on a real server"),
    pytest.mark.skipif(not shutil.which("curl") or not shutil.which("openssl"),
                       reason="needs curl (with HTTP/2) and openssl"),
]

WWW_DATA = pwd.getpwnam("www-data").pw_uid
MODES = ["daemon", "embedded"]

# Daemon sockets go to DefaultRuntimeDir; like Debian's /var/run/apache2 it is root's, 0755
# (harness.py's own run/ directory belongs to www-data). Debian's mod_wsgi ignores
# DefaultRuntimeDir (/var/run/apache2/wsgi is compiled in): point it at the same directory.
RUNTIME_DIR = "DefaultRuntimeDir {root}/sockets\n" + (
    "WSGISocketPrefix {root}/sockets/wsgi\n" if harness.testing_modwsgi() else "")


@pytest.fixture(scope="module", autouse=True)
def _background_stops():
    yield
    join_stoppers()


@pytest.fixture
def debian(rwsgi_path):
    """Factory of DebianLayout copies, stopped (in the background) after the test."""
    if not (DEBIAN_CONFDIR / "apache2.conf").exists():
        pytest.skip(f"no Debian Apache configuration in {DEBIAN_CONFDIR}")
    made = []

    def factory(name="debian"):
        layout = DebianLayout(rwsgi_path, name=name)
        made.append(layout)
        return layout

    yield factory
    for layout in made:
        layout.stop(wait=False)


def start_site(make_server, config, **kw):
    """A harness server whose daemon sockets live in a root-owned 0755 directory."""
    srv = make_server(RUNTIME_DIR + config, start=False, **kw)
    sockets = srv.root / "sockets"
    sockets.mkdir()
    os.chmod(sockets, 0o755)
    return srv.start()


def environ(server, path="/", host=None, **kw):
    """GET an environ.wsgi mount; the environ it saw, as a dict."""
    headers = {"Host": host} if host else None
    r = server.get(path, headers=headers, **kw)
    assert r.status == 200, (r.status, r.body[:300], server.error_log()[-3000:])
    return r.json()


def curl(url, *args, resolve=(), body=None, timeout=15):
    """curl `url`; returns (status, HTTP version curl used: "1.1" or "2", body bytes)."""
    cmd = ["curl", "-sS", "--max-time", str(timeout), "-w", "\n%{http_code} %{http_version}"]
    for host, port in resolve:
        cmd += ["--resolve", f"{host}:{port}:127.0.0.1"]
    if body is not None:
        cmd += ["--data-binary", "@-", "-H", "Content-Type: application/octet-stream"]
    p = subprocess.run(cmd + list(args) + [url], input=body or b"", capture_output=True,
                       timeout=timeout + 5)
    assert p.returncode == 0, (cmd, p.returncode, p.stderr.decode(errors="replace"))
    out, _, tail = p.stdout.rpartition(b"\n")
    status, version = tail.decode().split()
    return int(status), version, out


def conf_line(path, needle) -> int:
    """1-based number of the first line of `path` holding `needle`."""
    return next(n for n, line in enumerate(open(path).read().splitlines(), 1) if needle in line)


# --------------------------------------------------------------------------------------------
# 1. Debian's own layout


@pytest.mark.parametrize("mode", MODES)
def test_debian_layout_a2enmod_a2enconf(debian, mode):
    """A stock Debian Apache: the module enabled with a2enmod (mods-available/rwsgi.load, as
    the package installs it), the application's WSGIDaemonProcess / WSGIProcessGroup /
    WSGIScriptAlias in a server-wide conf-available/ snippet enabled with a2enconf,
    000-default.conf left as Debian ships it (a vhost with no WSGI directive), logs/run/lock
    dirs from envvars."""
    deb = debian(f"deb-{mode}")
    if (deb.conf / "mods-available" / "wsgi.load").exists():
        # with Debian's mod_wsgi enabled, the package's "# Conflicts: wsgi" stops a2enmod
        assert deb.a2("a2enmod", "-q", "wsgi").returncode == 0
        deb.install_module_files()
        refused = deb.a2("a2enmod", "rwsgi")
        assert refused.returncode != 0, refused.stdout
        assert "Module wsgi is enabled - cannot proceed due to conflicts" in refused.stdout
        assert not deb.module_enabled("rwsgi")
    deb.enable_module()
    assert deb.module_enabled("rwsgi") and not deb.module_enabled("wsgi")
    daemon = "WSGIDaemonProcess mysite threads=4\nWSGIProcessGroup mysite\n" if mode == "daemon" else ""
    deb.add_conf("mysite", f"""{daemon}WSGIScriptAlias / {deb.apps}/environ.wsgi
<Directory {deb.apps}>
    Require all granted
</Directory>
""")
    assert (deb.conf / "conf-enabled" / "mysite.conf").is_symlink()
    assert "WSGI" not in (deb.conf / "sites-enabled" / "000-default.conf").read_text()

    ok, out = deb.configtest()
    assert ok and "Syntax OK" in out, out
    deb.start()
    env = environ(deb, "/shape?x=1")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("", "/shape", "x=1")
    assert env["mod_wsgi.process_group"] == ("mysite" if mode == "daemon" else "")
    # 000-default.conf's CustomLog ${APACHE_LOG_DIR}/access.log: its vhost served the request
    deb.wait_for_file_text("access.log", '"GET /shape?x=1 HTTP/1.1" 200')

    pid = env["x-process"]["pid"]
    assert pid in deb.group_pids() and pid != deb.pid
    assert proc_uid(pid) == WWW_DATA
    workers = scoreboard_pids(deb)  # Debian's mod_status, /server-status (Require local)
    assert workers and workers <= set(deb.group_pids())
    if mode == "daemon":
        assert pid not in workers, "the daemon process group served, not an Apache child"
    else:
        assert pid in workers


# --------------------------------------------------------------------------------------------
# 2. a server-level daemon group, two name-based virtual hosts


@pytest.mark.parametrize("mode", MODES)
def test_server_level_group_used_by_two_vhosts(make_server, mode):
    """The site's WSGI directives at server level (a conf-enabled file), two name-based
    virtual hosts on the same address: one with a WSGI directive of its own, one with none
    at all (Debian's 000-default.conf). Both are served by the one group, each in its own
    interpreter (application group), as mod_wsgi does."""
    daemon = "WSGIDaemonProcess shared threads=4\nWSGIProcessGroup shared\n" if mode == "daemon" else ""
    srv = start_site(make_server, daemon + """
WSGIScriptAlias / {apps}/environ.wsgi
<VirtualHost 127.0.0.1:{port}>
    ServerName a.example
    WSGIScriptAlias /only-a {apps}/environ.wsgi
</VirtualHost>
<VirtualHost 127.0.0.1:{port}>
    ServerName b.example
    DocumentRoot {root}/htdocs
</VirtualHost>
""", name=f"vhosts2-{mode}")
    group = "shared" if mode == "daemon" else ""
    a = environ(srv, "/x", host="a.example")
    a_own = environ(srv, "/only-a/y", host="a.example")
    b = environ(srv, "/x", host="b.example")
    b_other = environ(srv, "/only-a/y", host="b.example")
    for env in (a, a_own, b, b_other):
        assert env["mod_wsgi.process_group"] == group
    assert (a["SERVER_NAME"], b["SERVER_NAME"]) == ("a.example", "b.example")
    assert (a["mod_wsgi.application_group"], b["mod_wsgi.application_group"]) == ("a.example|", "b.example|")
    assert (a_own["SCRIPT_NAME"], a_own["PATH_INFO"]) == ("/only-a", "/y")
    # a vhost's own mount is not the other vhost's
    assert (b_other["SCRIPT_NAME"], b_other["PATH_INFO"]) == ("", "/only-a/y")
    if mode == "daemon":
        # processes=1: one daemon process serves both virtual hosts
        assert len({e["x-process"]["pid"] for e in (a, a_own, b, b_other)}) == 1


# --------------------------------------------------------------------------------------------
# 3. one daemon group per virtual host


def test_group_per_vhost(make_server):
    """Hosting several sites: each <VirtualHost> declares its own WSGIDaemonProcess. Each
    vhost is served by its own group; a group declared in vhost A cannot be used from
    vhost B (another ServerName): mod_wsgi answers 500 and logs "Daemon process called 'x'
    cannot be accessed by this WSGI application"."""
    srv = start_site(make_server, """
<VirtualHost 127.0.0.1:{port}>
    ServerName a.example
    WSGIDaemonProcess site-a threads=2
    WSGIProcessGroup site-a
    WSGIScriptAlias / {apps}/environ.wsgi
</VirtualHost>
<VirtualHost 127.0.0.1:{port}>
    ServerName b.example
    WSGIDaemonProcess site-b threads=2
    WSGIProcessGroup site-b
    WSGIScriptAlias /steal {apps}/environ.wsgi process-group=site-a
    WSGIScriptAlias / {apps}/environ.wsgi
</VirtualHost>
""", name="vhost-groups")
    a = environ(srv, "/", host="a.example")
    b = environ(srv, "/", host="b.example")
    assert (a["mod_wsgi.process_group"], b["mod_wsgi.process_group"]) == ("site-a", "site-b")
    assert a["x-process"]["pid"] != b["x-process"]["pid"]

    mark = srv.log_mark()
    r = srv.get("/steal", headers={"Host": "b.example"})
    assert r.status == 500, r
    srv.wait_for_log("Daemon process called 'site-a' cannot be accessed by this WSGI application",
                     since=mark)
    assert environ(srv, "/", host="a.example")["mod_wsgi.process_group"] == "site-a"


# --------------------------------------------------------------------------------------------
# 4. the same group name in two virtual hosts


def two_sites_declaring(debian, group):
    """Debian layout with sites-available/site-a.conf and site-b.conf (a2ensite), the second
    copied from the first: both declare WSGIDaemonProcess `group`. Returns the layout and the
    result of `apache2 -t`."""
    deb = debian("dup")
    deb.enable_module()
    for name in ("a", "b"):
        deb.add_site(f"site-{name}", f"""<VirtualHost *:{deb.port}>
    ServerName {name}.example
    WSGIDaemonProcess {group} threads=2
    WSGIProcessGroup {group}
    WSGIScriptAlias / {deb.apps}/environ.wsgi
</VirtualHost>
""")
    return (deb, *deb.configtest())


def test_duplicate_group_name_in_two_sites_fails_configtest(debian):
    """Two sites copied from one another, both declaring WSGIDaemonProcess example:
    `apache2 -t` fails, naming the second file and line, with mod_wsgi's "Name duplicates
    previous WSGI daemon definition"."""
    deb, ok, out = two_sites_declaring(debian, "example")
    assert not ok, out
    second = deb.conf / "sites-enabled" / "site-b.conf"
    assert f"Syntax error on line {conf_line(second, 'WSGIDaemonProcess')} of {second}:" in out, out
    assert "Name duplicates previous WSGI daemon definition" in out, out


@pytest.mark.rwsgi_specific(reason="mod_wsgi names only the second declaration")
def test_duplicate_group_name_names_first_declaration(debian):
    """The same mistake: rwsgi's message also says where the name was first declared."""
    deb, ok, out = two_sites_declaring(debian, "example")
    assert not ok, out
    first = deb.conf / "sites-enabled" / "site-a.conf"
    assert f"first declared at {first}:{conf_line(first, 'WSGIDaemonProcess')}" in out, out


# --------------------------------------------------------------------------------------------
# 5. HTTPS (mod_ssl) and HTTP virtual hosts of one site

SITE_HTTP_HTTPS = """
Listen 127.0.0.1:{tls} https
{server_level}
<VirtualHost 127.0.0.1:{port}>
    ServerName www.example
{http_vhost}
    WSGIScriptAlias /edge {apps}/edge.wsgi
    WSGIScriptAlias / {apps}/environ.wsgi
</VirtualHost>
<VirtualHost 127.0.0.1:{tls}>
    ServerName www.example
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}
    SSLOptions +StdEnvVars
{https_vhost}
    WSGIScriptAlias /edge {apps}/edge.wsgi
    WSGIScriptAlias / {apps}/environ.wsgi
</VirtualHost>
"""

GROUP_SHAPES = {
    # a server-level group both vhosts use
    "server-group": ("WSGIDaemonProcess www threads=4\nWSGIProcessGroup www", "", ""),
    # mod_wsgi's documented pattern: declared in the :80 vhost, used by the :443 vhost of the
    # same ServerName
    "vhost-group": ("", "    WSGIDaemonProcess www threads=4\n    WSGIProcessGroup www",
                    "    WSGIProcessGroup www"),
    "embedded": ("", "", ""),
}


def site_http_https(tmp_path, shape, extra=""):
    cert, key = self_signed_cert(tmp_path, "www.example")
    tls = free_port()
    server_level, http_vhost, https_vhost = GROUP_SHAPES[shape]
    config = extra + SITE_HTTP_HTTPS.format(
        tls=tls, server_level=server_level, http_vhost=http_vhost, https_vhost=https_vhost,
        cert=cert, key=key, port="{port}", apps="{apps}")
    return config, tls, cert


@pytest.mark.parametrize("shape", list(GROUP_SHAPES))
def test_https_vhost_and_http_vhost(make_server, tmp_path, shape):
    """A site on HTTP and HTTPS: a mod_ssl <VirtualHost> (self-signed certificate,
    SSLOptions +StdEnvVars) next to the plain one, the same application in both, sharing one
    daemon group. The app sees wsgi.url_scheme https and mod_ssl's variables; like mod_wsgi,
    rwsgi does not pass mod_ssl's HTTPS=on itself (wsgi.url_scheme carries it)."""
    config, tls, cert = site_http_https(tmp_path, shape)
    srv = start_site(make_server, config, name=f"https-{shape}", load_modules=["ssl"])
    group = "" if shape == "embedded" else "www"

    status, version, body = curl(f"https://www.example:{tls}/secure?q=1", "--http1.1",
                                 "--cacert", str(cert), resolve=[("www.example", tls)])
    assert (status, version) == (200, "1.1"), body[:300]
    tls_env = json.loads(body)
    assert tls_env["wsgi.url_scheme"] == "https"
    assert "HTTPS" not in tls_env  # mod_wsgi 4.9.4 drops it too
    assert tls_env["SSL_PROTOCOL"].startswith("TLSv1")
    assert tls_env["SERVER_PORT"] == str(tls)
    assert (tls_env["SERVER_NAME"], tls_env["PATH_INFO"]) == ("www.example", "/secure")
    assert tls_env["mod_wsgi.process_group"] == group

    # a body through mod_ssl both ways (in daemon mode through the shared-memory rings, which
    # Apache's filters read and fill in place)
    data = os.urandom(1024 * 1024 + 7)
    status, version, echoed = curl(f"https://www.example:{tls}/edge?t=echo", "--http1.1",
                                   "--cacert", str(cert), resolve=[("www.example", tls)],
                                   body=data)
    assert (status, version) == (200, "1.1") and echoed == data

    plain = environ(srv, "/plain", host=f"www.example:{srv.port}")
    assert plain["wsgi.url_scheme"] == "http" and "SSL_PROTOCOL" not in plain
    assert plain["mod_wsgi.process_group"] == group
    if group:
        # processes=1: the same daemon process serves both vhosts
        assert plain["x-process"]["pid"] == tls_env["x-process"]["pid"]


# --------------------------------------------------------------------------------------------
# 6. HTTP/2 (mod_http2): h2c on the plain port, h2 over TLS


@pytest.mark.parametrize("mode", MODES)
def test_http2(make_server, tmp_path, mode):
    """`Protocols h2 h2c http/1.1` (mod_http2) on the site of the previous shape: the app is
    reached over HTTP/2 with prior knowledge on the plain port and by ALPN over TLS, gets
    SERVER_PROTOCOL HTTP/2.0 (what mod_wsgi gives: Apache's r->protocol), and a request body
    larger than HTTP/2's initial flow-control window arrives whole."""
    shape = "server-group" if mode == "daemon" else "embedded"
    config, tls, cert = site_http_https(tmp_path, shape, extra="Protocols h2 h2c http/1.1\n")
    srv = start_site(make_server, config, name=f"h2-{mode}", load_modules=["ssl", "http2"])
    group = "www" if mode == "daemon" else ""
    resolve = [("www.example", srv.port), ("www.example", tls)]

    h2c = f"http://www.example:{srv.port}/h2c"
    status, version, body = curl(h2c, "--http2-prior-knowledge", resolve=resolve)
    assert (status, version) == (200, "2"), body[:300]
    env = json.loads(body)
    assert (env["SERVER_PROTOCOL"], env["wsgi.url_scheme"]) == ("HTTP/2.0", "http")
    assert env["mod_wsgi.process_group"] == group

    status, version, body = curl(f"https://www.example:{tls}/h2", "--http2", "--cacert", str(cert),
                                 resolve=resolve)
    assert (status, version) == (200, "2"), body[:300]
    env = json.loads(body)
    assert (env["SERVER_PROTOCOL"], env["wsgi.url_scheme"]) == ("HTTP/2.0", "https")
    assert env["mod_wsgi.process_group"] == group

    # the same URL over HTTP/1.1 still says HTTP/1.1
    status, version, body = curl(h2c, "--http1.1", resolve=resolve)
    assert (status, version, json.loads(body)["SERVER_PROTOCOL"]) == (200, "1.1", "HTTP/1.1")

    data = os.urandom(300 * 1024)
    status, version, body = curl(f"http://www.example:{srv.port}/edge?t=echo",
                                 "--http2-prior-knowledge", resolve=resolve, body=data)
    assert (status, version) == (200, "2")
    assert body == data
    # and over TLS: mod_http2 and mod_ssl both between the app and the client
    data = os.urandom(1024 * 1024 + 7)
    status, version, body = curl(f"https://www.example:{tls}/edge?t=echo", "--http2",
                                 "--cacert", str(cert), resolve=resolve, body=data)
    assert (status, version) == (200, "2")
    assert body == data


# --------------------------------------------------------------------------------------------
# 7. the configurations of Django's and Flask's deployment docs


@pytest.mark.parametrize("mode", MODES)
def test_django_docs_config(debian, venv, mode):
    """Django's "How to use Django with Apache and mod_wsgi", on Debian's layout
    (conf-available/django.conf, a2enconf): WSGIScriptAlias / .../djsite/wsgi.py (the
    startproject wsgi.py, which leaves sys.path alone) with WSGIPythonHome + WSGIPythonPath
    (embedded), or WSGIDaemonProcess example.com python-home= python-path= +
    WSGIProcessGroup example.com (daemon), and <Directory> <Files wsgi.py> Require all
    granted, which Debian's <Directory /> Require all denied makes necessary. Django is importable only from the
    venv, djsite only from the python path: a page proves both reached the Python that
    served it (in daemon mode, only the daemon has them)."""
    deb = debian(f"django-{mode}")
    deb.enable_module()
    project = deb.apps / "django_site"
    if mode == "daemon":
        python = (f"WSGIDaemonProcess example.com python-home={venv} python-path={project}\n"
                  "WSGIProcessGroup example.com")
    else:
        python = f"WSGIPythonHome {venv}\nWSGIPythonPath {project}"
    deb.add_conf("django", f"""# (not from the docs: a script outside the granted <Files>)
WSGIScriptAlias /not-granted {deb.apps}/hello.wsgi

WSGIScriptAlias / {project}/djsite/wsgi.py
{python}

<Directory {project}/djsite>
<Files wsgi.py>
Require all granted
</Files>
</Directory>
""")
    ok, out = deb.configtest()
    assert ok, out
    deb.start()
    r = deb.get("/?name=Grace")
    assert r.status == 200, (r.status, r.body[:300], deb.error_log()[-3000:])
    assert b"<h1>Hello, Grace!</h1>" in r.body and b"<li>ALPHA</li>" in r.body
    r = deb.get("/api/json?x=1")
    assert r.status == 200 and r.json() == {
        "framework": "django", "method": "GET", "path": "/api/json", "path_info": "/api/json",
        "script_name": "", "query": {"x": "1"}, "host": f"127.0.0.1:{deb.port}",
        "is_secure": False,
    }
    r = deb.post("/form", b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200 and r.json()["form"] == {"a": "1"}
    # Debian's <Directory /> Require all denied still holds for what the docs do not grant
    assert deb.get("/not-granted").status == 403
    if mode == "daemon":
        workers = scoreboard_pids(deb)
        assert set(deb.group_pids()) - workers - {deb.pid}, "no daemon process"


def test_flask_docs_config(debian, venv):
    """Flask's mod_wsgi deployment docs, as a Debian site (sites-available, a2ensite):
    <VirtualHost> ServerName example.com, WSGIDaemonProcess yourapplication user=www-data
    group=www-data threads=5 (+ python-home= for the venv), WSGIScriptAlias / to a .wsgi that
    imports the Flask app, <Directory> with WSGIProcessGroup, WSGIApplicationGroup %{GLOBAL},
    Require all granted. Debian's 000-default.conf still answers for other host names."""
    deb = debian("flask")
    deb.enable_module()
    deb.add_site("yourapplication", f"""<VirtualHost *:{deb.port}>
    ServerName example.com
    WSGIDaemonProcess yourapplication user=www-data group=www-data threads=5 python-home={venv}
    WSGIScriptAlias / {deb.apps}/flask_docs.wsgi

    <Directory {deb.apps}>
        WSGIProcessGroup yourapplication
        WSGIApplicationGroup %{{GLOBAL}}
        Require all granted
    </Directory>
</VirtualHost>
""")
    ok, out = deb.configtest()
    assert ok, out
    deb.start()
    site = {"Host": "example.com"}
    r = deb.get("/", headers=site)
    assert (r.status, r.body) == (200, b"flask index"), (r, deb.error_log()[-3000:])
    r = deb.get("/json?a=1", headers=site)
    assert r.status == 200 and r.json()["url"] == "http://example.com/json?a=1"
    pid = int(deb.get("/pid", headers=site).body)
    assert pid in deb.group_pids() and pid not in scoreboard_pids(deb)
    assert proc_uid(pid) == WWW_DATA
    # threads=5: the daemon process runs the request threads (plus its own)
    threads = int(re.search(r"(?m)^Threads:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))
    assert threads >= 5
    # any other name: Debian's 000-default.conf (static files), not the Flask site
    other = deb.get("/")
    assert other.body != b"flask index"
