"""Bottle test application."""
import bottle

app = bottle.Bottle()


@app.route("/")
def index():
    return "bottle index"


@app.route("/hello/<name>")
def hello(name):
    return bottle.template("<b>Hello {{name}}</b> {{n}} items", name=name, n=3)


@app.route("/json")
def json_view():
    return {"framework": "bottle", "path": bottle.request.path,
            "script_name": bottle.request.script_name,
            "query": dict(bottle.request.query)}


@app.post("/form")
def form():
    return {"form": dict(bottle.request.forms)}


application = app
