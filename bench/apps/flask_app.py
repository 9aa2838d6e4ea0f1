"""Flask workload for bench/run: one view rendering a small Jinja template with JSON-ish data.

Mounted with `WSGIScriptAlias /flask <this file>`; the page is GET /flask/.
"""

import os

from flask import Flask, render_template

HERE = os.path.dirname(os.path.abspath(__file__))
app = Flask(__name__, root_path=HERE, template_folder=os.path.join(HERE, "templates"))

PRODUCTS = [
    {
        "id": i,
        "name": f"Product {i}",
        "price": round(3.5 + i * 1.25, 2),
        "tags": ["alpha", "beta", "gamma"][: 1 + i % 3],
        "stock": {"warehouse": i * 7 % 50, "shop": i * 3 % 11},
    }
    for i in range(1, 21)
]


@app.route("/")
def index():
    total = sum(p["stock"]["warehouse"] + p["stock"]["shop"] for p in PRODUCTS)
    return render_template("page.html", title="Catalogue", products=PRODUCTS, total=total)


application = app
