"""Shared fixtures for the rwsgi integration tests.

Environment:
  RWSGI_MODULE          path of mod_rwsgi.so (default <repo>/target/release/mod_rwsgi.so)
  RWSGI_TEST_MODULE     "modwsgi": every test that normally loads rwsgi loads
                        Debian's mod_wsgi 4.9.4 instead (validates the suite);
                        rwsgi-specific tests are then xfail.
  RWSGI_VENV            the test virtualenv (default /var/tmp/rwsgi-venv)
  CI=true               a missing module / venv is a hard failure, not a skip
  RWSGI_KEEP_ROOT=1     keep the servers' temp dirs (config, logs) for debugging
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness
from harness import MPMS, ApacheServer, modwsgi_module, rwsgi_module, testing_modwsgi, venv_path

__all__ = ["MPMS", "MODES", "in_mode", "embedded_only"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(msg: str):
    if _in_ci():
        pytest.fail(msg + " (CI=true: a missing prerequisite is a failure)", pytrace=False)
    pytest.skip(msg)


# --------------------------------------------------------------------------
# markers


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "rwsgi_specific(reason, modes=None): rwsgi deliberately differs from mod_wsgi here "
        "(in these modes of a test run in both); xfail when RWSGI_TEST_MODULE=modwsgi",
    )
    config.addinivalue_line(
        "markers",
        "modwsgi_daemon_bug(reason): mod_wsgi's daemon mode gets this wrong (its embedded mode "
        "does not); the daemon run is xfail when RWSGI_TEST_MODULE=modwsgi",
    )


def _mode_of(item):
    cs = getattr(item, "callspec", None)
    return cs.params.get("srv") if cs else None


def pytest_collection_modifyitems(config, items):
    if not testing_modwsgi():
        return
    for item in items:
        bug = item.get_closest_marker("modwsgi_daemon_bug")
        if bug is not None and _mode_of(item) == "daemon":
            item.add_marker(pytest.mark.xfail(
                reason="mod_wsgi daemon-mode bug: " + (bug.args[0] if bug.args else ""),
                strict=True))
            continue
        m = item.get_closest_marker("rwsgi_specific")
        modes = m.kwargs.get("modes") if m is not None else None
        if m is not None and (modes is None or _mode_of(item) in modes):
            reason = m.kwargs.get("reason") or (m.args[0] if m.args else "rwsgi-specific behaviour")
            strict = m.kwargs.get("strict", True)
            item.add_marker(
                pytest.mark.xfail(reason="mod_wsgi differs by design: " + reason, strict=strict)
            )


def pytest_report_header(config):
    mod = rwsgi_module()
    state = "present" if Path(mod).exists() else "MISSING"
    return [
        f"rwsgi module under test: {mod} ({state})"
        + ("  [RWSGI_TEST_MODULE=modwsgi]" if testing_modwsgi() else ""),
        f"reference mod_wsgi: {modwsgi_module()}",
        f"test venv: {venv_path()}",
    ]


def pytest_sessionfinish(session, exitstatus):
    harness.stop_all_servers()


# --------------------------------------------------------------------------
# module / venv prerequisites


@pytest.fixture(scope="session")
def rwsgi_path() -> str:
    """The module under test (mod_rwsgi.so, or mod_wsgi with RWSGI_TEST_MODULE=modwsgi)."""
    path = rwsgi_module()
    if not Path(path).is_file():
        _missing(
            f"rwsgi module not built: {path} does not exist "
            "(build with cargo build --release, set RWSGI_MODULE, or run the suite "
            "against mod_wsgi with RWSGI_TEST_MODULE=modwsgi)"
        )
    return path


@pytest.fixture(scope="session")
def modwsgi_path() -> str:
    path = modwsgi_module()
    if not Path(path).is_file():
        _missing(f"mod_wsgi not installed: {path} (apt-get install libapache2-mod-wsgi-py3)")
    return path


@pytest.fixture(scope="session")
def venv() -> str:
    path = venv_path()
    if not Path(path, "bin", "python").exists() or not Path(path, "pyvenv.cfg").exists():
        _missing(f"test venv missing: {path} (run scripts/deps)")
    return path


# --------------------------------------------------------------------------
# modes: one site, run embedded or in a daemon process group (as Granian runs each test
# across its interfaces)

MODES = ("embedded", "daemon")


def in_mode(config: str, mode: str) -> str:
    """`config` as written (embedded), or with every script of it sent to one daemon group."""
    if mode == "embedded":
        return config
    return (
        "WSGISocketPrefix {root}/run/wsgi\n"
        "WSGIDaemonProcess suite processes=1 threads=4\n"
        "WSGIProcessGroup suite\n" + config
    )


def embedded_only(request, why: str):
    """Skips the daemon-mode run of a test that is about embedded mode itself."""
    if getattr(request.node, "callspec", None) and request.node.callspec.params.get("srv") == "daemon":
        pytest.skip(f"embedded mode only: {why}")


# --------------------------------------------------------------------------
# servers


@pytest.fixture
def make_server(rwsgi_path):
    """Factory for function-scoped servers that are stopped after the test.

    make_server(config, mpm="event", module=None, start=True, **kw) -> ApacheServer
    """
    servers = []

    def factory(config: str = "", *, mpm: str = "event", module: "str | None" = None,
                start: bool = True, **kw) -> ApacheServer:
        srv = ApacheServer(module or rwsgi_path, mpm=mpm, config=config, **kw)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield factory
    for s in servers:
        s.stop(wait=False)
