"""`perf stat` over the server's processes for the length of one measured run: a steadier
per-request figure than /proc ticks on a shared machine. Hardware counters (instructions,
cycles) are read when the machine exposes them; on a VM without a PMU perf says "not
supported" and only the software counters remain (task-clock, context switches — the GIL
and futex hand-offs show there —, migrations, page faults)."""

import shutil
import subprocess

EVENTS = ("task-clock", "context-switches", "cpu-migrations", "page-faults", "instructions",
          "cycles")

#: record key of each event, per request
KEYS = {"task-clock": "perf_task_us", "context-switches": "perf_cs", "cpu-migrations":
        "perf_migrations", "page-faults": "perf_faults", "instructions": "perf_instructions",
        "cycles": "perf_cycles"}

PERF = shutil.which("perf") or "/usr/bin/perf"


def available():
    return shutil.which("perf") is not None


class PerfStat:
    """`perf stat` attached to `pids` (every thread of each, and threads started later) until
    `stop`; `per_request(n)` turns the totals into per-request figures."""

    def __init__(self, pids):
        self.proc = subprocess.Popen(
            [PERF, "stat", "-x", ",", "-e", ",".join(EVENTS), "-p",
             ",".join(str(p) for p in pids)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self):
        """SIGINT makes perf print its totals; {event: value or None when not supported}."""
        self.proc.send_signal(2)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return parse(err)

    @staticmethod
    def per_request(totals, requests):
        out = {}
        for ev, key in KEYS.items():
            v = totals.get(ev)
            if v is None or not requests:
                out[key] = None
            elif ev == "task-clock":  # perf reports milliseconds
                out[key] = round(v * 1e3 / requests, 1)
            else:
                out[key] = round(v / requests, 2 if ev != "instructions" else 0)
        return out


def parse(text):
    """perf stat -x, lines: value,unit,event,... ; '<not supported>' / '<not counted>' -> None."""
    totals = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 3:
            continue
        event = parts[2].split(":")[0]
        if event not in EVENTS:
            continue
        try:
            totals[event] = float(parts[0])
        except ValueError:
            totals[event] = None
    return totals
