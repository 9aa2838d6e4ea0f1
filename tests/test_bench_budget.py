"""The benchmark's pure pieces: sorting perf samples into the per-request budget's buckets,
reading `perf report` and `perf stat -x,` output (bench/benchlib/budget.py, perfstat.py),
telling a crash before the stop from one during it (errlog.py), callgrind totals and the
instructions-per-request arithmetic (instr.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from benchlib.budget import buckets, classify, parse_report, table  # noqa: E402
from benchlib.errlog import split_at_stop  # noqa: E402
from benchlib.instr import per_request, report, total_of, totals  # noqa: E402
from benchlib.perfstat import PerfStat, parse  # noqa: E402


@pytest.mark.parametrize("dso,sym,bucket", [
    ("libpython3.11.so.1.0", "take_gil", "GIL, locks and futex hand-offs"),
    ("[kernel.kallsyms]", "futex_wait_queue", "GIL, locks and futex hand-offs"),
    ("libc.so.6", "pthread_cond_wait@@GLIBC_2.3.2", "GIL, locks and futex hand-offs"),
    ("[kernel.kallsyms]", "__schedule", "kernel: scheduler"),
    ("[kernel.kallsyms]", "tcp_sendmsg_locked", "kernel: network and I/O"),
    ("[kernel.kallsyms]", "clear_page_erms", "kernel: memory"),
    ("[kernel.kallsyms]", "syscall_exit_to_user_mode", "kernel: other"),
    ("mod_rwsgi.so", "rwsgi_python::exchange::environ::build", "rwsgi: environ"),
    ("mod_rwsgi.so", "rwsgi_python::exchange::input::read_timed", "rwsgi: wsgi.input"),
    ("rwsgi-daemon", "rwsgi_core::ipc::ring::Ring::push", "rwsgi: IPC"),
    ("mod_rwsgi.so", "rwsgi_python::response::start_response", "rwsgi: response"),
    ("mod_rwsgi.so", "mod_rwsgi::routing::route", "rwsgi: other"),
    ("mod_wsgi.so", "Adapter_run", "mod_wsgi"),
    ("libpython3.11.so.1.0", "_PyEval_EvalFrameDefault", "Python bytecode (the application)"),
    ("libpython3.11.so.1.0", "PyDict_SetItem", "Python objects and allocation"),
    ("libpython3.11.so.1.0", "_PyObject_Malloc", "Python objects and allocation"),
    ("libpython3.11.so.1.0", "PyImport_GetModule", "Python runtime: other"),
    ("libc.so.6", "_int_malloc", "libc: malloc"),
    ("libc.so.6", "__memmove_avx_unaligned_erms", "libc: memcpy/memset"),
    ("libc.so.6", "__libc_recv", "libc: other"),
    ("apache2", "ap_pass_brigade", "Apache (core, filters, APR)"),
    ("libapr-1.so.0.7.2", "apr_palloc", "Apache (core, filters, APR)"),
    ("mod_mpm_event.so", "process_socket", "Apache (core, filters, APR)"),
    ("[vdso]", "__vdso_clock_gettime", "other"),
])
def test_classify(dso, sym, bucket):
    assert classify(dso, sym) == bucket


REPORT = """\
# Samples: 3K of event 'cpu-clock'
#
# Overhead       Samples  Shared Object          Symbol
# ........  ............  .....................  ..............................
#
    12.50%           300  libpython3.11.so.1.0   [.] _PyEval_EvalFrameDefault
     5.00%           120  [kernel.kallsyms]      [k] tcp_sendmsg_locked
     1.00%            24  mod_rwsgi.so           [.] rwsgi_python::exchange::environ::build
"""


def test_parse_report_and_buckets():
    rows = parse_report(REPORT)
    assert rows == [(300, "libpython3.11.so.1.0", "_PyEval_EvalFrameDefault"),
                    (120, "[kernel.kallsyms]", "tcp_sendmsg_locked"),
                    (24, "mod_rwsgi.so", "rwsgi_python::exchange::environ::build")]
    # 1000 samples/s, 100 requests: one sample = 10 µs per request
    b = buckets(rows, 1e-3, 100)
    assert b["Python bytecode (the application)"] == pytest.approx(3000.0)
    assert b["kernel: network and I/O"] == pytest.approx(1200.0)
    assert b["rwsgi: environ"] == pytest.approx(240.0)


def test_table_above_static():
    per = {"static": {"kernel: network and I/O": 50.0},
           "modwsgi-embedded": {"kernel: network and I/O": 60.0, "mod_wsgi": 40.0},
           "rwsgi-embedded": {"kernel: network and I/O": 55.0, "rwsgi: environ": 20.0}}
    text = "\n".join(table(per, list(per), static="static",
                           refs={"rwsgi-embedded": "modwsgi-embedded"}))
    assert "| **above static Apache** | - | **50.0** | **25.0** |" in text
    assert "| above static ÷ mod_wsgi's (same mode) | - | - | 0.50× |" in text


def test_perf_stat_parse_and_per_request():
    text = ("1234.5,msec,task-clock,1234500000,100.00,1.9,CPUs utilized\n"
            "5000,,context-switches,1234500000,100.00,4.05,K/sec\n"
            "<not supported>,,instructions,0,100.00,,\n"
            "12,,page-faults:u,1234500000,100.00,,\n")
    totals = parse(text)
    assert totals == {"task-clock": 1234.5, "context-switches": 5000.0,
                      "instructions": None, "page-faults": 12.0}
    per = PerfStat.per_request(totals, 1000)
    assert per["perf_task_us"] == pytest.approx(1234.5)
    assert per["perf_cs"] == pytest.approx(5.0)
    assert per["perf_instructions"] is None
    assert per["perf_cycles"] is None


# A static Apache stopped 23 ms after its start (CI, 2026-12-01): a child killed during its
# own start-up, reaped and logged before "caught SIGTERM".
STOPPED_EARLY = """\
[Tue Dec 01 08:31:45.792318 2026] [mpm_event:notice] [pid 1:tid 1] AH00489: configured
[Tue Dec 01 08:31:45.815094 2026] [core:notice] [pid 1:tid 1] AH00052: child pid 2 exit signal Segmentation fault (11)
[Tue Dec 01 08:31:45.815163 2026] [mpm_event:notice] [pid 1:tid 1] AH00491: caught SIGTERM, shutting down
""".splitlines()


def test_a_child_reaped_after_the_sigterm_belongs_to_the_stop():
    import datetime
    sent = datetime.datetime(2026, 12, 1, 8, 31, 45, 810000).timestamp()
    before, stop = split_at_stop(STOPPED_EARLY, sent)
    assert [ln for ln in before if "AH00052" in ln] == []
    assert any("AH00052" in ln for ln in stop)


def test_a_crash_before_the_sigterm_stays_before_the_stop():
    import datetime
    sent = datetime.datetime(2026, 12, 1, 8, 31, 46).timestamp()
    before, stop = split_at_stop(STOPPED_EARLY, sent)
    assert any("AH00052" in ln for ln in before)
    assert stop == STOPPED_EARLY[2:]
    assert split_at_stop(STOPPED_EARLY, None) == (STOPPED_EARLY[:2], STOPPED_EARLY[2:])


CALLGRIND_HEAD = "# callgrind format\nversion: 1\ncmd:  /usr/sbin/apache2 -X\nevents: Ir\n"


def test_callgrind_totals_are_read_and_summed_over_processes(tmp_path):
    a = tmp_path / "cg.1"
    a.write_text(CALLGRIND_HEAD + "fn=(1) main\n5 100\ntotals: 147442488\n")
    b = tmp_path / "cg.2"
    b.write_text(CALLGRIND_HEAD + "summary: 22321491\nfn=(1) main\n")
    assert total_of(a.read_text()) == 147442488
    assert total_of(b.read_text()) == 22321491
    assert totals([a, b]) == 147442488 + 22321491
    # a process that died before writing its totals must not be left out silently
    c = tmp_path / "cg.3"
    c.write_text(CALLGRIND_HEAD)
    with pytest.raises(ValueError, match="no totals"):
        totals([a, c])


def test_instructions_per_request_and_the_report():
    # start-up cancels out: 20 requests then 2020
    assert per_request(147_543_855, 383_876_277, 2000) == pytest.approx(118_166.2)
    with pytest.raises(ValueError):
        per_request(1, 2, 0)
    results = {("static", "hello"): 29_500.0, ("modwsgi-embedded", "hello"): 270_500.0,
               ("rwsgi-embedded", "hello"): 118_000.0, ("rwsgi-daemon", "hello"): 200_000.0,
               ("rwsgi-embedded", "flask"): 900_000.0}
    text = report(results, ["hello", "flask"],
                  ["static", "modwsgi-embedded", "rwsgi-embedded", "rwsgi-daemon"])
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in text.splitlines()
            if line.startswith("| hello") or line.startswith("| flask")}
    # 118.0 / 270.5, and above static (88.5k) against mod_wsgi's (241.0k)
    assert "| 118.0k | **0.44** | 88.5k | **0.37** |" in rows[("hello", "rwsgi-embedded")]
    # no mod_wsgi daemon measured: no ratio, but still above static
    assert "| 200.0k | - | 170.5k | - |" in rows[("hello", "rwsgi-daemon")]
    # no static for the page: neither above-static column
    assert rows[("flask", "rwsgi-embedded")].endswith("| 900.0k | - | - | - |")
