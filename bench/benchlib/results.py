"""One run's records, indexed the way the report's tables and the targets read them, and the
few figures several sections derive from them (medians, task-clock above static Apache)."""

import statistics
from collections import defaultdict

from .common import VARIANTS, WORKLOADS


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def paired(num, den, mid=None):
    """num, den: {rep: value}. (median ratio, [per-rep ratios]) or None; `mid` overrides the
    median's numerator and denominator (a caller that derives them differently)."""
    mn, md = mid if mid else (med(num.values()), med(den.values()))
    if mn is None or not md:
        return None
    return mn / md, [num[r] / den[r] for r in num if den.get(r) and num[r] is not None]


class Results:
    """The records of one run, indexed the way the tables read them."""

    def __init__(self, records):
        self.records = records
        self.meta = next((r for r in records if r["kind"] == "meta"), {})
        self.end = next((r for r in records if r["kind"] == "end"), {})
        self.load = [r for r in records if r["kind"] == "load"]
        self.data = defaultdict(dict)  # (variant, workload) -> {rep: record}
        for r in self.load:
            self.data[(r["variant"], r["workload"])][r["rep"]] = r
        self.startup = defaultdict(dict)
        for r in records:
            if r["kind"] == "startup":
                self.startup[r["variant"]][r["rep"]] = r["ms"]
        variants = [v for v in self.meta.get("variants", VARIANTS) if v in VARIANTS]
        self.workloads = self.meta.get("workloads", list(WORKLOADS))
        self.present = [v for v in variants
                        if any((v, w) in self.data for w in self.workloads) or v in self.startup]

    def series(self, v, w, key):
        return {rep: rec.get(key) for rep, rec in self.data.get((v, w), {}).items()}

    def of_kind(self, kind):
        return [r for r in self.records if r["kind"] == kind]


def above_static(res, v, w):
    """Median task-clock µs/req of (v, w) minus static Apache's on the same bytes, or None."""
    if v is None or (v, w) not in res.data:
        return None
    mine = [r.get("perf_task_us") for r in res.data[(v, w)].values()]
    mine = [x for x in mine if x is not None]
    if not mine:
        return None
    if ("static", w) not in res.data:
        return None
    base = [r.get("perf_task_us") for r in res.data[("static", w)].values()]
    base = [x for x in base if x is not None]
    return med(mine) - med(base) if base else None
