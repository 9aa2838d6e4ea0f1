"""The markdown report, built only from the run's records (so `--report-from` rebuilds the
same text from a .jsonl): header with machine and configuration, skips and failures, the
rwsgi ÷ mod_wsgi summary, issue 10's targets (targets.py), throughput/latency and server-cost
tables, startup, the distinct error-log lines, and the footnotes on how the figures were
obtained. One function per section."""

from collections import Counter

from .common import CONFIG_TEXT, CONNECTIONS, VARIANTS, WORKLOAD_TEXT, WRK_THREADS
from .errlog import BENIGN_LOG
from .results import Results, above_static, med, paired
from .targets import targets_table


def fnum(x, kind):
    if x is None:
        return "-"
    if kind == "rps":
        return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"
    if kind == "ms":
        return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"
    if kind == "us":
        return f"{x:,.0f}" if x >= 10 else f"{x:.1f}"
    if kind == "mib":
        return f"{x:.0f}" if x >= 100 else f"{x:.1f}"
    if kind == "count":
        return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"
    if kind == "ratio":
        return f"{x:.2f}"
    return str(x)


def cell(xs, kind):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return fnum(xs[0], kind)
    return f"{fnum(med(xs), kind)} ({fnum(min(xs), kind)}–{fnum(max(xs), kind)})"


def ratio_cell(num, den):
    """num, den: {rep: value}. median/median, with the range of the per-rep paired ratios."""
    r = paired(num, den)
    if r is None:
        return "-"
    mid, pairs = r
    s = f"**{mid:.2f}**"
    if len(pairs) > 1:
        s += f" ({min(pairs):.2f}–{max(pairs):.2f})"
    return s


def header(res, argv_text):
    meta, end = res.meta, res.end
    m = meta.get("machine", {})
    out = [f"# rwsgi benchmark — {m.get('date', '?')}", ""]
    out.append(f"`{argv_text}` — {meta.get('reps')} rep(s) × {meta.get('duration')} s per cell "
               f"(+{meta.get('warmup')} s warm-up), wrk -t{WRK_THREADS} -c{CONNECTIONS} "
               f"keep-alive on 127.0.0.1, variants interleaved per rep; startup: "
               f"{meta.get('startup_reps')} interleaved start(s) per variant; wall time "
               f"{end.get('wall_s', '?')} s.")
    out.append("")
    out.append(f"**Machine:** {m.get('nproc', '?')} CPUs ({m.get('cpu', '?')}), "
               f"{m.get('mem_gib', '?')} GiB RAM, kernel {m.get('kernel', '?')}")
    for k in ("apache", "python", "venv", "mod_wsgi", "rwsgi", "git", "wrk"):
        if k in m:
            out.append(f"- {k}: {m[k]}")
    if m.get("loadavg_start"):
        out.append(f"- load average at start {' '.join(m['loadavg_start'])}, at end "
                   f"{' '.join(end.get('loadavg', ['?']))}")
    out.append("")
    out.append(f"**Apache config (every variant):** {CONFIG_TEXT}.")
    out.append("")
    return out


def skips_and_failures(res):
    out = [f"- {r['variant']}: skipped — {r['reason']}" for r in res.of_kind("skip")]
    for r in res.of_kind("failure"):
        out.append(f"- **FAILED {r['variant']}** ({r.get('phase')}"
                   + (f", rep {r['rep']}" if r.get("rep") else "") + f"): "
                   + r["message"].replace("\n", " ")[:600])
        tail = [ln for ln in (r.get("error_log_tail") or "").splitlines()
                if not BENIGN_LOG.search(ln)][-10:]
        if tail:
            out.append("  error log (last lines):")
            out.append("  ```")
            out.extend("  " + ln[:400] for ln in tail)
            out.append("  ```")
    out.append("")
    out.append("Ratios: **median/median**, in brackets the range of the per-rep paired ratios "
               "(same rep, back-to-back servers). rwsgi rows are divided by mod_wsgi 4.9.4 in the "
               "same mode from this run (the opt-in *-nostatus rows, rwsgi built without the "
               "status counters, by rwsgi with them: the columns headed ÷ mod_wsgi then mean "
               "÷ rwsgi). req/s: >1 = rwsgi faster; latency, CPU/request, memory, "
               "startup: <1 = rwsgi cheaper.")
    out.append("")
    return out


def summary(res):
    """rwsgi ÷ mod_wsgi per metric and workload (and ÷ static); empty without a pair."""
    present, data, ws = res.present, res.data, list(res.workloads)
    rw = [v for v in present if VARIANTS[v].get("ref") in present
          and any((v, w) in data for w in ws)]
    if not (rw and res.load):
        return []
    out = ["## Summary: rwsgi ÷ mod_wsgi (same mode; *-nostatus: ÷ rwsgi with counters)", ""]
    out.append("| variant | metric | " + " | ".join(ws) + " |")
    out.append("|---|---|" + "---|" * len(ws))
    for v in rw:
        ref = VARIANTS[v]["ref"]
        for key, label in (("rps", "req/s"), ("srv_cpu_us_per_req", "server CPU/req"),
                           ("p99_ms", "p99 latency"), ("pss_mib", "PSS mid-run")):
            row = [ratio_cell(res.series(v, w, key), res.series(ref, w, key)) for w in ws]
            out.append(f"| {v} | {label} | " + " | ".join(row) + " |")
        if "static" in present:
            for key, label in (("rps", "req/s ÷ static"),
                               ("srv_cpu_us_per_req", "CPU/req ÷ static")):
                row = [ratio_cell(res.series(v, w, key), res.series("static", w, key))
                       if ("static", w) in data else "-" for w in ws]
                out.append(f"| {v} | {label} | " + " | ".join(row) + " |")
    out.append("")
    return out


def cells(res):
    """(workload, variant, records) of every measured cell, in table order."""
    for w in res.workloads:
        for v in res.present:
            if (v, w) in res.data:
                yield w, v, list(res.data[(v, w)].values())


def vs_ref(res, v, w, key):
    """The cell's ratio to mod_wsgi of the same mode ("-" for a variant without one)."""
    ref = VARIANTS[v].get("ref")
    return ratio_cell(res.series(v, w, key), res.series(ref, w, key)) if ref else "-"


def vs_static(res, v, w, key):
    return (ratio_cell(res.series(v, w, key), res.series("static", w, key))
            if v != "static" and ("static", w) in res.data else "-")


def throughput_table(res):
    out = ["## Throughput and latency"]
    out.append("")
    out.append("| workload | variant | req/s median (min–max) | ÷ mod_wsgi | ÷ static | "
               "p50 ms | p99 ms median (min–max) | p99 ÷ mod_wsgi | errors |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for w, v, recs in cells(res):
        errs = sum(r["errors"] for r in recs)
        sock = Counter()
        for r in recs:
            sock.update(r["sock_errors"])
        non2xx = sum(r["non2xx"] for r in recs)
        detail = ", ".join([f"non-2xx {non2xx}"] * bool(non2xx)
                           + [f"{k} {n}" for k, n in sock.items() if n])
        out.append(f"| {w} | {v} | {cell([r['rps'] for r in recs], 'rps')} | "
                   f"{vs_ref(res, v, w, 'rps')} | {vs_static(res, v, w, 'rps')} | "
                   f"{fnum(med(r['p50_ms'] for r in recs), 'ms')} | "
                   f"{cell([r['p99_ms'] for r in recs], 'ms')} | {vs_ref(res, v, w, 'p99_ms')} | "
                   f"{errs}{f' ({detail})' if detail else ''} |")
    out.append("")
    return out


def cost_table(res):
    out = ["## Server cost"]
    out.append("")
    out.append("| workload | variant | server CPU µs/req median (min–max) | ÷ mod_wsgi | ÷ static | "
               "RSS MiB | PSS MiB median (min–max) | PSS ÷ mod_wsgi | procs | "
               "server CPU % | wrk CPU % | other CPU % |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    k = "srv_cpu_us_per_req"
    for w, v, recs in cells(res):
        out.append(
            f"| {w} | {v} | {cell([r[k] for r in recs], 'us')} | {vs_ref(res, v, w, k)} | "
            f"{vs_static(res, v, w, k)} | "
            f"{fnum(med(r['rss_mib'] for r in recs), 'mib')} | "
            f"{cell([r['pss_mib'] for r in recs], 'mib')} | {vs_ref(res, v, w, 'pss_mib')} | "
            f"{med(r['server_procs'] for r in recs):.0f} | "
            f"{med(r['srv_cpu_pct'] for r in recs):.0f} | "
            f"{med(r['wrk_cpu_pct'] for r in recs):.0f} | "
            f"{med(r['other_cpu_pct'] for r in recs):.0f} |")
    out.append("")
    return out


def budget_table(res):
    """perf stat per request, when the run had it: task-clock (CPU time the server's threads
    ran), its part above static Apache serving the same bytes, context switches (GIL and
    futex hand-offs, IPC wake-ups), page faults, and instructions when the PMU is exposed."""
    rows = [(w, v, recs) for w, v, recs in cells(res)
            if any(r.get("perf_task_us") is not None for r in recs)]
    if not rows:
        return []
    hw = any(r.get("perf_instructions") is not None for _, _, recs in rows for r in recs)
    out = ["## Per-request budget (perf stat over the server's processes)", ""]
    out.append("| workload | variant | task-clock µs/req median (min–max) | ÷ mod_wsgi | "
               "above static µs | above static ÷ mod_wsgi's | context switches/req | "
               "÷ mod_wsgi | page faults/req |" + (" instructions/req | cycles/req |" if hw
                                                   else ""))
    out.append("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if hw else ""))
    for w, v, recs in rows:
        k = "perf_task_us"
        above = above_static(res, v, w)
        ref = VARIANTS[v].get("ref")
        ref_above = above_static(res, ref, w) if ref else None
        ratio = (f"{above / ref_above:.2f}×" if above is not None and ref_above else "-")
        line = (f"| {w} | {v} | {cell([r[k] for r in recs if r.get(k) is not None], 'us')} | "
                f"{vs_ref(res, v, w, k)} | {fnum(above, 'us') if above is not None else '-'} | "
                f"{ratio} | {fnum(med(r['perf_cs'] for r in recs), 'count')} | "
                f"{vs_ref(res, v, w, 'perf_cs')} | "
                f"{fnum(med(r['perf_faults'] for r in recs), 'count')} |")
        if hw:
            line += (f" {fnum(med(r['perf_instructions'] for r in recs), 'count')} | "
                     f"{fnum(med(r['perf_cycles'] for r in recs), 'count')} |")
        out.append(line)
    out.append("")
    if not hw:
        out.append("This machine exposes no hardware counters to perf (a VM without a PMU): "
                   "instructions and cycles per request are not available; task-clock is the "
                   "CPU time figure.")
        out.append("")
    return out


def startup_table(res):
    startup = res.startup
    if not startup:
        return []
    out = ["## Startup: exec to the first 200 on /hello (polled every 5 ms)", ""]
    out.append("| variant | ms median (min–max) | ÷ mod_wsgi | ÷ static |")
    out.append("|---|---|---|---|")
    for v in res.present:
        if v not in startup:
            continue
        ref = VARIANTS[v].get("ref")
        vs_ref = ratio_cell(startup[v], startup[ref]) if ref in startup else "-"
        vs_static = (ratio_cell(startup[v], startup["static"])
                     if v != "static" and "static" in startup else "-")
        out.append(f"| {v} | {cell(list(startup[v].values()), 'ms')} | {vs_ref} | {vs_static} |")
    out.append("")
    return out


def error_logs(res):
    logs = [r for r in res.of_kind("errorlog") if r["lines"]]
    out = ["## Apache error logs (LogLevel warn; distinct lines over all starts, "
           "timestamps/pids/ports stripped; the AH00489/AH00491/AH00094 start/stop notices "
           "left out; `[phase]` = what the server was doing: startup, start+verify, a "
           "workload (its warm-up and run), `after X` = between the end of X and the stop, "
           "stop = after Apache caught SIGTERM)", ""]
    if not logs:
        out.append("All error logs empty.")
    for r in logs:
        out.append(f"- **{r['variant']}** ({r['starts']} starts):")
        for line, n in r["lines"][:12]:
            out.append(f"  - {n}× `{line[:300]}`")
        if len(r["lines"]) > 12:
            out.append(f"  - ... {len(r['lines']) - 12} more distinct lines (see the .jsonl)")
    out.append("")
    return out


def footnotes(res):
    return [
        "Workloads: " + "; ".join(f"{w} = {WORKLOAD_TEXT[w]}" for w in res.workloads)
        + ". Static serves hello.txt / big.bin / file.bin with the same bytes.",
        "Server CPU = utime+stime+cutime+cstime summed over the Apache process tree "
        "(/proc/<pid>/stat of every descendant) before and after the wrk run: processes "
        "that exit are counted through their parent's cutime/cstime. RSS/PSS = sum of "
        "/proc/<pid>/smaps_rollup over the tree, sampled at mid-run (RSS counts shared "
        "pages once per process; PSS is the fair total). other CPU % = machine busy time "
        "not used by the server or wrk (noise from other work); 100 % = one core.",
    ]


def build_report(records, argv_text):
    res = Results(records)
    out = header(res, argv_text) + skips_and_failures(res) + summary(res) + targets_table(res)
    if not res.load:
        out += ["No load measurement completed.", ""]
    else:
        out += throughput_table(res) + cost_table(res) + budget_table(res)
    out += startup_table(res) + error_logs(res) + footnotes(res)
    return "\n".join(out) + "\n"
