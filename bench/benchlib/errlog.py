"""Reading Apache error logs: which lines mean a child crashed, where Apache's shutdown begins,
which start/stop notices every Apache writes (left out of the report), and how a line is
stripped of timestamps, PIDs, ports and temp paths so that the same message from different
starts counts as one distinct line."""

import datetime
import re
from collections import Counter

# A child process killed by a signal (Apache's AH00052/AH00051; mod_wsgi daemon deaths).
CRASH_LOG = re.compile(r"exit signal|terminated by signal|has died")
SIGTERM_LOG = re.compile(r"AH00491: |AH00492: ")  # caught SIGTERM / SIGWINCH
# Startup / shutdown notices every Apache writes: left out of the report.
BENIGN_LOG = re.compile(r"AH00489: |AH00491: |AH00094: ")


def logged_at(line):
    """The wall-clock time (seconds since the epoch) of an error-log line, None if it has no
    Apache timestamp ("[Tue Dec 01 08:31:45.815094 2026] ..."; Apache writes local time)."""
    m = re.match(r"^\[(\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2}\.\d{6} \d{4})\]", line)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S.%f %Y").timestamp()


def split_at_stop(lines, sigterm_at):
    """(before the stop, the stop) of the final error-log lines. The stop starts at Apache's
    "caught SIGTERM", or earlier at the first line written after the harness sent SIGTERM:
    Apache logs the children it reaps while shutting down (AH00052 for one killed during its
    own start-up) before that notice."""
    cut = next((i for i, ln in enumerate(lines) if SIGTERM_LOG.search(ln)), len(lines))
    if sigterm_at is not None:
        cut = next((i for i, ln in enumerate(lines[:cut])
                    if (logged_at(ln) or 0) >= sigterm_at), cut)
    return lines[:cut], lines[cut:]


def normalize_log_line(line):
    line = re.sub(r"^\[[^\]]*\d{4}\] ", "", line)            # timestamp
    line = re.sub(r"\[pid \d+(:tid \d+)?\] ", "", line)
    line = re.sub(r"\[client 127\.0\.0\.1:\d+\] ", "", line)
    line = re.sub(r"pid=\d+", "pid=N", line)
    line = re.sub(r"\b(pid|process) \d+", r"\1 N", line)
    line = re.sub(r"/tmp/rwsgi-bench-[^/]+/", "<tmp>/", line)
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
    return line


def distinct_lines(chunks):
    """[(phase, lines)] -> [("[phase] normalized line", count)], most frequent first, the
    benign start/stop notices left out."""
    c = Counter()
    for phase, lines in chunks:
        for line in lines:
            if not BENIGN_LOG.search(line):
                c[f"[{phase}] " + normalize_log_line(line)] += 1
    return c.most_common()
