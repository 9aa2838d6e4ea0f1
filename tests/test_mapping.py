"""URL mapping: WSGIScriptAlias / WSGIScriptAliasMatch / AddHandler / SetHandler.

Expected values are mod_wsgi 4.9.4's (reference/mod_wsgi.md section 2.2),
verified against Debian's module.
"""
import os
import shutil

import pytest

from conftest import MODES, in_mode


CONFIG = r"""
# first match wins: the longer prefix is declared first here ...
WSGIScriptAlias /first/second {apps}/hello.wsgi
WSGIScriptAlias /first {apps}/environ.wsgi
# ... and second here, so /order swallows /order/inner
WSGIScriptAlias /order {apps}/environ.wsgi
WSGIScriptAlias /order/inner {apps}/hello.wsgi

WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /slash/ {apps}/environ.wsgi/
WSGIScriptAlias /dir/ {apps}/
WSGIScriptAlias /gone {apps}/does-not-exist.wsgi
WSGIScriptAliasMatch ^/match/([^/]+) {apps}/$1.wsgi
WSGIScriptAliasMatch ^/(alpha|beta) {apps}/environ.wsgi/$1

# mod_alias translates before mod_wsgi: Alias wins over WSGIScriptAlias /
Alias /files {root}/htdocs

Alias /cgi {root}/cgi
<Directory {root}/cgi>
    AddHandler wsgi-script .wsgi
    Options +ExecCGI
</Directory>
Alias /noexec {root}/noexec
<Directory {root}/noexec>
    AddHandler wsgi-script .wsgi
    Options None
</Directory>
Alias /sethandler {root}/sh
<Directory {root}/sh>
    SetHandler wsgi-script
    Options +ExecCGI
</Directory>

WSGIScriptAlias / {apps}/environ.wsgi
"""


@pytest.fixture(scope="module", params=MODES)
def srv(request, rwsgi_path):
    from harness import ApacheServer, started

    s = ApacheServer(rwsgi_path, config=in_mode(CONFIG, request.param), name=f"mapping-{request.param}")
    for d in ("cgi", "noexec", "sh"):
        os.makedirs(s.root / d)
        for f in ("environ.wsgi", "hello.wsgi"):
            shutil.copy(s.apps / f, s.root / d / f)
            os.chmod(s.root / d / f, 0o644)
        os.chmod(s.root / d, 0o755)
    started(s)
    s.mode = request.param
    yield s
    s.stop(wait=False)


# (request path, SCRIPT_NAME, PATH_INFO)
TABLE = [
    ("/env", "/env", ""),
    ("/env/", "/env", "/"),
    ("/env/x", "/env", "/x"),
    ("/env/a//b?x=1", "/env", "/a/b"),  # runs of slashes collapsed in PATH_INFO
    ("/env//a///b", "/env", "/a/b"),
    ("//env/a", "/env", "/a"),  # MergeSlashes (default On) for the prefix
    ("/env/%7Euser/a%20b", "/env", "/~user/a b"),  # percent-decoded
    ("/env/%41b", "/env", "/Ab"),
    # UTF-8 bytes are decoded as Latin-1 (PEP 3333 "bytes as latin-1 str")
    ("/env/caf%C3%A9", "/env", "/caf\u00c3\u00a9"),
    ("/envx", "", "/envx"),  # prefix must end on a segment boundary -> "/" mount
    ("/", "", "/"),  # root mount
    ("/some/path", "", "/some/path"),
    ("/slash", "", "/slash"),  # "/slash/" alias does not match "/slash" -> "/" mount
    ("/slash/", "/slash", "/"),
    ("/slash/x", "/slash", "/x"),
    ("/dir/environ.wsgi", "/dir/environ.wsgi", ""),  # directory of scripts
    ("/dir/environ.wsgi/p/q", "/dir/environ.wsgi", "/p/q"),
    ("/match/environ/p/q", "/match/environ", "/p/q"),  # AliasMatch with $1
    ("/match/environ", "/match/environ", ""),
    ("/alpha/zz", "", "/alpha/zz"),  # keep-prefix trick: $1 appended to the target
    ("/beta", "", "/beta"),
    ("/first/x", "/first", "/x"),
    ("/order/inner/x", "/order", "/inner/x"),  # /order declared first swallows it
    ("/cgi/environ.wsgi/pi", "/cgi/environ.wsgi", "/pi"),  # AddHandler + ExecCGI
    ("/sethandler/environ.wsgi/x", "/sethandler/environ.wsgi", "/x"),  # SetHandler
]


@pytest.mark.parametrize("path,script_name,path_info", TABLE, ids=[t[0] for t in TABLE])
def test_script_name_path_info(srv, path, script_name, path_info):
    r = srv.get(path)
    assert r.status == 200, r
    env = r.json()
    assert env["SCRIPT_NAME"] == script_name
    assert env["PATH_INFO"] == path_info
    # REQUEST_URI is the raw request target (undecoded, uncollapsed, with query)
    assert env["REQUEST_URI"] == path
    assert env["QUERY_STRING"] == (path.split("?", 1)[1] if "?" in path else "")
    # the pre-proxy-header copies
    assert env["mod_wsgi.script_name"] == script_name
    assert env["mod_wsgi.path_info"] == path_info
    # %{RESOURCE} default application group: ServerName:port|SCRIPT_NAME
    assert env["mod_wsgi.application_group"] == f"127.0.0.1:{srv.port}|{script_name}"
    assert env["mod_wsgi.request_handler"] == "wsgi-script"


@pytest.mark.rwsgi_specific("PATH_TRANSLATED is left out (as mod_wsgi 6); mod_wsgi 4.9 sets it")
@pytest.mark.parametrize("path", ["/env/x", "/dir/environ.wsgi/p/q"])
def test_no_path_translated(srv, path):
    """Apache would compute it with a sub-request per request (translation, access hooks, a
    directory walk), for a CGI variable WSGI applications do not use."""
    r = srv.get(path)
    assert r.status == 200, r
    assert "PATH_TRANSLATED" not in r.json()


def test_script_filename(srv):
    assert srv.get("/env/x").json()["SCRIPT_FILENAME"] == str(srv.apps / "environ.wsgi")
    assert srv.get("/cgi/environ.wsgi").json()["SCRIPT_FILENAME"] == str(srv.root / "cgi" / "environ.wsgi")
    assert srv.get("/match/environ/z").json()["SCRIPT_FILENAME"] == str(srv.apps / "environ.wsgi")


def test_first_match_wins_longer_first(srv):
    r = srv.get("/first/second/x")
    assert r.status == 200 and r.body == b"Hello, World!"


def test_alias_match_other_script(srv):
    r = srv.get("/match/hello")
    assert r.status == 200 and r.body == b"Hello, World!"


@pytest.mark.parametrize("path", ["/env%2Fx", "/env/a%2Fb"])
def test_encoded_slash_is_404(srv, path):
    # AllowEncodedSlashes Off (default): Apache rejects before the handler
    assert srv.get(path).status == 404


def test_alias_beats_root_mount(srv):
    r = srv.get("/files/static.txt")
    assert r.status == 200
    assert r.body == b"static file\n"


def test_missing_script_alias_404(srv):
    mark = srv.log_mark()
    r = srv.get("/gone/x")
    assert r.status == 404
    srv.wait_for_log("does-not-exist.wsgi", since=mark)


@pytest.mark.parametrize("path,missing", [
    ("/dir/missing.wsgi", "apps/missing.wsgi"),
    ("/match/nothere/x", "apps/nothere.wsgi"),
    ("/cgi/missing.wsgi", "cgi/missing.wsgi"),
])
def test_missing_script_404(srv, path, missing):
    mark = srv.log_mark()
    assert srv.get(path).status == 404
    # mod_wsgi: "Target WSGI script not found or unable to stat: <path>"
    srv.wait_for_log(missing, since=mark)


def test_directory_itself_is_403(srv):
    mark = srv.log_mark()
    assert srv.get("/dir/").status == 403
    # mod_wsgi: "Attempt to invoke directory as WSGI application: <dir>/"
    srv.wait_for_log(str(srv.apps), since=mark)


def test_addhandler_without_execcgi_is_403(srv):
    mark = srv.log_mark()
    r = srv.get("/noexec/environ.wsgi")
    assert r.status == 403
    # mod_wsgi: "Options ExecCGI is off in this directory: <file>"
    srv.wait_for_log("ExecCGI", since=mark)


def test_addhandler_serves_other_script(srv):
    r = srv.get("/cgi/hello.wsgi")
    assert r.status == 200 and r.body == b"Hello, World!"


def test_header_names_with_underscores_dropped(srv):
    r = srv.get("/env", headers=[("X-Dash", "2"), ("X_Under", "1"), ("X-Multi", "a"), ("X-Multi", "b")])
    env = r.json()
    assert env["HTTP_X_DASH"] == "2"
    # names with characters outside [A-Za-z0-9-] are dropped (anti-spoofing)
    assert "HTTP_X_UNDER" not in env or env["HTTP_X_UNDER"] != "1"
    # duplicates are comma-joined by Apache
    assert env["HTTP_X_MULTI"] == "a, b"


def test_authorization_hidden_by_default(srv):
    env = srv.get("/env", headers={"Authorization": "Basic dXNlcjpwYXNz"}).json()
    assert "HTTP_AUTHORIZATION" not in env


def test_proxy_header_never_exposed(srv):
    env = srv.get("/env", headers={"Proxy": "http://evil.invalid/"}).json()
    assert "HTTP_PROXY" not in env


# --------------------------------------------------------------------------
# A WSGIScriptAlias to a file maps the rest of the URL to path info itself (Apache's walk
# then stats the script once instead of every directory above it). What the walk decides
# must not change: a script that goes away, becomes a directory, or sits behind a symbolic
# link that Options forbid (the mapping happens in the Apache child whatever the mode).

WALK = r"""
WSGIScriptAlias /t {root}/t/app.wsgi
WSGIScriptAlias /sym {root}/link/app.wsgi
# the directory that holds the link decides
<Directory {root}>
    Options -FollowSymLinks
</Directory>
"""


@pytest.fixture
def walk_srv(rwsgi_path):
    from harness import ApacheServer, started

    s = ApacheServer(rwsgi_path, config=WALK, name="mapping-walk")
    for d in ("t", "real"):
        os.makedirs(s.root / d)
        shutil.copy(s.apps / "environ.wsgi", s.root / d / "app.wsgi")
        os.chmod(s.root / d / "app.wsgi", 0o644)
        os.chmod(s.root / d, 0o755)
    os.symlink(s.root / "real", s.root / "link")
    yield started(s)
    s.stop(wait=False)


def test_a_file_target_keeps_its_path_info_when_it_goes_away_or_becomes_a_directory(walk_srv):
    s = walk_srv
    env = s.get("/t/p/q").json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/t", "/p/q")
    assert env["SCRIPT_FILENAME"] == str(s.root / "t" / "app.wsgi")

    os.unlink(s.root / "t" / "app.wsgi")
    mark = s.log_mark()
    assert s.get("/t/p/q").status == 404
    s.wait_for_log(f"Target WSGI script not found or unable to stat: {s.root}/t/app.wsgi", since=mark)

    # now a directory: the walk looks inside it, as for an alias to a directory
    os.makedirs(s.root / "t" / "app.wsgi")
    shutil.copy(s.apps / "environ.wsgi", s.root / "t" / "app.wsgi" / "p")
    os.chmod(s.root / "t" / "app.wsgi", 0o755)
    os.chmod(s.root / "t" / "app.wsgi" / "p", 0o644)
    r = s.get("/t/p/q")
    assert r.status == 200, (r, s.error_log()[-2000:])
    env = r.json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/t/p", "/q")
    assert env["SCRIPT_FILENAME"] == str(s.root / "t" / "app.wsgi" / "p")


def test_a_file_target_behind_a_forbidden_symlink_is_still_refused(walk_srv):
    mark = walk_srv.log_mark()
    assert walk_srv.get("/sym/x").status == 403
    walk_srv.wait_for_log("Symbolic link not allowed", since=mark)
