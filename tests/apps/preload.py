# Loaded by WSGIImportScript at Apache child start, before any request.
import builtins
import os
import sys

builtins.rwsgi_preloaded_pid = os.getpid()
print("rwsgi preload ran in pid %d" % os.getpid(), file=sys.stderr)
