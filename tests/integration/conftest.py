"""pytest fixtures over harness.py: each test gets its own redis-server and simulator."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


@pytest.fixture
def tmpdir_path():
    d = harness.make_tmpdir()
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def redis(tmpdir_path):
    r = harness.Redis(tmpdir_path)
    yield r
    r.stop()


@pytest.fixture
def sim(tmpdir_path):
    s = harness.Sim(tmpdir_path)
    yield s
    s.stop()


@pytest.fixture
def daemons():
    """Factory list: every Daemon appended here is stopped at the end of the test."""
    started = []
    yield started
    for d in started:
        try:
            d.stop()
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass
