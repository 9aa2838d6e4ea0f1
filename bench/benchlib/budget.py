"""Where a request's CPU time goes: `perf report` lines (overhead share, DSO, symbol) of a
`perf record` over the server's processes, sorted into the buckets the per-request budget
names — Python running the application, the GIL and futex hand-offs, Python objects and
allocation, environ building, wsgi.input, the response path, IPC, Apache and its filters, the
kernel's network and scheduler work — and turned into microseconds per request.

The buckets are decided by the symbol first (a Rust path, a CPython or glibc function name),
then by the DSO; `classify` is pure, so it is unit-tested without perf."""

import re

# (bucket, DSO pattern or None, symbol pattern or None); first match wins.
RULES = [
    # the GIL and thread hand-offs, wherever they are
    ("GIL, locks and futex hand-offs", None,
     r"take_gil|drop_gil|PyEval_(Save|Restore|Acquire|Release)Thread|PyGILState_|"
     r"PyCOND_|_PyMutex|futex|pthread_cond_|__lll_lock|__lll_unlock|pthread_mutex_|"
     r"sem_(wait|post)|parking_lot|std::sync::(mutex|condvar)|std::thread::park"),
    ("kernel: scheduler", r"\[kernel", r"schedule|switch_to|finish_task_switch|"
     r"try_to_wake_up|enqueue_task|dequeue_task|update_curr|pick_next|select_task_rq|"
     r"ttwu|psi_|idle|cpuidle|do_idle|native_safe_halt|wake_up"),
    ("kernel: network and I/O", r"\[kernel", r"tcp|ip_|inet|sock|skb|net_|__sys_(send|recv)|"
     r"unix_|epoll|ep_poll|copy_user|copyout|copyin|rep_movs|clear_user|sendfile|splice|"
     r"loopback|napi|__dev_|nf_|writev|readv|vfs_(read|write)|iov_iter|__x64_sys_(read|write)"),
    ("kernel: memory", r"\[kernel", r"page|mm_|mmap|munmap|do_anonymous|handle_mm_fault|"
     r"clear_page|zap_|lru|folio|vma|madvise|brk"),
    ("kernel: other", r"\[kernel", None),
    # rwsgi, by module path (debuginfo keeps the Rust paths)
    ("rwsgi: environ", r"mod_rwsgi|rwsgi-daemon", r"environ|cgi"),
    ("rwsgi: wsgi.input", r"mod_rwsgi|rwsgi-daemon", r"exchange::input|read_body|BytesBuilder"),
    ("rwsgi: response", r"mod_rwsgi|rwsgi-daemon", r"response|start_response|output|Output|"
     r"file_wrapper|send_file|write"),
    ("rwsgi: IPC", r"mod_rwsgi|rwsgi-daemon", r"ipc|forward|relay|ring|frame|hmac|sha2|"
     r"session|worker"),
    ("rwsgi: other", r"mod_rwsgi|rwsgi-daemon", None),
    ("mod_wsgi", r"mod_wsgi", None),
    # CPython
    ("Python objects and allocation", r"libpython|python3", r"[Mm]alloc|[Ff]ree\b|_Free|"
     r"Dealloc|dealloc|_dealloc|New\b|_New|Dict|dict_|insertdict|Unicode|unicode_|Bytes_|"
     r"bytes_|Tuple|tuple_|List|list_|gc_|_PyObject_GC|visit_|subtype_|type_call|"
     r"lookdict|Hash|hash|Intern|PyLong_|long_"),
    ("Python bytecode (the application)", r"libpython|python3", r"_PyEval_EvalFrame|"
     r"_PyFunction_Vectorcall|_PyObject_Vectorcall|method_vectorcall|cfunction|PyObject_Call|"
     r"slot_|_PyEval_|call_function|builtin_|_Py_call"),
    ("Python runtime: other", r"libpython|python3", None),
    # C library
    ("libc: malloc", r"libc", r"malloc|free|realloc|calloc|arena|tcache|_int_"),
    ("libc: memcpy/memset", r"libc", r"mem(cpy|move|set|cmp|chr)|str(len|chr|cmp)"),
    ("libc: other", r"libc", None),
    # Apache
    ("Apache (core, filters, APR)", r"apache2|libapr|mod_|httpd", None),
]

COMPILED = [(b, d and re.compile(d), s and re.compile(s)) for b, d, s in RULES]


def classify(dso, sym):
    for bucket, d, s in COMPILED:
        if d is not None and not d.search(dso):
            continue
        if s is not None and not s.search(sym):
            continue
        return bucket
    return "other"


LINE = re.compile(r"^\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+\[[.kgu]\]\s+(.*?)\s*$")


def parse_report(text):
    """`perf report --stdio --no-children --sort dso,sym -F overhead,sample,dso,sym` lines ->
    [(samples, dso, symbol)]."""
    rows = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            rows.append((int(m.group(2)), m.group(3), m.group(4)))
    return rows


def buckets(rows, seconds_per_sample, requests):
    """{bucket: µs per request} from the sampled rows."""
    out = {}
    for samples, dso, sym in rows:
        b = classify(dso, sym)
        out[b] = out.get(b, 0.0) + samples * seconds_per_sample * 1e6 / requests
    return out


ORDER = [b for b, _, _ in RULES] + ["other"]


def table(per_variant, variants, static=None, refs=None):
    """Markdown: one row per bucket, one column per variant (µs/req), then each variant's
    total and, when static Apache ran, its total above static."""
    refs = refs or {}
    out = ["| where the CPU goes, µs/request | " + " | ".join(variants) + " |",
           "|---|" + "---|" * len(variants)]
    for b in ORDER:
        vals = [per_variant[v].get(b) for v in variants]
        if all((x or 0) < 0.5 for x in vals):
            continue
        out.append(f"| {b} | " + " | ".join(f"{x:.1f}" if x else "-" for x in vals) + " |")
    totals = {v: sum(per_variant[v].values()) for v in variants}
    out.append("| **total** | " + " | ".join(f"**{totals[v]:.1f}**" for v in variants) + " |")
    if static and static in totals:
        above = {v: totals[v] - totals[static] for v in variants}
        out.append("| **above static Apache** | " + " | ".join(
            "-" if v == static else f"**{above[v]:.1f}**" for v in variants) + " |")
        cells = []
        for v in variants:
            ref = refs.get(v)
            cells.append(f"{above[v] / above[ref]:.2f}×"
                         if ref in above and above[ref] > 0 and v != static else "-")
        out.append("| above static ÷ mod_wsgi's (same mode) | " + " | ".join(cells) + " |")
    return out
