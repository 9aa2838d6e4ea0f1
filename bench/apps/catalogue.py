"""The data the Flask and Django page workloads render: one table, the same in both."""

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


def total_stock():
    return sum(p["stock"]["warehouse"] + p["stock"]["shop"] for p in PRODUCTS)
