# The `mod_wsgi` module rwsgi installs in every interpreter (main and sub-interpreters).
# rwsgi runs this source once per interpreter; `_read`, `_readline` and `_log` are native
# functions inserted before it runs. Applications may `import mod_wsgi` as they do under
# mod_wsgi.

import sys as _sys

version = (4, 9, 4)
rwsgi_version = None  # set by rwsgi
process_group = ''
application_group = ''


class Input(object):
    """wsgi.input: the request body."""

    __slots__ = ('_h',)

    def __init__(self, handle):
        self._h = handle

    def read(self, size=-1):
        if size is None:
            size = -1
        return _read(self._h, size)

    def readline(self, size=-1):
        if size is None:
            size = -1
        return _readline(self._h, size)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = _readline(self._h, -1)
            if not line:
                break
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = _readline(self._h, -1)
        if not line:
            raise StopIteration
        return line

    def close(self):
        pass


class Log(object):
    """wsgi.errors, sys.stdout and sys.stderr: lines go to Apache's error log."""

    __slots__ = ('_h', '_buf', 'name')

    encoding = 'utf-8'
    errors = 'replace'
    closed = False
    line_buffering = True

    def __init__(self, handle=None, name='<wsgi.errors>'):
        self._h = handle
        self._buf = ''
        self.name = name

    def write(self, s):
        if isinstance(s, (bytes, bytearray, memoryview)):
            s = bytes(s).decode('utf-8', 'replace')
        elif not isinstance(s, str):
            raise TypeError('argument must be a str, not %s' % type(s).__name__)
        data = self._buf + s
        if '\n' in data:
            lines = data.split('\n')
            self._buf = lines.pop()
            for line in lines:
                _log(self._h, line)
        else:
            self._buf = data
        return len(s)

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
    _sys.stderr = Log(None, '<stderr>')
    _sys.stdout = Restricted('sys.stdout') if restrict_stdout else Log(None, '<stdout>')
    if restrict_stdin:
        _sys.stdin = Restricted('sys.stdin')
    if restrict_signal:
        import signal
        signal.signal = _restricted_signal
    if python_path:
        import site
        for entry in python_path:
            site.addsitedir(entry)
