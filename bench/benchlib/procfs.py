"""What /proc says about the server under test: its process tree (PPid links), the CPU ticks
and memory summed over that tree, the machine's busy time, whether a process still lives, and
which processes still mention the run's temp directory. Read-only apart from `kill_strays`."""

import os
import re
import signal
from collections import defaultdict


def proc_stat(pid):
    """(ppid, state, utime+stime+cutime+cstime ticks, starttime) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read().decode("latin-1")
    except OSError:
        return None
    rest = s[s.rfind(")") + 2:].split()
    # rest[0] is field 3 (state): field n -> rest[n - 3]
    return (int(rest[1]), rest[0], sum(int(x) for x in rest[11:15]), int(rest[19]))


def all_stats():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def tree(root):
    """{pid: stat} for root and all its descendants."""
    stats = all_stats()
    children = defaultdict(list)
    for pid, st in stats.items():
        children[st[0]].append(pid)
    result, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in result:
            result[pid] = stats[pid]
            todo.extend(children.get(pid, ()))
    return result


def tree_cpu_ticks(root):
    """utime+stime+cutime+cstime summed over the live process tree.

    A process that exits is reaped by its parent (in the tree: Apache's parent reaps its
    children and mod_wsgi's daemons), whose cutime/cstime then holds its CPU time, so the sum
    stays cumulative across exits. Only processes reaped outside the tree are lost."""
    return sum(st[2] for st in tree(root).values())


def tree_mem(root):
    """(RSS MiB, PSS MiB, process count) summed over the tree, from smaps_rollup."""
    rss = pss = n = 0
    for pid, st in tree(root).items():
        if st[1] == "Z":
            continue
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                text = f.read()
        except OSError:
            continue
        m1 = re.search(r"^Rss:\s+(\d+) kB", text, re.M)
        m2 = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        if m1 and m2:
            rss += int(m1.group(1))
            pss += int(m2.group(1))
            n += 1
    return rss / 1024, pss / 1024, n


def machine_busy_ticks():
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals[:8]) - idle  # user nice system idle iowait irq softirq steal


def alive(pid, starttime):
    st = proc_stat(pid)
    return st is not None and st[3] == starttime and st[1] not in ("Z", "X")


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def kill_strays(marker):
    """SIGKILL every process whose command line contains marker (the run's temp directory:
    nothing of the run may outlive it); returns their PIDs as strings."""
    strays = [p for p in os.listdir("/proc") if p.isdigit() and marker.encode() in cmdline(p)]
    for p in strays:
        try:
            os.kill(int(p), signal.SIGKILL)
        except ProcessLookupError:
            pass
    return strays
