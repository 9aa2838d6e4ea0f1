"""Reading Apache error logs: which lines mean a child crashed, where Apache's shutdown begins,
which start/stop notices every Apache writes (left out of the report), and how a line is
stripped of timestamps, PIDs, ports and temp paths so that the same message from different
starts counts as one distinct line."""

import re
from collections import Counter

# A child process killed by a signal (Apache's AH00052/AH00051; mod_wsgi daemon deaths).
CRASH_LOG = re.compile(r"exit signal|terminated by signal|has died")
SIGTERM_LOG = re.compile(r"AH00491: |AH00492: ")  # caught SIGTERM / SIGWINCH
# Startup / shutdown notices every Apache writes: left out of the report.
BENIGN_LOG = re.compile(r"AH00489: |AH00491: |AH00094: ")


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
