"""Real frameworks from the test venv (WSGIPythonHome): Flask, Django, Falcon,
Bottle and a werkzeug Request/Response app (PyO3 packages: test_interpreters.py)."""
import hashlib
import json

import pytest

from harness import start_server

CONFIG = """
WSGIPythonHome {venv}
WSGIScriptAlias /flask {apps}/flask_app.py
WSGIScriptAlias /django {apps}/django_site/wsgi.py
WSGIScriptAlias /falcon {apps}/falcon_app.py
WSGIScriptAlias /bottle {apps}/bottle_app.py
WSGIScriptAlias /wz {apps}/werkzeug_demo.py
WSGIScriptAlias /env {apps}/environ.wsgi
"""


@pytest.fixture(scope="module")
def srv(rwsgi_path, venv):
    s = start_server(rwsgi_path, CONFIG, name="frameworks")
    yield s
    s.stop(wait=False)


def test_venv_is_used(srv, venv):
    env = srv.get("/env").json()
    assert env["x-process"]["executable_prefix"] == venv
    assert env["x-process"]["python"] == "3.11"


# --------------------------------------------------------------------------
# Flask


def test_flask_index(srv):
    r = srv.get("/flask/")
    assert (r.status, r.body) == (200, b"flask index")
    assert r.header("Content-Type") == "text/html; charset=utf-8"


def test_flask_template(srv):
    r = srv.get("/flask/hello/Ada%20L")
    assert r.status == 200
    assert b"<h1>Hello, Ada L!</h1>" in r.body
    assert b"<ul><li>a</li><li>b</li><li>c</li></ul>" in r.body


def test_flask_json(srv):
    r = srv.get("/flask/json?a=1&b=two")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    assert r.json() == {
        "framework": "flask",
        "method": "GET",
        "path": "/json",
        "script_root": "/flask",
        "url": f"http://127.0.0.1:{srv.port}/flask/json?a=1&b=two",
        "args": {"a": "1", "b": "two"},
    }


def test_flask_form_post(srv):
    r = srv.post("/flask/form", b"name=Ada&lang=py%2Brs",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200
    assert r.json() == {"form": {"name": "Ada", "lang": "py+rs"},
                        "content_type": "application/x-www-form-urlencoded"}


def test_flask_upload_chunked_and_plain(srv):
    data = bytes(range(256)) * 1000
    r = srv.post("/flask/upload", data, headers={"Content-Type": "application/octet-stream"})
    assert r.json() == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_flask_cookies_and_headers(srv):
    r = srv.get("/flask/headers")
    assert r.status == 200 and r.body == b"with headers"
    assert r.header("X-Custom") == "custom-value"
    cookies = r.header_all("Set-Cookie")
    assert len(cookies) == 2
    assert cookies[0].startswith("session=abc123") and "HttpOnly" in cookies[0]
    assert cookies[1].startswith("theme=dark")


def test_flask_404_and_status(srv):
    r = srv.get("/flask/nope")
    assert r.status == 404 and b"Not Found" in r.body
    assert srv.get("/flask/status/418").status == 418


def test_flask_view_error_logged(srv):
    mark = srv.log_mark()
    r = srv.get("/flask/error")
    assert r.status == 500
    assert b"Internal Server Error" in r.body  # Flask's own 500 page
    srv.wait_for_log("flask view failed on purpose", since=mark)


# --------------------------------------------------------------------------
# Django


def test_django_template(srv):
    r = srv.get("/django/?name=Grace")
    assert r.status == 200
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert b"<h1>Hello, Grace!</h1>" in r.body
    assert b"<li>ALPHA</li><li>BETA</li><li>GAMMA</li>" in r.body
    assert b"count=3" in r.body


def test_django_json(srv):
    r = srv.get("/django/api/json?x=1")
    assert r.status == 200
    assert r.json() == {
        "framework": "django",
        "method": "GET",
        "path": "/django/api/json",
        "path_info": "/api/json",
        "script_name": "/django",
        "query": {"x": "1"},
        "host": f"127.0.0.1:{srv.port}",
        "is_secure": False,
    }


def test_django_form_post(srv):
    r = srv.post("/django/form", b"a=1&b=%C3%A9t%C3%A9",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200
    assert r.json() == {"form": {"a": "1", "b": "\u00e9t\u00e9"},
                        "content_type": "application/x-www-form-urlencoded"}


def test_django_404(srv):
    r = srv.get("/django/nope")
    assert r.status == 404 and b"Not Found" in r.body


def test_django_500_logged(srv):
    mark = srv.log_mark()
    r = srv.get("/django/error")
    assert r.status == 500 and b"Server Error (500)" in r.body
    # Django's logger writes the traceback to stderr -> error log
    srv.wait_for_log("django view failed on purpose", since=mark)
    assert "Internal Server Error: /django/error" in srv.error_log_since(mark)


# --------------------------------------------------------------------------
# Falcon


def test_falcon_collection(srv):
    r = srv.get("/falcon/things?limit=5")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    assert r.json() == {"framework": "falcon", "things": [1, 2, 3], "params": {"limit": "5"}}


def test_falcon_item(srv):
    r = srv.get("/falcon/things/42")
    assert r.json() == {"id": "42", "path": "/things/42", "relative_uri": "/falcon/things/42"}


def test_falcon_post_json(srv):
    r = srv.post("/falcon/things", json.dumps({"name": "widget", "n": 3}).encode(),
                 headers={"Content-Type": "application/json"})
    assert r.status == 201
    assert r.json() == {"created": {"name": "widget", "n": 3}}


def test_falcon_404(srv):
    r = srv.get("/falcon/things/missing")
    assert r.status == 404 and r.json() == {"title": "no such thing"}
    assert srv.get("/falcon/nowhere").status == 404


def test_falcon_text(srv):
    r = srv.get("/falcon/text")
    assert r.status == 200 and r.body == b"falcon text"


# --------------------------------------------------------------------------
# Bottle


def test_bottle_routes(srv):
    assert srv.get("/bottle/").body == b"bottle index"
    assert srv.get("/bottle/hello/x%20y").body == b"<b>Hello x y</b> 3 items"
    r = srv.get("/bottle/json?q=1")
    assert r.json() == {"framework": "bottle", "path": "/json", "script_name": "/bottle/",
                        "query": {"q": "1"}}


def test_bottle_form_and_404(srv):
    r = srv.post("/bottle/form", b"k=v&x=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json() == {"form": {"k": "v", "x": "1"}}
    r = srv.get("/bottle/nope")
    assert r.status == 404 and b"Not Found" in r.body


# --------------------------------------------------------------------------
# werkzeug


def test_werkzeug_get(srv):
    r = srv.get("/wz/p/q?a=1&a=2&b=x", headers={"User-Agent": "rwsgi-test/1", "Cookie": "c1=v1; c2=v2"})
    assert r.status == 200 and r.header("X-Demo") == "werkzeug"
    d = r.json()
    assert d["method"] == "GET"
    assert d["path"] == "/p/q"
    assert d["script_root"] == "/wz"
    assert d["full_path"] == "/p/q?a=1&a=2&b=x"
    assert d["url"] == f"http://127.0.0.1:{srv.port}/wz/p/q?a=1&a=2&b=x"
    assert d["args"] == {"a": ["1", "2"], "b": ["x"]}
    assert d["cookies"] == {"c1": "v1", "c2": "v2"}
    assert d["user_agent"] == "rwsgi-test/1"
    assert d["remote_addr"] == "127.0.0.1"
    assert d["scheme"] == "http"


def test_werkzeug_multipart(srv):
    boundary = "rwsgiBOUNDARY"
    payload = b"\x00\x01binary\xff" * 100
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    r = srv.post("/wz/upload", body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    d = r.json()
    assert d["form"] == {"field": ["value"]}
    assert d["files"] == {"up": len(payload)}
    assert d["content_length"] == len(body)


def test_werkzeug_chunked_body_rejected_without_directive(srv):
    # WSGIChunkedRequest is off here: 411 before the app runs
    r = srv.post("/wz/x", [b"abc"], chunked=True)
    assert r.status == 411
