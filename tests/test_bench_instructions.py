"""bench/instructions end to end: real Apache under valgrind's callgrind, static and embedded
rwsgi, a handful of requests each. It must report a figure per request for both, rwsgi's above
static Apache's, and leave no server, valgrind or temp tree behind."""

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import harness
from harness import rwsgi_module, venv_path

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "bench" / "instructions"


def _ours():
    """Processes of any bench tree (valgrind runs apache2 with the config inside it)."""
    out = subprocess.run(["pgrep", "-af", "rwsgi-bench-"], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


@pytest.mark.skipif(harness.testing_modwsgi(), reason="measures rwsgi's own build")
def test_instructions_per_request_of_static_and_embedded_hello():
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind not installed (scripts/deps installs it)")
    before = set(glob.glob("/tmp/rwsgi-bench-*"))
    env = dict(os.environ, RWSGI_MODULE=rwsgi_module())
    r = subprocess.run(
        [str(TOOL), "--workloads", "hello", "--variants", "static,rwsgi-embedded",
         "--requests", "40", "--base", "5", "--venv", venv_path()],
        capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = dict(re.findall(r"^\| hello \| (\S+) \| ([\d,.]+)k \|", r.stdout, re.M))
    assert set(rows) == {"static", "rwsgi-embedded"}, r.stdout
    static, rwsgi = (float(rows[v].replace(",", "")) * 1000 for v in ("static",
                                                                       "rwsgi-embedded"))
    # a static 13-byte file is tens of thousands of instructions; a Python request more
    assert 5_000 < static < rwsgi, r.stdout
    assert f"| hello | rwsgi-embedded | {rows['rwsgi-embedded']}k | - | " in r.stdout
    assert not _ours(), _ours()
    assert set(glob.glob("/tmp/rwsgi-bench-*")) <= before
