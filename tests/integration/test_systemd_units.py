"""systemd units: they verify, they are hardened, and they say what the contracts say.

Runs `systemd-analyze verify` and `systemd-analyze security --offline=true` on the shipped
units, checks the directives the daemon depends on, and creates the admin group from the
sysusers.d file in a scratch root. Skips (with the reason) only when the tool is absent.
"""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# ExecStart= needs an absolute path: a relative IVS_BUILD (e.g. "build") is taken from the cwd.
BUILD = os.path.abspath(os.environ.get("IVS_BUILD", os.path.join(ROOT, "build")))
SYSTEMD = os.path.join(ROOT, "systemd")
SERVICE = os.path.join(SYSTEMD, "ivs-autoscaler.service")
SOCKET = os.path.join(SYSTEMD, "ivs-autoscaler.socket")
SYSUSERS = os.path.join(SYSTEMD, "ivs-autoscaler.sysusers")
MAX_EXPOSURE = 1.5


def need(tool):
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: systemd)")
    return path


def parse_unit(path):
    """Return {section: [(key, value), ...]}; keys may repeat, as in real unit files."""
    sections = {}
    current = None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], [])
                continue
            assert current is not None, f"{path}: directive outside a section: {line}"
            key, sep, value = line.partition("=")
            assert sep, f"{path}: not a key=value line: {line}"
            current.append((key.strip(), value.strip()))
    return sections


def values(sections, section, key):
    return [v for k, v in sections.get(section, []) if k == key]


def one(sections, section, key):
    found = values(sections, section, key)
    assert len(found) == 1, f"[{section}] {key}= expected once, found {found}"
    return found[0]


@pytest.fixture
def verify_dir(tmp_path):
    """A copy of both units that `systemd-analyze verify` can check on a build machine.

    verify insists that ExecStart= names an existing executable, and the daemon is not
    installed here: point it at the built binary (or /bin/true before it is built). It also
    runs `man` for every Documentation= entry, so MANPATH points at our own pages, which
    checks that the references resolve to pages we ship.
    """
    built = os.path.join(BUILD, "ivs-autoscaler")
    exe = built if os.access(built, os.X_OK) else shutil.which("true")
    built_ctl = os.path.join(BUILD, "ivs-autoscalerctl")
    ctl = built_ctl if os.access(built_ctl, os.X_OK) else shutil.which("true")
    with open(SERVICE, encoding="utf-8") as f:
        text = f.read()
    assert "ExecStart=/usr/bin/ivs-autoscaler " in text
    assert "ExecReload=/usr/bin/ivs-autoscalerctl " in text
    (tmp_path / "ivs-autoscaler.service").write_text(
        text.replace("ExecStart=/usr/bin/ivs-autoscaler ", f"ExecStart={exe} ")
            .replace("ExecReload=/usr/bin/ivs-autoscalerctl ", f"ExecReload={ctl} "))
    shutil.copy(SOCKET, tmp_path / "ivs-autoscaler.socket")
    for section in ("5", "8"):
        mandir = tmp_path / "man" / f"man{section}"
        mandir.mkdir(parents=True)
        for page in os.listdir(os.path.join(ROOT, "docs", "man")):
            if page.endswith("." + section):
                shutil.copy(os.path.join(ROOT, "docs", "man", page), mandir / page)
    return tmp_path


def test_units_verify(verify_dir):
    tool = need("systemd-analyze")
    if shutil.which("man") is None:
        pytest.skip("man is not installed: verify cannot check Documentation= (Debian: man-db)")
    env = dict(os.environ, MANPATH=str(verify_dir / "man"))
    proc = subprocess.run(
        [tool, "verify", str(verify_dir / "ivs-autoscaler.service"),
         str(verify_dir / "ivs-autoscaler.socket")],
        capture_output=True, text=True, env=env, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    complaints = [l for l in out.splitlines() if "ivs-autoscaler" in l]
    assert complaints == [], out


def test_service_exposure():
    tool = need("systemd-analyze")
    proc = subprocess.run([tool, "security", "--offline=true", "--no-pager", SERVICE],
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert m, f"no exposure line in:\n{out}"
    exposure = float(m.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{out}"


def test_service_contract():
    unit = parse_unit(SERVICE)
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "ExecStart": "/usr/bin/ivs-autoscaler -c /etc/ivs-autoscaler/config.yaml",
        "ExecReload": "/usr/bin/ivs-autoscalerctl reload",
        "WatchdogSec": "30s",
        "Restart": "on-failure",
        "TimeoutStopSec": "30s",
        "DynamicUser": "yes",
        "RuntimeDirectory": "ivs-autoscaler",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SupplementaryGroups": "ivs-autoscaler-admin",
    }
    for key, value in expected.items():
        assert one(unit, "Service", key) == value, key
    filters = values(unit, "Service", "SystemCallFilter")
    # credential_process helpers need execve/fork: the allow-list must stay @system-service.
    assert "@system-service" in filters
    assert not any("@process" in f for f in filters), filters
    # PrivateUsers=yes would map every admin's uid/gid to 65534 in SO_PEERCRED.
    assert values(unit, "Service", "PrivateUsers") in ([], ["no"])
    # The stop deadline of the daemon (20 s) must fit inside TimeoutStopSec.
    assert int(one(unit, "Service", "TimeoutStopSec").rstrip("s")) > 20
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    with open(SERVICE, encoding="utf-8") as f:
        assert "#LoadCredential=aws:/etc/ivs-autoscaler/aws-credentials" in f.read()


def test_socket_contract():
    unit = parse_unit(SOCKET)
    service = parse_unit(SERVICE)
    listen = one(unit, "Socket", "ListenStream")
    assert listen == "/run/ivs-autoscaler.sock"
    runtime = "/run/" + one(service, "Service", "RuntimeDirectory") + "/"
    # systemd removes RuntimeDirectory= when the service stops: the node must live elsewhere.
    assert not listen.startswith(runtime)
    assert one(unit, "Socket", "SocketMode") == "0660"
    assert one(unit, "Socket", "SocketGroup") == "ivs-autoscaler-admin"
    assert one(unit, "Socket", "Service") == "ivs-autoscaler.service"
    assert one(unit, "Install", "WantedBy") == "sockets.target"


def test_sysusers_creates_admin_group(tmp_path):
    tool = need("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    proc = subprocess.run([tool, f"--root={tmp_path}", SYSUSERS],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    groups = (tmp_path / "etc" / "group").read_text().splitlines()
    assert any(g.startswith("ivs-autoscaler-admin:x:") for g in groups), groups
