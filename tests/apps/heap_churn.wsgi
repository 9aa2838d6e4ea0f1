"""Fills the heap with 100 KiB blocks and frees all but every 50th (they pin the arena, so
glibc cannot give the rest back by itself); answers with its pid."""
import os

KEPT = []


def application(environ, start_response):
    # written, so resident (bytes(n) would get fresh zero pages from calloc, never touched)
    blocks = [b"x" * (100 * 1024) for _ in range(1200)]
    KEPT.extend(blocks[49::50])
    del blocks
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
