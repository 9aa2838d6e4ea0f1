"""Checking and loading one route of a running server: `verify` asks once and compares status
and body bytes; `warmup` and `measure` run wrk, and `measure` brackets the run with /proc
readings (server CPU, memory mid-run, wrk's and the rest of the machine's CPU) to turn wrk's
output into one load record."""

import http.client
import os
import re
import resource
import subprocess
import time

from .common import BENCH, CLK_TCK, CONNECTIONS, WORKLOADS, WRK, WRK_THREADS, Failure
from .perfstat import PerfStat
from .procfs import machine_busy_ticks, tree, tree_cpu_ticks, tree_mem
from .server import http_request


UPLOAD_BOUNDARY = "----rwsgibenchboundary7MA4YWxk"


def request_for(w):
    """(method, body, headers, expected response body) of the verification request of a
    body-reading workload; None for the GET workloads."""
    if w in ("echo-lines", "echo-iter"):
        body = b"".join(os.urandom(31).hex().encode() + b"\n" for _ in range(16384))
        return "POST", body, {}, body
    if w == "echo" or w.startswith("echo-"):
        body = os.urandom(1024 * 1024)
        return "POST", body, {}, body
    if w.startswith("upload-"):
        b = UPLOAD_BOUNDARY.encode()
        data = os.urandom(1024 * 1024)
        body = (b"--" + b + b'\r\nContent-Disposition: form-data; name="name"\r\n\r\nbench\r\n'
                + b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; '
                b'filename="data.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
                + data + b"\r\n--" + b + b"--\r\n")
        headers = {"Content-Type": "multipart/form-data; boundary=" + UPLOAD_BOUNDARY}
        return "POST", body, headers, b"1048576 bench"
    return None


def verify(server, w, payloads):
    """Check one route once (status, exact body, echo equality); raise Failure if wrong."""
    path = server.path(w)
    post = request_for(w)
    try:
        if post:
            method, body, headers, expect = post
            status, got, _ = http_request(server.port, method, path, body=body, headers=headers)
        else:
            status, got, _ = http_request(server.port, "GET", path)
            expect = payloads.get(w)
    except (OSError, http.client.HTTPException) as e:
        raise Failure(f"verify {w} ({path}): {type(e).__name__}: {str(e)[:200]}")
    problem = None
    if status != 200:
        problem = f"status {status}"
    elif w in ("flask", "django"):
        if f"bench-{w}-ok".encode() not in got or len(got) < 1000:
            problem = f"unexpected page ({len(got)} bytes)"
    elif got != expect:
        problem = f"body of {len(got)} bytes differs from the expected {len(expect)} bytes"
    if problem:
        raise Failure(f"verify {w} ({path}): {problem}; body starts {got[:200]!r}")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(out):
    res = {}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    res["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", out)
    res["requests"] = int(m.group(1)) if m else 0
    res["wrk_seconds"] = float(m.group(2)) * UNITS[m.group(3)] / 1e3 if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
        res[f"p{pct}_ms"] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["sock_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                  (int(x) for x in m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    return res


def wrk_cmd(server, workload, duration):
    cmd = [WRK, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency",
           "--timeout", "10s"]
    script = WORKLOADS[workload].get("script")
    if script:
        cmd += ["-s", str(BENCH / "wrk" / script)]
    cmd.append(server.url(server.path(workload)))
    return cmd


def warmup(server, workload, seconds):
    if seconds > 0:
        subprocess.run(wrk_cmd(server, workload, seconds), capture_output=True,
                       timeout=seconds + 60)


def measure(server, workload, duration, perf=False):
    pid = server.proc.pid
    cmd = wrk_cmd(server, workload, duration)
    stat = PerfStat(sorted(tree(pid))) if perf else None
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = machine_busy_ticks()
    cpu0 = tree_cpu_ticks(pid)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(duration / 2)
        rss, pss, nproc = tree_mem(pid)
        out, _ = p.communicate(timeout=duration + 60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        totals = stat.stop() if stat else {}
    cpu1 = tree_cpu_ticks(pid)
    busy1 = machine_busy_ticks()
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise Failure(f"wrk exited {p.returncode}: {out.strip()[-500:]}")
    r = parse_wrk(out)
    if r["rps"] is None:
        raise Failure(f"cannot parse wrk output: {out.strip()[-500:]}")
    srv = (cpu1 - cpu0) / CLK_TCK
    wrk_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    other = max(0.0, (busy1 - busy0) / CLK_TCK - srv - wrk_cpu)
    r.update({
        "srv_cpu_s": round(srv, 3),
        "srv_cpu_us_per_req": round(srv / r["requests"] * 1e6, 1) if r["requests"] else None,
        "srv_cpu_pct": round(100 * srv / wall, 1),
        "wrk_cpu_pct": round(100 * wrk_cpu / wall, 1),
        "other_cpu_pct": round(100 * other / wall, 1),
        "rss_mib": round(rss, 1), "pss_mib": round(pss, 1), "server_procs": nproc,
        "errors": r["non2xx"] + sum(r["sock_errors"].values()),
    })
    if stat:
        r.update(PerfStat.per_request(totals, r["requests"]))
    return r
