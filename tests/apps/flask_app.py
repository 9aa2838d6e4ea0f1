"""Flask test application (WSGIScriptAlias target; callable `application`)."""
import hashlib
import os

from flask import Flask, jsonify, make_response, render_template_string, request

app = Flask(__name__)

PAGE = """<!doctype html>
<title>{{ title }}</title>
<h1>Hello, {{ name }}!</h1>
<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>
"""


@app.route("/")
def index():
    return "flask index"


@app.route("/hello/<name>")
def hello(name):
    return render_template_string(PAGE, title="greeting", name=name, items=["a", "b", "c"])


@app.route("/json")
def json_view():
    return jsonify(
        framework="flask",
        method=request.method,
        path=request.path,
        script_root=request.script_root,
        url=request.url,
        args=request.args.to_dict(),
    )


@app.route("/form", methods=["POST"])
def form():
    return jsonify(form=request.form.to_dict(), content_type=request.content_type)


@app.route("/upload", methods=["POST", "PUT"])
def upload():
    data = request.get_data()
    return jsonify(length=len(data), sha256=hashlib.sha256(data).hexdigest())


@app.route("/headers")
def headers():
    resp = make_response("with headers")
    resp.headers["X-Custom"] = "custom-value"
    resp.set_cookie("session", "abc123", httponly=True)
    resp.set_cookie("theme", "dark")
    return resp


@app.route("/status/<int:code>")
def status(code):
    return "status %d" % code, code


@app.route("/error")
def error():
    raise RuntimeError("flask view failed on purpose")


@app.route("/pid")
def pid():
    return str(os.getpid())


application = app
