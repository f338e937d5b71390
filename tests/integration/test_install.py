"""`make install` / `make uninstall` into a scratch DESTDIR: the exact file list, modes,
PREFIX rewriting of the units, a modified config surviving reinstall and uninstall, and a
refusal when the binaries are not built."""
import os
import shutil
import stat
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "etc", "config.yaml")
SCRIPT = os.path.join(ROOT, "systemd", "install.sh")

DOCS = ["operator-guide.md", "integration-guide.md", "architecture.md"]


def expected_files(prefix):
    unitdir = "lib/systemd/system" if prefix == "/usr" else prefix.lstrip("/") + "/lib/systemd/system"
    sysusers = "usr/lib/sysusers.d" if prefix == "/usr" else prefix.lstrip("/") + "/lib/sysusers.d"
    p = prefix.lstrip("/")
    files = {
        f"{p}/bin/ivs-autoscaler": 0o755,
        f"{p}/bin/ivs-autoscalerctl": 0o755,
        f"{unitdir}/ivs-autoscaler.service": 0o644,
        f"{unitdir}/ivs-autoscaler.socket": 0o644,
        f"{sysusers}/ivs-autoscaler.conf": 0o644,
        f"{p}/share/man/man8/ivs-autoscaler.8": 0o644,
        f"{p}/share/man/man8/ivs-autoscalerctl.8": 0o644,
        f"{p}/share/man/man5/ivs-autoscaler.yaml.5": 0o644,
    }
    for d in DOCS:
        files[f"{p}/share/doc/ivs-autoscaler/{d}"] = 0o644
    if os.path.exists(CONFIG):
        files["etc/ivs-autoscaler/config.yaml"] = 0o644
    return files


def tree(dest):
    found = {}
    for dirpath, _, names in os.walk(dest):
        for name in names:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, dest)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def need_config():
    if not os.path.exists(CONFIG):
        pytest.skip("etc/config.yaml is not in this tree yet (written by the config module)")


@pytest.fixture(scope="module")
def built():
    """Build the binaries the way `make install` would; skip if the tree does not build yet."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    proc = subprocess.run(["make", "-s", "-C", ROOT, "all"], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        pytest.skip("`make` fails (other modules still missing?):\n" + proc.stderr[-2000:])
    return os.path.join(ROOT, "build")


def make(target, dest, prefix="/usr"):
    proc = subprocess.run(["make", "-s", "-C", ROOT, target, f"DESTDIR={dest}",
                           f"PREFIX={prefix}"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_install_exact_file_list(built, tmp_path):
    out = make("install", tmp_path)
    want = expected_files("/usr")
    assert tree(tmp_path) == want
    # Every installed path is printed.
    for rel in want:
        assert f"installed {tmp_path}/{rel}" in out, rel
    for page in ["man8/ivs-autoscaler.8", "man8/ivs-autoscalerctl.8", "man5/ivs-autoscaler.yaml.5"]:
        with open(tmp_path / "usr/share/man" / page, "rb") as f:
            assert not f.read(2) == b"\x1f\x8b", f"{page} must not be gzipped"
    with open(os.path.join(built, "ivs-autoscaler"), "rb") as a, \
            open(tmp_path / "usr/bin/ivs-autoscaler", "rb") as b:
        assert a.read() == b.read()
    unit = (tmp_path / "lib/systemd/system/ivs-autoscaler.service").read_text()
    assert "ExecStart=/usr/bin/ivs-autoscaler -c /etc/ivs-autoscaler/config.yaml" in unit


def test_install_other_prefix_rewrites_units(built, tmp_path):
    out = make("install", tmp_path, prefix="/opt/ivs")
    assert tree(tmp_path) == expected_files("/opt/ivs")
    unit = (tmp_path / "opt/ivs/lib/systemd/system/ivs-autoscaler.service").read_text()
    assert "ExecStart=/opt/ivs/bin/ivs-autoscaler -c /etc/ivs-autoscaler/config.yaml" in unit
    assert "ExecReload=/opt/ivs/bin/ivs-autoscalerctl reload" in unit
    assert "/usr/bin/ivs-autoscaler" not in unit
    assert "installed" in out
    make("uninstall", tmp_path, prefix="/opt/ivs")
    assert tree(tmp_path) == {}


def test_reinstall_keeps_modified_config(built, tmp_path):
    need_config()
    make("install", tmp_path)
    conf = tmp_path / "etc/ivs-autoscaler/config.yaml"
    mine = conf.read_text() + "# local change\n"
    conf.write_text(mine)

    out = make("install", tmp_path)
    assert conf.read_text() == mine
    dist = tmp_path / "etc/ivs-autoscaler/config.yaml.dist"
    with open(CONFIG, encoding="utf-8") as f:
        assert dist.read_text() == f.read()
    assert f"kept {conf}" in out

    out = make("uninstall", tmp_path)
    assert tree(tmp_path) == {"etc/ivs-autoscaler/config.yaml": 0o644}
    assert conf.read_text() == mine
    assert f"kept {conf}" in out


def test_reinstall_unmodified_config_is_quiet_and_uninstall_removes_all(built, tmp_path):
    need_config()
    make("install", tmp_path)
    out = make("install", tmp_path)
    assert "config.yaml.dist" not in out
    assert tree(tmp_path) == expected_files("/usr")
    out = make("uninstall", tmp_path)
    assert tree(tmp_path) == {}
    assert not (tmp_path / "etc/ivs-autoscaler").exists()
    assert "removed" in out


def test_refuses_without_binaries(tmp_path):
    dest = tmp_path / "dest"
    proc = subprocess.run(["sh", SCRIPT, "install", str(dest), "/usr", str(tmp_path / "nobuild")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "is not built" in proc.stderr
    assert not dest.exists()


@pytest.mark.parametrize("argv", [
    [],
    ["install"],
    ["frobnicate", "/tmp/x", "/usr", "build"],
])
def test_usage_errors(argv):
    proc = subprocess.run(["sh", SCRIPT] + argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage:")


@pytest.mark.parametrize("prefix", ["usr", "/usr/lo cal", "/usr|x"])
def test_rejects_unsafe_prefix(tmp_path, prefix):
    proc = subprocess.run(["sh", SCRIPT, "install", str(tmp_path / "d"), prefix, "build"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "PREFIX" in proc.stderr
    assert not (tmp_path / "d").exists()
