"""A real browser against a real application: headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) uses the Django admin of tests/apps/browser_site, deployed
as Django's "How to use Django with Apache and mod_wsgi" says, in a <VirtualHost> of a Debian
layout (layouts.DebianLayout: sites-available + a2ensite, a2enmod), in embedded and in daemon
mode: it logs in through the CSRF-protected form, adds an object with a file upload, finds it
in the change list, gets the uploaded file back (Alias /media/) and logs out. Admin static
files are the collectstatic output, served by Apache (Alias /static/).

The browser reaches the site by name (browser-site.test, mapped to 127.0.0.1 by Chromium's
--host-resolver-rules): the request must select the site's virtual host, not Debian's
000-default.conf, which answers for 127.0.0.1.

Chromium, chromedriver and selenium missing: a skip, or a failure with CI=true (as conftest.py
treats a missing module). Runs against Debian's mod_wsgi too (RWSGI_TEST_MODULE=modwsgi).
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import _missing
from harness import _pids_in_group
from layouts import DEBIAN_CONFDIR, DebianLayout, join_stoppers, scoreboard_pids

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as Apache runs on a real server"),
]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HOST = "browser-site.test"
USER, PASSWORD = "admin", "correct-horse-battery-staple"
WAIT = 20  # seconds, for any one page to show what is waited for
MODES = ["embedded", "daemon"]


@pytest.fixture(scope="module", autouse=True)
def _background_stops():
    yield
    join_stoppers()


# --------------------------------------------------------------------------------------------
# the browser


def _ppid(pid: int) -> "int | None":
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return int(stat[stat.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _descendants(root: int) -> "set[int]":
    pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    parent = {p: _ppid(p) for p in pids}
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def _is_chrome(pid: int) -> bool:
    """The process is (still) chromedriver or Chromium, not a reused pid."""
    try:
        return b"chrom" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class Browser:
    """Debian's chromedriver in its own process group, driving headless Chromium with a
    throw-away profile. close() quits the session, then SIGKILLs, by PID, whatever is left
    of chromedriver, Chromium and its helper processes."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        # profile, HOME (Chromium keeps "Crash Reports" in ~/.config/chromium whatever the
        # profile) and chromedriver's log: all in one throw-away directory
        self.tmp = tempfile.mkdtemp(prefix="rwsgi-chromium-")
        home = Path(self.tmp, "home")
        home.mkdir()
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",  # as root
            "--disable-dev-shm-usage",
            "--disable-gpu",
            f"--user-data-dir={self.tmp}/profile",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-component-update",
            "--no-proxy-server",
            f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
            "--disable-features=HttpsUpgrades,PasswordLeakDetection",
            "--window-size=1280,1024",
        ):
            opts.add_argument(arg)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home),
               "XDG_CONFIG_HOME": f"{home}/.config", "XDG_CACHE_HOME": f"{home}/.cache"}
        service = Service(CHROMEDRIVER, log_output=f"{self.tmp}/chromedriver.log", env=env,
                          popen_kw={"start_new_session": True})
        self.pids: "set[int]" = set()
        self.driver = None
        self.driver_pid = None
        try:
            self.driver = webdriver.Chrome(service=service, options=opts)
        except BaseException:
            if service.process is not None:
                self.driver_pid = service.process.pid
            with suppress(Exception):
                self.close()
            raise
        self.driver_pid = service.process.pid
        self._remember()
        self.driver.set_page_load_timeout(WAIT)

    def _remember(self):
        """Every process of chromedriver's tree and process group, and any other naming the
        throw-away directory (Chromium's crashpad handlers are reparented to init)."""
        self.pids |= {self.driver_pid} | _descendants(self.driver_pid) | set(_pids_in_group(self.driver_pid))
        needle = self.tmp.encode()
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if needle in Path(f"/proc/{d}/cmdline").read_bytes():
                        self.pids.add(int(d))
                except OSError:
                    pass

    def close(self):
        if self.driver_pid is None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        self._remember()
        if self.driver is not None:
            # quit() asks chromedriver to close Chromium; bounded, whatever state it is in
            t = threading.Thread(target=self._quit, daemon=True)
            t.start()
            t.join(15)
        deadline = time.monotonic() + 5
        while True:
            left = [p for p in self.pids if _is_chrome(p)]
            if not left or time.monotonic() > deadline:
                break
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)
        for p in list(self.pids):  # reap what was our child
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
        assert not [p for p in self.pids if _is_chrome(p)], "Chromium processes left behind"
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _quit(self):
        try:
            self.driver.quit()
        except Exception:
            pass


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (each test starts without cookies)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        _missing(f"browser test needs {' and '.join(missing)} (apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing("browser test needs selenium in the test venv (run scripts/deps)")
    b = Browser()
    try:
        yield b
    finally:
        b.close()


# --------------------------------------------------------------------------------------------
# the site


def _png(width: int = 48, height: int = 48) -> bytes:
    """A real, valid PNG of a few KB (noisy RGB pixels, so it does not compress away)."""
    import random

    rnd = random.Random(1234)
    raw = b"".join(b"\x00" + bytes(rnd.getrandbits(8) for _ in range(width * 3)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def manage(deb: DebianLayout, venv: str, *args: str, env: "dict | None" = None):
    """manage.py in the layout's copy of the project, as www-data (the user Apache's children
    and daemon processes run as, so they own the database and write the uploads)."""
    var = deb.base / "var"
    p = subprocess.run(
        [f"{venv}/bin/python", "manage.py", *args], cwd=deb.apps / "browser_site",
        env={"PATH": "/usr/bin:/bin", "HOME": str(var), "LANG": "C.UTF-8",
             "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
        user="www-data", group="www-data", extra_groups=[],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=120,
    )
    assert p.returncode == 0, f"manage.py {' '.join(args)} failed:\n{p.stdout}"
    return p.stdout


def site_config(deb: DebianLayout, venv: str, mode: str) -> "tuple[str, str]":
    """(conf-available snippet, sites-available site) from Django's mod_wsgi deployment doc:
    WSGIPythonHome/WSGIPythonPath are server-wide (embedded mode); daemon mode gives them to
    WSGIDaemonProcess python-home= python-path= in the virtual host."""
    project = deb.apps / "browser_site"
    var = deb.base / "var"
    if mode == "daemon":
        server_wide = ""
        python = (f"    WSGIDaemonProcess {HOST} python-home={venv} python-path={project}\n"
                  f"    WSGIProcessGroup {HOST}\n")
    else:
        server_wide = f"WSGIPythonHome {venv}\nWSGIPythonPath {project}\n"
        python = ""
    site = f"""<VirtualHost *:{deb.port}>
    ServerName {HOST}
    ServerAdmin webmaster@{HOST}
    ErrorLog ${{APACHE_LOG_DIR}}/{HOST}-error.log
    CustomLog ${{APACHE_LOG_DIR}}/{HOST}-access.log combined

    Alias /media/ {var}/media/
    Alias /static/ {var}/static/

    <Directory {var}/static>
        Require all granted
    </Directory>

    <Directory {var}/media>
        Require all granted
    </Directory>

    WSGIScriptAlias / {project}/bsite/wsgi.py
{python}
    <Directory {project}/bsite>
        <Files wsgi.py>
            Require all granted
        </Files>
    </Directory>
</VirtualHost>
"""
    return server_wide, site


@pytest.fixture
def deployed(rwsgi_path, venv, request):
    """The project deployed on a Debian layout in the test's mode, started; the database
    migrated, a superuser created and the static files collected as www-data first."""
    if not (DEBIAN_CONFDIR / "apache2.conf").exists():
        pytest.skip(f"no Debian Apache configuration in {DEBIAN_CONFDIR}")
    mode = request.node.callspec.params["mode"]
    deb = DebianLayout(rwsgi_path, name=f"browser-{mode}")
    try:
        var = deb.base / "var"
        var.mkdir(mode=0o755)
        (var / "media").mkdir(mode=0o755)
        www = pwd.getpwnam("www-data")
        for d in (var, var / "media"):
            os.chown(d, www.pw_uid, www.pw_gid)
        manage(deb, venv, "migrate", "--noinput", "-v", "0")
        manage(deb, venv, "createsuperuser", "--noinput", "--username", USER,
               "--email", f"{USER}@{HOST}", env={"DJANGO_SUPERUSER_PASSWORD": PASSWORD})
        manage(deb, venv, "collectstatic", "--noinput", "-v", "0")
        assert (var / "static" / "admin" / "css" / "base.css").is_file()

        deb.enable_module()
        server_wide, site = site_config(deb, venv, mode)
        if server_wide:
            deb.add_conf("browser-site-python", server_wide)
        deb.add_site(HOST, site)
        ok, out = deb.configtest()
        assert ok, out
        deb.start()
        yield deb
    finally:
        deb.stop(wait=False)


def logs(deb: DebianLayout) -> str:
    return "\n".join(f"--- {name} ---\n{deb.log(name)[-4000:]}"
                     for name in ("error.log", f"{HOST}-error.log", f"{HOST}-access.log"))


@contextmanager
def explained(b: Browser, deb: DebianLayout):
    """A failure says what the browser showed and what Apache logged."""
    try:
        yield
    except Exception as e:
        try:
            shown = (f"url: {b.driver.current_url}\ntitle: {b.driver.title!r}\n"
                     f"text:\n{b.driver.find_element('tag name', 'body').text[:3000]}")
        except Exception as e2:  # the browser itself is gone
            shown = f"(page unavailable: {e2!r})"
        raise AssertionError(f"{type(e).__name__}: {e}\n--- the browser showed ---\n{shown}\n"
                             f"{logs(deb)}") from e


# --------------------------------------------------------------------------------------------
# the test: one visit of the admin, step by step


class Visit:
    """The browser on the site: find elements, click through pages, wait for what shows."""

    def __init__(self, driver, deb: DebianLayout):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait

        self.d, self.deb, self.By, self.EC = driver, deb, By, EC
        self.base = f"http://{HOST}:{deb.port}"
        self.wait = WebDriverWait(driver, WAIT)

    def css(self, sel):
        return self.d.find_element(self.By.CSS_SELECTOR, sel)

    def all(self, sel):
        return self.d.find_elements(self.By.CSS_SELECTOR, sel)

    def shown(self, sel):
        """Wait until the page has `sel`; the element."""
        return self.wait.until(self.EC.presence_of_element_located((self.By.CSS_SELECTOR, sel)))

    def open(self, path, then_sel):
        self.d.get(self.base + path)
        return self.shown(then_sel)

    def click(self, sel, then_sel):
        """Click (a link or a submit button), wait for the next page and for `then_sel` on it."""
        old = self.css("html")
        self.css(sel).click()
        self.wait.until(self.EC.staleness_of(old))
        return self.shown(then_sel)

    @property
    def path(self) -> str:
        return urlsplit(self.d.current_url).path

    def raw_get(self, path):
        """The harness's raw-socket client, to the site's virtual host."""
        return self.deb.get(path, headers={"Host": f"{HOST}:{self.deb.port}"})


def log_in(v: Visit):
    # GET /admin/ sends the browser to the login form
    v.open("/admin/", "#login-form")
    assert v.path == "/admin/login/" and urlsplit(v.d.current_url).query == "next=/admin/"
    assert v.d.title == "Log in | Django site admin"
    assert v.css("#site-name").text == "Django administration"
    token = v.css("#login-form input[name=csrfmiddlewaretoken]").get_attribute("value")
    assert len(token) == 64, token
    assert v.d.get_cookie("csrftoken") is not None

    # the admin's CSS (collectstatic output, Apache's Alias /static/) reached the browser
    sheets = v.d.execute_script(
        "return Array.from(document.styleSheets).map(s => {"
        " try { return [s.href, s.cssRules.length]; } catch (e) { return [s.href, -1]; } });")
    rules = {urlsplit(h).path: n for h, n in sheets if h}
    assert rules.get("/static/admin/css/base.css", 0) > 10, sheets
    assert rules.get("/static/admin/css/login.css", 0) > 0, sheets

    # the form is CSRF-protected: a POST without the token is refused
    r = v.deb.post("/admin/login/", f"username={USER}&password={PASSWORD}".encode(),
                   headers={"Host": f"{HOST}:{v.deb.port}",
                            "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 403 and b"CSRF verification failed" in r.body, r

    # a wrong password: the form again, with Django's error
    v.css("#id_username").send_keys(USER)
    v.css("#id_password").send_keys("not-the-password")
    note = v.click("#login-form input[type=submit]", ".errornote")
    assert "Please enter the correct username and password for a staff account" in note.text
    assert v.path == "/admin/login/"

    # the right one (the form kept the username)
    v.css("#id_password").send_keys(PASSWORD)
    v.click("#login-form input[type=submit]", "#user-tools")
    assert v.path == "/admin/"
    assert v.css("#content h1").text == "Site administration"
    assert v.css("#user-tools strong").text.lower() == USER  # (CSS: text-transform: uppercase)
    assert v.d.get_cookie("sessionid") is not None


def add_document(v: Visit, title: str, upload: Path) -> str:
    """Add a document from the admin index's "Add" link, uploading `upload`; check the change
    list shows it; returns the uploaded file's URL from the object's change page."""
    v.click(".app-inventory a.addlink[href='/admin/inventory/document/add/']", "#document_form")
    assert v.path == "/admin/inventory/document/add/"
    assert v.css("#content h1").text == "Add document"
    v.css("#id_title").send_keys(title)
    v.css("#id_attachment").send_keys(str(upload))
    message = v.click("#document_form input[name=_save]", ".messagelist .success")
    assert message.text == f"The document “{title}” was added successfully."

    # the change list shows it
    assert v.path == "/admin/inventory/document/"
    assert v.css("#content h1").text == "Select document to change"
    rows = v.all("#result_list tbody tr")
    assert len(rows) == 1
    assert f"uploads/{upload.name}" in rows[0].text
    assert v.css("#result_list tbody tr th a").text == title

    # its change page links the uploaded file (MEDIA_URL)
    current = v.click("#result_list tbody tr th a", ".file-upload a")
    assert v.css("#id_title").get_attribute("value") == title
    assert current.text == f"uploads/{upload.name}"
    return current.get_attribute("href")


def check_uploaded_file(v: Visit, url: str, data: bytes):
    """The file, from Apache's Alias /media/, has the bytes the browser sent."""
    assert urlsplit(url).path == "/media/uploads/rwsgi-upload.png", url
    r = v.raw_get(urlsplit(url).path)
    assert r.status == 200 and r.header("Content-Type") == "image/png", r
    assert r.body == data
    stored = v.deb.base / "var" / "media" / "uploads" / "rwsgi-upload.png"
    assert stored.read_bytes() == data
    assert stored.stat().st_uid == pwd.getpwnam("www-data").pw_uid  # written by the site
    # ... and the browser decodes it as the 48x48 image it is
    v.d.get(url)
    size = v.wait.until(lambda drv: drv.execute_script(
        "const i = document.images[0];"
        " return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null;"))
    assert size == [48, 48]


def log_out(v: Visit):
    # the admin's "Log out" is a POST form with the CSRF token (Django >= 5)
    v.open("/admin/", "#logout-form")
    v.click("#logout-form button[type=submit]", "#content h1")
    assert v.path == "/admin/logout/"
    assert v.css("#content h1").text == "Logged out"
    assert "Thanks for spending some quality time with the web site today." in v.css("#content").text
    assert v.d.get_cookie("sessionid") is None

    # logged out: the admin sends the browser back to the login form
    v.open("/admin/inventory/document/", "#login-form")
    assert v.path == "/admin/login/"
    assert not v.all("#user-tools")


@pytest.mark.parametrize("mode", MODES)
def test_django_admin_in_browser(browser, deployed, mode, tmp_path):
    """Log in (CSRF-protected form), add an object with a file upload, get the file back,
    log out: in a real browser, in embedded and in daemon mode."""
    deb = deployed
    upload = tmp_path / "rwsgi-upload.png"
    png = _png()
    upload.write_bytes(png)

    # 127.0.0.1 is Debian's 000-default.conf: the site is only in its own virtual host
    assert deb.get("/admin/login/").status == 404

    browser.driver.delete_all_cookies()
    v = Visit(browser.driver, deb)
    with explained(browser, deb):
        log_in(v)
        url = add_document(v, f"Quarterly report ({mode})", upload)
        check_uploaded_file(v, url, png)
        log_out(v)

    # the site's virtual host logged it all, and no error was logged
    access = deb.wait_for_file_text(f"{HOST}-access.log", '"POST /admin/logout/ HTTP/1.1" 200')
    assert '"POST /admin/inventory/document/add/ HTTP/1.1" 302' in access
    assert '"GET /static/admin/css/base.css HTTP/1.1" 200' in access
    assert '"GET /media/uploads/rwsgi-upload.png HTTP/1.1" 200' in access
    for name in ("error.log", f"{HOST}-error.log"):
        text = deb.log(name)
        assert "Traceback" not in text and ":error]" not in text, logs(deb)

    if mode == "daemon":
        # a daemon process served: only it has Django (python-home=) and the project
        workers = scoreboard_pids(deb)
        assert set(deb.group_pids()) - workers - {deb.pid}, "no daemon process"
