"""Command line of ivs-autoscaler: --version, --help, usage errors (exit 2), and --check-config
on the shipped etc/config.yaml (exit 0, effective YAML on stdout, secrets masked) and on
malformed files (exit 1, every error as file:line:col on stderr, nothing on stdout)."""
import os
import re
import subprocess
import tempfile

import pytest
import yaml

from harness import BUILD, ROOT, Daemon

DAEMON = os.path.join(BUILD, "ivs-autoscaler")
SHIPPED = os.path.join(ROOT, "etc", "config.yaml")
ORIGIN = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234"
VALID_TAIL = f"fleets:\n  - name: main\n    origin_stage_arn: {ORIGIN}\n"


def run(*args, timeout=20):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    p = subprocess.run([DAEMON, *args], capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_version_prints_name_and_version():
    rc, out, err = run("--version")
    assert rc == 0, err
    assert re.fullmatch(r"ivs-autoscaler \d+\.\d+\.\d+\S*\n", out), out
    assert err == ""


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_goes_to_stdout_and_names_every_flag(flag):
    rc, out, err = run(flag)
    assert rc == 0, err
    assert out.startswith("usage: ivs-autoscaler")
    for opt in ("--config", "--check-config", "--online", "--once", "--dry-run", "--verbose",
                "--version", "--help"):
        assert opt in out, opt
    assert err == ""


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["-Z"],
    ["--config"],                  # missing argument
    ["-c"],
    ["--version=1"],               # no_argument flag given an argument
    ["-c", SHIPPED, "stray"],      # positional arguments are not accepted
])
def test_usage_errors_exit_2_with_usage_on_stderr(args):
    rc, out, err = run(*args)
    assert rc == 2, (rc, out, err)
    assert "usage: ivs-autoscaler" in err
    assert out == ""


def test_check_config_on_the_shipped_file_prints_effective_yaml():
    rc, out, err = run("--check-config", "-c", SHIPPED)
    assert rc == 0, err
    doc = yaml.safe_load(out)
    assert set(doc) >= {"aws", "redis", "control", "reconcile", "fleets"}
    assert doc["fleets"][0]["name"] == "main"
    assert doc["fleets"][0]["origin_stage_arn"] == ORIGIN
    assert doc["reconcile"]["stop_timeout"] == "20s"
    # The printed file is itself a valid configuration that means the same thing.
    rc2, out2, err2 = run_on_text(out)
    assert rc2 == 0, err2
    assert _same_but_name(out, out2)


def _same_but_name(a, b):
    """The first comment line names the file; everything after it must be identical."""
    return a.split("\n", 1)[1] == b.split("\n", 1)[1]


def run_on_text(text, *extra):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(text)
        path = fh.name
    try:
        rc, out, err = run("-t", "-c", path, *extra)
    finally:
        os.unlink(path)
    return rc, out, err


def test_check_config_masks_secrets(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text('redis:\n  url: "redis://user:hunter2-url@127.0.0.1:6379/0"\n' + VALID_TAIL)
    rc, out, err = run("-t", "-c", str(cfg))
    assert rc == 0, err
    assert "hunter2" not in out + err
    assert yaml.safe_load(out)["redis"]["url"] == "redis://user:***@127.0.0.1:6379/0"

    cfg.write_text('redis:\n  password: "hunter2-inline"\n' + VALID_TAIL)
    rc, out, err = run("-t", "-c", str(cfg))
    assert rc == 0, err
    assert "hunter2" not in out + err
    assert yaml.safe_load(out)["redis"]["password"] == "***"

    secret = tmp_path / "redis-password"
    secret.write_text("hunter2-file\n")
    os.chmod(secret, 0o600)
    cfg.write_text(f'redis:\n  password_file: "{secret}"\n' + VALID_TAIL)
    rc, out, err = run("-t", "-c", str(cfg))
    assert rc == 0, err
    assert "hunter2" not in out + err
    assert yaml.safe_load(out)["redis"]["password_file"] == str(secret)


# (name, file text, expected "line:col" of the first error, a fragment of its message)
MALFORMED = [
    ("unknown top-level key", "aws:\n  region: us-east-1\nbogus: 1\n" + VALID_TAIL, "3:1", "bogus"),
    ("unclosed flow sequence", "aws: [\n", "2:1", ""),
    ("tab indentation", "aws:\n\tregion: us-east-1\n", "2:1", ""),
    ("bad origin arn", "fleets:\n  - name: main\n    origin_stage_arn: nope\n", "3:23",
     "origin_stage_arn"),
    ("wrong type", "aws:\n  max_tps: [1]\n" + VALID_TAIL, "2:12", "max_tps"),
    ("out of range", "aws:\n  max_tps: 1000\n" + VALID_TAIL, "2:12", "max_tps"),
    ("bad duration", "reconcile:\n  stop_timeout: soon\n" + VALID_TAIL, "2:17", "stop_timeout"),
    ("duplicate fleet", VALID_TAIL + f"  - name: main\n    origin_stage_arn: {ORIGIN[:-1]}5\n",
     "4:11", "main"),
    ("not a mapping", "- 1\n- 2\n", "1:1", ""),
    ("password twice", 'redis:\n  url: "redis://:a@127.0.0.1/0"\n  password: b\n' + VALID_TAIL,
     "3:", "password"),
]


@pytest.mark.parametrize("name,text,where,fragment", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_check_config_reports_malformed_files_as_file_line_col(tmp_path, name, text, where, fragment):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    rc, out, err = run("--check-config", "-c", str(cfg))
    assert rc == 1, (name, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert lines, name
    for line in lines:
        if line.startswith("("):           # "(more errors not shown)"
            continue
        assert re.match(re.escape(str(cfg)) + r":\d+:\d+: ", line), line
    assert lines[0].startswith(f"{cfg}:{where}"), lines[0]
    assert fragment in lines[0], lines[0]
    # The same file refused without -t: the daemon does not start.
    rc, out, err2 = run("-c", str(cfg))
    assert rc == 1 and err2 == err


def test_missing_config_file_exits_1_naming_the_file(tmp_path):
    path = tmp_path / "absent.yaml"
    rc, out, err = run("-t", "-c", str(path))
    assert rc == 1
    assert out == ""
    assert str(path) in err and "No such file" in err


def test_daemon_starts_when_admin_group_does_not_exist(tmpdir_path, redis, sim, daemons):
    """etc/config.yaml names ivs-autoscaler-admin (created by sysusers on install); a host
    without that group still gets a running daemon, restricted to root for mutations."""
    group = "ivs-autoscaler-admin-absent"
    origin = sim.create_stage("OriginCli1", name="cli-origin")
    d = Daemon(tmpdir_path, redis, sim, [{"name": "main", "origin_stage_arn": origin}],
               control_extra={"admin_group": group})
    daemons.append(d)
    d.start()
    d.wait_ready()
    assert f'admin group "{group}" does not exist' in d.log()
    assert d.ctl("pause", "main")[0] == 0             # root may still mutate
    assert d.stop() == 0


# ---- --check-config --online: credentials, origins and Redis, against the simulator ----------

class _NoRedis:
    """A Redis URL where nothing listens."""
    def __init__(self):
        from harness import free_port
        self.url = f"redis://127.0.0.1:{free_port()}/0"


def online(d):
    return d.run("--check-config", "--online", timeout=120)


def test_check_online_passes_with_good_credentials_origins_and_redis(tmpdir_path, redis, sim):
    origin = sim.create_stage("OriginOnline1", name="online-origin")
    d = Daemon(tmpdir_path, redis, sim, [{"name": "main", "origin_stage_arn": origin}])
    rc, log = online(d)
    assert rc == 0, log
    assert "ok: credentials accepted: ListStages listed" in log
    assert f"ok: fleet main: origin stage {origin} exists" in log
    assert f"ok: redis {redis.url} answers PING" in log
    assert "error:" not in log


def test_check_online_names_a_missing_origin_and_one_in_another_region(tmpdir_path, redis, sim):
    real = sim.create_stage("OriginOnline2", name="online-origin")
    account = real.split(":")[4]
    missing = f"arn:aws:ivs:us-east-1:{account}:stage/NoSuchStage1"
    elsewhere = f"arn:aws:ivs:eu-west-1:{account}:stage/OriginOnline2"
    d = Daemon(tmpdir_path, redis, sim, [
        {"name": "main", "origin_stage_arn": real},
        {"name": "gone", "origin_stage_arn": missing,
         "keys": {"publisher": "gone:publisher", "desired_stages": "gone:desired"}},
        {"name": "abroad", "origin_stage_arn": elsewhere,
         "keys": {"publisher": "abroad:publisher", "desired_stages": "abroad:desired"}}])
    rc, log = online(d)
    assert rc == 1, log
    assert f"ok: fleet main: origin stage {real} exists" in log
    assert f"error: fleet gone: origin stage {missing} does not exist in region us-east-1" in log
    assert (f"error: fleet abroad: origin stage {elsewhere} is in region eu-west-1, but the "
            "daemon uses region us-east-1") in log
    assert sim.calls("GetStage") >= 1                    # the missing one was looked up


def test_check_online_reports_refused_credentials(tmpdir_path, redis, sim):
    origin = sim.create_stage("OriginOnline3", name="online-origin")
    d = Daemon(tmpdir_path, redis, sim, [{"name": "main", "origin_stage_arn": origin}],
               env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    rc, log = online(d)
    assert rc == 1, log
    assert "error: credentials refused by IVS (ListStages: " in log
    assert "not-the-secret" not in log


def test_check_online_reports_unreachable_redis(tmpdir_path, sim):
    origin = sim.create_stage("OriginOnline4", name="online-origin")
    nowhere = _NoRedis()
    d = Daemon(tmpdir_path, nowhere, sim, [{"name": "main", "origin_stage_arn": origin}])
    rc, log = online(d)
    assert rc == 1, log
    assert f"error: redis {nowhere.url}: no connection within" in log
    assert f"ok: fleet main: origin stage {origin} exists" in log


def test_online_needs_check_config():
    rc, out, err = run("--online")
    assert rc == 2 and "--online goes with -t" in err and out == ""
