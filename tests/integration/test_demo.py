"""Smoke test of `make demo` (tests/demo/demo.py): a shortened run must grow the fleet beyond the
origin and drain it back, stop everything it started and exit 0."""
import os
import re
import subprocess

from harness import BUILD, PYTHON, ROOT


def test_demo_grows_and_drains_back():
    p = subprocess.run([PYTHON, os.path.join(ROOT, "tests", "demo", "demo.py"), "--build", BUILD,
                        "--duration", "20", "--quiet"],
                       capture_output=True, text=True, timeout=180)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    m = re.search(r"^DEMO RESULT peak_stages=(\d+) final_stages=(\d+) status=ok$", p.stdout, re.M)
    assert m, out
    assert int(m.group(1)) > 1, out
    assert int(m.group(2)) == 1, out
    assert "stage created" in p.stdout and "stage deleted" in p.stdout, out
    # Everything it started is gone: its temp dir (named in the first line) was removed.
    cfg = re.search(r"config (\S+)/config\.yaml", p.stdout)
    assert cfg and not os.path.exists(cfg.group(1)), out
    pid = int(re.search(r"daemon pid (\d+)", p.stdout).group(1))
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, f"daemon {pid} still running after the demo ended"
