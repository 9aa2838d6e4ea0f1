"""Page faults of this thread while it makes and frees ~2 MiB of small objects (three of
pymalloc's 1 MiB arenas), after doing the same once before."""
import os
import resource


def churn():
    objs = [b"%064d" % i for i in range(20000)]
    del objs


def application(environ, start_response):
    churn()
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    churn()
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [str(faults).encode()]
