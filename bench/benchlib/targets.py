"""Issue 10's targets, judged from one run: each is a ratio of medians from the same run
(rwsgi ÷ mod_wsgi, ÷ mod_wsgi embedded or ÷ static Apache; for "CPU above static", rwsgi's
perf task-clock above static Apache ÷ mod_wsgi's), shown with the range of the per-repetition
ratios, and held or missed by the median ratio. A target whose variants or workloads the run
did not measure is left out; the memory-growth target is bench/soak's."""

from .results import above_static, paired

BODY = ("echo-read", "echo-8k", "echo-64k", "echo-256k", "echo-1m", "echo-lines", "echo-iter",
        "upload-werkzeug", "upload-django")
SHORT = {"echo-read": "read()", "echo-8k": "8k", "echo-64k": "64k", "echo-256k": "256k",
         "echo-1m": "1m", "echo-lines": "lines", "echo-iter": "iteration",
         "upload-werkzeug": "werkzeug", "upload-django": "Django upload", "big": "1 MiB response"}
ABOVE_STATIC = "above static"  # the metric: task-clock above static Apache, ÷ the reference's
EVERY = None  # the workloads: every one the run measured

# (what, variant, divided by, workloads, metric, ">=" or "<=", bound)
TARGETS = [
    ("1 MiB POST echo, every reading pattern, embedded ≥ 1.2× mod_wsgi embedded",
     "rwsgi-embedded", "modwsgi-embedded", BODY, "rps", ">=", 1.2),
    ("1 MiB POST echo, every reading pattern, daemon ≥ 2× mod_wsgi daemon",
     "rwsgi-daemon", "modwsgi-daemon", BODY, "rps", ">=", 2.0),
    ("hello, embedded ≥ 1.6× mod_wsgi embedded",
     "rwsgi-embedded", "modwsgi-embedded", ("hello",), "rps", ">=", 1.6),
    ("hello, embedded: server CPU above static at most half of mod_wsgi's",
     "rwsgi-embedded", "modwsgi-embedded", ("hello",), ABOVE_STATIC, "<=", 0.5),
    ("hello, daemon ≥ 2× mod_wsgi daemon",
     "rwsgi-daemon", "modwsgi-daemon", ("hello",), "rps", ">=", 2.0),
    ("hello, daemon ≥ 1.0× mod_wsgi embedded",
     "rwsgi-daemon", "modwsgi-embedded", ("hello",), "rps", ">=", 1.0),
    ("64 KiB wsgi.file_wrapper, embedded ≥ 0.7× static Apache",
     "rwsgi-embedded", "static", ("file",), "rps", ">=", 0.7),
    ("64 KiB wsgi.file_wrapper, daemon ≥ 0.7× static Apache",
     "rwsgi-daemon", "static", ("file",), "rps", ">=", 0.7),
    ("1 MiB response, daemon ≥ 2× mod_wsgi daemon",
     "rwsgi-daemon", "modwsgi-daemon", ("big",), "rps", ">=", 2.0),
    ("Flask and Django pages, embedded ≥ 1.2× mod_wsgi embedded",
     "rwsgi-embedded", "modwsgi-embedded", ("flask", "django"), "rps", ">=", 1.2),
    ("Flask and Django pages, daemon ≥ 1.2× mod_wsgi daemon",
     "rwsgi-daemon", "modwsgi-daemon", ("flask", "django"), "rps", ">=", 1.2),
    ("daemon PSS at most mod_wsgi daemon's, every workload",
     "rwsgi-daemon", "modwsgi-daemon", EVERY, "pss_mib", "<=", 1.0),
]


def _above(res, v, w):
    """{rep: task-clock µs/request of (v, w) above static Apache's in the same repetition}."""
    mine, base = res.series(v, w, "perf_task_us"), res.series("static", w, "perf_task_us")
    return {r: x - base[r] for r, x in mine.items()
            if x is not None and base.get(r) is not None}


def ratio(res, v, den, w, metric):
    """(median ratio, lowest and highest per-repetition ratio) of v over den on w, or None."""
    if metric == ABOVE_STATIC:
        # as the budget table computes it: median minus static's median, each side
        mid = above_static(res, v, w), above_static(res, den, w)
        r = paired(_above(res, v, w), _above(res, den, w), mid)
    else:
        r = paired(res.series(v, w, metric), res.series(den, w, metric))
    if r is None:
        return None
    m, pairs = r
    return m, min(pairs, default=m), max(pairs, default=m)


def judge(res, target):
    """[(workload, (ratio, low, high), holds)] for the workloads of `target` this run measured."""
    _, v, den, workloads, metric, op, bound = target
    out = []
    for w in res.workloads if workloads is EVERY else workloads:
        r = ratio(res, v, den, w, metric)
        if r is not None:
            out.append((w, r, r[0] >= bound if op == ">=" else r[0] <= bound))
    return out


def _measured(rows):
    def one(w, r):
        rng = f" ({r[1]:.2f}–{r[2]:.2f})" if r[1] != r[2] else ""
        name = f"{SHORT.get(w, w)} " if len(rows) > 1 else ""
        return f"{name}{r[0]:.2f}{rng}"
    return "; ".join(one(w, r) for w, r, _ in rows)


def _verdict(rows):
    missed = [SHORT.get(w, w) for w, _, ok in rows if not ok]
    if not missed:
        return "held" if len(rows) == 1 else f"held ({len(rows)} of {len(rows)})"
    if len(rows) == 1:
        return "**missed**"
    return f"**missed** by {', '.join(missed)} ({len(rows) - len(missed)} of {len(rows)} held)"


def targets_table(res):
    """The section of the report; empty when the run measured none of the targets."""
    judged = [(t, judge(res, t)) for t in TARGETS]
    judged = [(t, rows) for t, rows in judged if rows]
    if not judged:
        return []
    out = ["## Issue 10's targets in this run", "",
           "Each ratio is median ÷ median from this run (in brackets the per-repetition "
           "range); a target holds or misses by the median. The memory-growth target (no RSS "
           "growth beyond 2 % over 10 minutes) is measured by bench/soak.", "",
           "| target | measured | verdict |", "|---|---|---|"]
    for t, rows in judged:
        out.append(f"| {t[0]} | {_measured(rows)} | {_verdict(rows)} |")
    held = sum(all(ok for _, _, ok in rows) for _, rows in judged)
    out += ["", f"{held} of {len(judged)} targets measured in this run held.", ""]
    return out
