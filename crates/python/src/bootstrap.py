# The `mod_wsgi` module rwsgi installs in every interpreter (main and sub-interpreters).
# rwsgi runs this source once per interpreter; `_log` and the other `_` names are native
# functions inserted before it runs (`Input`, wsgi.input's type, is native too).
# Applications may `import mod_wsgi` as they do under mod_wsgi.

import _thread
import io as _io
import sys as _sys

version = (4, 9, 4)
rwsgi_version = None  # set by rwsgi
process_group = ''
application_group = ''


class Log(object):
    """The binary stream under wsgi.errors, sys.stdout and sys.stderr (their `.buffer`):
    complete lines go to Apache's error log, a partial one waits for its newline or a flush.
    Accepts bytes, bytearray and memoryview (and str, as mod_wsgi's Log does)."""

    __slots__ = ('_h', '_buf', 'name')

    closed = False

    def __init__(self, handle=None, name='<wsgi.errors>'):
        self._h = handle
        self._buf = ''
        self.name = name

    def write(self, s):
        if isinstance(s, (bytes, bytearray, memoryview)):
            n = len(s) if not isinstance(s, memoryview) else s.nbytes
            s = bytes(s).decode('utf-8', 'replace')
        elif isinstance(s, str):
            n = len(s)
        else:
            raise TypeError('argument must be a bytes-like object, not %s'
                            % type(s).__name__)
        data = self._buf + s
        if '\n' in data:
            lines = data.split('\n')
            self._buf = lines.pop()
            for line in lines:
                _log(self._h, line)
        else:
            self._buf = data
        return n

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if self._buf:
            buf, self._buf = self._buf, ''
            _log(self._h, buf)

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False

    def close(self):
        self.flush()

    def _dealloc_warn(self, source):
        # The TextIOWrapper over a Log asks its buffer for this when it is collected (io's own
        # files warn there of an unclosed file); without it every request's wsgi.errors made
        # and cleared an AttributeError.
        pass


def _text_stream(handle, name):
    """What mod_wsgi 4.9 gives as wsgi.errors, sys.stdout and sys.stderr: an io.TextIOWrapper
    (utf-8, errors 'replace', line-buffered, written through) over a Log."""
    return _io.TextIOWrapper(Log(handle, name), 'utf-8', 'replace', None, True, True)


# This thread's last wsgi.errors and its Log, for its next request.
_errors_kept = _thread._local()


def _errors(handle):
    """wsgi.errors for the request `handle` belongs to. Making the TextIOWrapper was ~13 % of
    the machine instructions of an embedded hello request (bench/instructions), so the
    thread's previous stream is given the new handle instead, but only when nothing else
    holds it or its Log (an application that kept one must still get "log object has
    expired" from it) and the application changed nothing on it (attributes, reconfigure()
    of what it can be asked about); otherwise a new stream, as before."""
    kept = getattr(_errors_kept, 's', None)
    if kept is not None:
        stream, log = kept
        # references: `kept`, the local name, getrefcount's argument (+ the stream's for log)
        if (_sys.getrefcount(stream) == 3 and _sys.getrefcount(log) == 4
                and not stream.__dict__ and stream.line_buffering and stream.write_through
                and stream.encoding == 'utf-8' and stream.errors == 'replace'):
            log._h = handle
            log._buf = ''
            log.name = '<wsgi.errors>'
            return stream
        del stream, log
    stream = _text_stream(handle, '<wsgi.errors>')
    _errors_kept.s = (stream, stream.buffer)
    return stream


class RequestTimeout(BaseException):
    """Raised inside a request thread that ran over request-timeout in a daemon process with
    interrupt-timeout set (as in mod_wsgi 6): a BaseException, so `except Exception` in the
    application does not swallow it."""


class Restricted(object):
    """What sys.stdin / sys.stdout become with WSGIRestrictStdin / WSGIRestrictStdout On."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        raise OSError('%s access restricted by mod_wsgi' % self._name)


class FileWrapper(object):
    """wsgi.file_wrapper. rwsgi sends a real file with sendfile; anything else is iterated."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def _restricted_signal(signum, handler):
    import traceback
    print('mod_wsgi: Callback registration for signal %s ignored.' % signum, file=_sys.stderr)
    traceback.print_stack(file=_sys.stderr)
    return handler


def _setup(restrict_stdin, restrict_stdout, restrict_signal, python_path):
    _sys.stderr = _text_stream(None, '<stderr>')
    _sys.stdout = Restricted('sys.stdout') if restrict_stdout else _text_stream(None, '<stdout>')
    if restrict_stdin:
        _sys.stdin = Restricted('sys.stdin')
    if restrict_signal:
        import signal
        signal.signal = _restricted_signal
    if python_path:
        import site
        for entry in python_path:
            site.addsitedir(entry)
    _adopt_package()


def _adopt_package():
    """mod_wsgi from PyPI on sys.path (mod_wsgi.express, mod_wsgi.server, ...) stays
    importable below this module, as mod_wsgi 6 arranges: this module takes that package's
    __path__ (what mod_wsgi-express's generated handler.wsgi imports)."""
    try:
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec('mod_wsgi')
    except Exception:
        return
    if spec is not None and spec.submodule_search_locations:
        globals()['__path__'] = list(spec.submodule_search_locations)
