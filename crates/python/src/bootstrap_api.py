# The part of the `mod_wsgi` module applications use to watch themselves, as mod_wsgi 4.9
# provides it (and the cheap 6.x additions): per-request data, the request events,
# shutdown and signal callbacks, process and request metrics, and LogHandler. rwsgi runs
# this source in the module's namespace after bootstrap.py; `_log_at`, `_counters`,
# `_metrics_snapshot` and `_scoreboard` are native functions inserted before it runs; the
# `_request_*`, `_event_*` and `_process_*` functions are what rwsgi calls.

import os as _os
import sys as _sys
import threading as _threading
import time as _time

maximum_processes = 1  # set by rwsgi: processes= in a daemon, the MPM's in Apache
threads_per_process = 1

event_callbacks = []
shutdown_callbacks = []
signal_callbacks = []
active_requests = {}

_current = _threading.local()
_RESTART_TIME = _time.time()


def request_data():
    """The dict of the request this thread is serving (one per request)."""
    data = getattr(_current, 'data', None)
    if data is None:
        raise RuntimeError('no active request for thread')
    return data


def subscribe_events(callback):
    event_callbacks.append(callback)
    return callback


def subscribe_shutdown(callback):
    shutdown_callbacks.append(callback)
    return callback


def subscribe_signals(callback):
    signal_callbacks.append(callback)
    return callback


def _publish(name, event, callbacks):
    """callback(name, **event) in subscription order; a dict returned is merged into the
    event the later subscribers get; an exception is logged and the rest still run."""
    for callback in list(callbacks):
        try:
            result = callback(name, **event)
        except Exception:
            import traceback
            _log_at(3, 'mod_wsgi (pid=%d): Exception occurred within event callback.'
                    % _os.getpid())
            for line in traceback.format_exc().rstrip('\n').split('\n'):
                _log_at(3, line)
        else:
            if isinstance(result, dict):
                event.update(result)
    return event


# ---- a request's life (called by rwsgi) -----------------------------------------------

def _request_begin(request_id):
    data = {}
    _current.data = data
    active_requests[request_id] = data
    return data


def _request_end(request_id):
    _current.data = None
    active_requests.pop(request_id, None)


def _seconds(environ, key):
    """mod_wsgi.*_start values are microseconds (as strings); events give seconds."""
    try:
        return int(environ.get(key) or 0) / 1e6
    except (TypeError, ValueError):
        return 0.0


def _event_request_started(environ, application, data):
    """Publishes request_started; returns the application to call (a subscriber may return
    another one as application_object) and the response-started hook."""
    event = {
        'request_id': environ.get('mod_wsgi.request_id'),
        'thread_id': environ.get('mod_wsgi.thread_id'),
        'daemon_connects': int(environ.get('mod_wsgi.daemon_connects') or 0),
        'daemon_restarts': int(environ.get('mod_wsgi.daemon_restarts') or 0),
        'request_start': _seconds(environ, 'mod_wsgi.request_start'),
        'queue_start': _seconds(environ, 'mod_wsgi.queue_start'),
        'daemon_start': _seconds(environ, 'mod_wsgi.daemon_start'),
        'application_object': application,
        'request_environ': environ,
        'application_start': _time.time(),
        'request_data': data,
    }
    _publish('request_started', event, event_callbacks)
    return event.get('application_object', application)


def _wrap_start_response(start_response, request_id, data):
    """start_response that publishes response_started first."""
    def wrapped(status, headers, exc_info=None):
        if event_callbacks:
            _publish('response_started', {
                'request_id': request_id,
                'response_status': status,
                'response_headers': headers,
                'exception_info': exc_info,
                'request_data': data,
            }, event_callbacks)
        return start_response(status, headers, exc_info)
    return wrapped


def _event_request_exception(request_id, exc_info, data):
    _publish('request_exception', {
        'request_id': request_id,
        'exception_info': exc_info,
        'request_data': data,
    }, event_callbacks)


def _event_request_finished(request_id, stats, application_start, data):
    (input_reads, input_length, input_time, output_writes, output_length, output_time,
     cpu_user, cpu_system) = stats
    finish = _time.time()
    _publish('request_finished', {
        'request_id': request_id,
        'input_reads': input_reads,
        'input_length': input_length,
        'input_time': input_time,
        'output_length': output_length,
        'output_writes': output_writes,
        'output_time': output_time,
        'cpu_user_time': cpu_user,
        'cpu_system_time': cpu_system,
        'application_finish': finish,
        'application_time': finish - application_start,
        'request_data': data,
    }, event_callbacks)


# ---- the process's life (called by rwsgi) -----------------------------------------------

def _process_stopping(reason):
    event = {'shutdown_reason': reason}
    _publish('process_stopping', dict(event), event_callbacks)
    _publish('process_stopping', dict(event), shutdown_callbacks)


def _process_signal(signame, signum):
    event = {'signame': signame, 'signum': signum}
    _publish('process_signal', dict(event), event_callbacks)
    _publish('process_signal', dict(event), signal_callbacks)


# ---- metrics ------------------------------------------------------------------------------

def _stack_of(ident):
    """The Python stack of thread `ident` as traceback prints it (innermost call last), as a
    list of lines; None when that thread runs no Python code."""
    import traceback
    frame = _sys._current_frames().get(ident)
    if frame is None:
        return None
    return ''.join(traceback.format_stack(frame)).rstrip('\n').split('\n')


def _rss():
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * _os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return 0


def _max_rss():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def process_metrics():
    total, busy, threads = _counters()
    t = _os.times()
    now = _time.time()
    return {
        'pid': _os.getpid(),
        'request_busy_time': busy,
        'request_count': total,
        'memory_max_rss': _max_rss(),
        'memory_rss': _rss(),
        'cpu_user_time': t.user,
        'cpu_system_time': t.system,
        'restart_time': _RESTART_TIME,
        'current_time': now,
        'running_time': int(now - _RESTART_TIME),
        'request_threads': len(threads),
        'active_requests': len(active_requests),
        'threads': [{'thread_id': tid, 'request_count': n} for tid, n in threads],
    }


_SAMPLE = []  # (time, cpu user, cpu system) of the previous request_metrics() call


def request_metrics():
    """The interval since the previous call (the first call starts the sample: {})."""
    snap = _metrics_snapshot()
    t = _os.times()
    now = _time.time()
    if not _SAMPLE:
        _SAMPLE.append((now, t.user, t.system))
        return {}
    start, user0, system0 = _SAMPLE[0]
    _SAMPLE[0] = (now, t.user, t.system)
    period = max(now - start, 1e-9)
    (count, server_total, app_total, queue_total, daemon_total, buckets, per_thread,
     threads_started) = snap
    threads_active = len(active_requests)
    (server_b, app_b, queue_b, daemon_b) = [list(b) for b in buckets]
    per_thread = list(per_thread)
    daemon = process_group != ''
    busy = app_total
    return {
        'pid': _os.getpid(),
        'start_time': start,
        'stop_time': now,
        'sample_period': period,
        'cpu_user_time': (t.user - user0) / period,
        'cpu_system_time': (t.system - system0) / period,
        'memory_max_rss': _max_rss(),
        'memory_rss': _rss(),
        'request_threads_maximum': threads_per_process,
        'request_threads_started': threads_started,
        'capacity_utilization': busy / (period * max(threads_per_process, 1)),
        'request_count': count,
        'request_throughput': count / period,
        'server_time_buckets': server_b,
        'queue_time_buckets': queue_b,
        'daemon_time_buckets': daemon_b,
        'application_time_buckets': app_b,
        'request_threads_buckets': (per_thread + [0] * threads_per_process)[:threads_per_process],
        'request_threads_active': threads_active,
        'server_time': server_total / count if count else 0.0,
        'application_time': app_total / count if count else 0.0,
        'queue_time': (queue_total / count if count else 0.0) if daemon else None,
        'daemon_time': (daemon_total / count if count else 0.0) if daemon else None,
    }


def server_metrics():
    """Apache's scoreboard (WSGIServerMetrics On, embedded mode), else None."""
    return _scoreboard()


# ---- logging (mod_wsgi 6) -------------------------------------------------------------------

def _log_handler_class():
    import logging

    class LogHandler(logging.Handler):
        """A logging handler writing to Apache's error log at the record's level, in the
        request's context when there is one."""

        def emit(self, record):
            try:
                text = self.format(record)
                level = (1 if record.levelno >= logging.CRITICAL else
                         3 if record.levelno >= logging.ERROR else
                         4 if record.levelno >= logging.WARNING else
                         6 if record.levelno >= logging.INFO else 7)
                for line in text.split('\n'):
                    _log_at(level, line)
            except Exception:
                self.handleError(record)

    return LogHandler


LogHandler = _log_handler_class()
