"""Flask workload for bench/run: one view rendering a small Jinja template with JSON-ish data.

Mounted with `WSGIScriptAlias /flask <this file>`; the page is GET /flask/.
"""

import os
import sys

from flask import Flask, render_template

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from catalogue import PRODUCTS, total_stock  # noqa: E402 (after the path)

app = Flask(__name__, root_path=HERE, template_folder=os.path.join(HERE, "templates"))


@app.route("/")
def index():
    total = total_stock()
    return render_template("page.html", title="Catalogue", products=PRODUCTS, total=total)


application = app
