"""bench/instructions' arithmetic and report: callgrind's totals summed over a server's
processes, the cost of one request from two runs, and the table (÷ mod_wsgi in the same mode,
and what is above static Apache serving the same bytes)."""

from .common import VARIANTS


def total_of(text):
    """The instruction count of one callgrind output file (its `totals:` line, else its
    `summary:` line); None if it has neither (a process killed before it could write)."""
    summary = None
    for line in text.splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
        if line.startswith("summary:"):
            summary = int(line.split()[1])
    return summary


def totals(files):
    """Instructions of every process of one server; an output without a total is an error
    (the sum would silently leave a process out)."""
    n = 0
    for f in files:
        with open(f, errors="replace") as fh:
            t = total_of(fh.read())
        if t is None:
            raise ValueError(f"{f}: no totals (the process did not exit cleanly)")
        n += t
    return n


def per_request(low, high, n):
    """Instructions of one request: runs of `base` and `base + n` requests differ by n."""
    if n <= 0:
        raise ValueError("n must be positive")
    return (high - low) / n


def _k(x):
    return f"{x / 1000:,.1f}k"


def report(results, workloads, variants):
    """Markdown: per workload, instructions per request of each variant, ÷ its mod_wsgi
    reference, and above static Apache (and that ÷ the reference's) where static ran."""
    lines = ["## Instructions per request (callgrind, one request at a time, every process "
             "of the server)", "",
             "| workload | variant | instructions/request | ÷ mod_wsgi | above static | "
             "above static ÷ mod_wsgi's |", "|---|---|---|---|---|---|"]
    for w in workloads:
        static = results.get(("static", w))
        for v in variants:
            x = results.get((v, w))
            if x is None:
                continue
            ref = VARIANTS[v].get("ref")
            r = results.get((ref, w)) if ref else None
            ratio = f"**{x / r:.2f}**" if r else "-"
            above = above_ratio = "-"
            if static is not None and v != "static":
                above = _k(x - static)
                if r is not None and r - static > 0:
                    above_ratio = f"**{(x - static) / (r - static):.2f}**"
            lines.append(f"| {w} | {v} | {_k(x)} | {ratio} | {above} | {above_ratio} |")
    return "\n".join(lines) + "\n\n"
