"""bench/run's judgement of issue 10's targets (bench/benchlib/targets.py): pure arithmetic
over a run's records, checked here on records made up for the purpose."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from benchlib.report import build_report  # noqa: E402
from benchlib.results import Results  # noqa: E402
from benchlib.targets import ABOVE_STATIC, TARGETS, judge, ratio, targets_table  # noqa: E402


# What else a measured cell records (the report's other tables read them).
OTHER_FIELDS = {"errors": 0, "sock_errors": {}, "non2xx": 0, "p50_ms": 1.0, "p99_ms": 2.0,
                "srv_cpu_us_per_req": 50.0, "rss_mib": 10.0, "server_procs": 3,
                "srv_cpu_pct": 100, "wrk_cpu_pct": 20, "other_cpu_pct": 1, "perf_cs": 2.0,
                "perf_faults": 0.0}


def records(cells, workloads):
    """cells: {(variant, workload): [(rps, pss, task_us) per repetition]}."""
    variants = sorted({v for v, _ in cells})
    out = [{"kind": "meta", "variants": variants, "workloads": workloads}]
    for (v, w), reps in cells.items():
        for rep, (rps, pss, task) in enumerate(reps, 1):
            out.append({"kind": "load", "variant": v, "workload": w, "rep": rep, "rps": rps,
                        "pss_mib": pss, "perf_task_us": task, **OTHER_FIELDS})
    return out


def target(prefix):
    return next(t for t in TARGETS if t[0].startswith(prefix))


def test_a_ratio_is_median_over_median_with_the_per_repetition_range():
    res = Results(records({("rwsgi-daemon", "hello"): [(200, 1, 1), (300, 1, 1), (260, 1, 1)],
                           ("modwsgi-daemon", "hello"): [(100, 1, 1), (100, 1, 1), (200, 1, 1)]},
                          ["hello"]))
    mid, low, high = ratio(res, "rwsgi-daemon", "modwsgi-daemon", "hello", "rps")
    assert mid == 260 / 100
    assert (low, high) == (1.3, 3.0)
    [(w, r, holds)] = judge(res, target("hello, daemon ≥ 2×"))
    assert w == "hello" and r[0] == 2.6 and holds


def test_cpu_above_static_is_measured_against_static_apache_in_the_same_run():
    res = Results(records({("static", "hello"): [(0, 0, 20), (0, 0, 30)],
                           ("rwsgi-embedded", "hello"): [(0, 0, 30), (0, 0, 40)],
                           ("modwsgi-embedded", "hello"): [(0, 0, 45), (0, 0, 50)]},
                          ["hello"]))
    mid, low, high = ratio(res, "rwsgi-embedded", "modwsgi-embedded", "hello", ABOVE_STATIC)
    assert mid == (35 - 25) / (47.5 - 25)
    assert (low, high) == (10 / 25, 10 / 20)
    [(_, _, holds)] = judge(res, target("hello, embedded: server CPU"))
    assert holds  # 0.44 is at most half


def test_a_target_over_several_workloads_names_the_ones_that_miss():
    cells = {}
    for w, rwsgi in (("echo-read", 130), ("echo-8k", 110), ("echo-lines", 170)):
        cells[("rwsgi-embedded", w)] = [(rwsgi, 1, 1)]
        cells[("modwsgi-embedded", w)] = [(100, 1, 1)]
    text = "\n".join(targets_table(Results(records(cells, ["echo-read", "echo-8k", "echo-lines"]))))
    row = next(line for line in text.splitlines() if "every reading pattern, embedded" in line)
    assert "read() 1.30; 8k 1.10; lines 1.70" in row
    assert "**missed** by 8k (2 of 3 held)" in row
    assert "0 of 1 targets measured in this run held." in text
    # the daemon form of that target had no daemon figures: left out, not judged
    assert "daemon ≥ 2× mod_wsgi daemon |" not in text


def test_memory_is_at_most_and_covers_every_workload_of_the_run():
    cells = {("rwsgi-daemon", "hello"): [(1, 40, 1)], ("modwsgi-daemon", "hello"): [(1, 50, 1)],
             ("rwsgi-daemon", "sleep"): [(1, 60, 1)], ("modwsgi-daemon", "sleep"): [(1, 50, 1)]}
    rows = judge(Results(records(cells, ["hello", "sleep"])), target("daemon PSS"))
    assert [(w, holds) for w, _, holds in rows] == [("hello", True), ("sleep", False)]


def test_static_is_the_reference_of_the_file_target_and_the_report_has_the_section():
    cells = {("static", "file"): [(1000, 10, 20)], ("rwsgi-embedded", "file"): [(800, 30, 40)],
             ("modwsgi-embedded", "file"): [(500, 30, 50)]}
    recs = records(cells, ["file"])
    rows = judge(Results(recs), target("64 KiB wsgi.file_wrapper, embedded"))
    assert rows == [("file", (0.8, 0.8, 0.8), True)]
    report = build_report(recs + [{"kind": "end"}], "bench/run")
    assert "## Issue 10's targets in this run" in report
    assert "| 64 KiB wsgi.file_wrapper, embedded ≥ 0.7× static Apache | 0.80 | held |" in report


def test_a_run_without_mod_wsgi_has_no_targets_section():
    cells = {("rwsgi-daemon", "hello"): [(1, 1, 1)], ("rwsgi-daemon-nostatus", "hello"): [(1, 1, 1)]}
    assert targets_table(Results(records(cells, ["hello"]))) == []
