"""What an operator reads: `ivs-autoscalerctl help` for every command the daemon accepts, column
headers on every text table, the `-t` message for a relative credentials file outside systemd,
and clean --once/--dry-run logs (the credentials line once, no cancelled read at exit)."""
import os
import re
import subprocess

import pytest

from harness import BUILD, Daemon, wait_until

CTL = os.path.join(BUILD, "ivs-autoscalerctl")
DAEMON = os.path.join(BUILD, "ivs-autoscaler")
PREFIX = "ivs:test:"

pytestmark = pytest.mark.skipif(
    not (os.access(DAEMON, os.X_OK) and os.access(CTL, os.X_OK)),
    reason=f"daemon or ctl not built in {BUILD} (run `make`)")


@pytest.fixture(autouse=True)
def clean_exit(tmpdir_path, daemons):
    yield
    for d in daemons:
        rc = d.stop()
        log = d.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert bad not in log, log[-4000:]
        assert rc in (0, None), f"daemon exited {rc}: {log[-2000:]}"


def ctl(*args):
    p = subprocess.run([CTL, *args], capture_output=True, timeout=20)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def fleet(sim, name="main"):
    arn = sim.create_stage(f"Origin{name.capitalize()}1", name=f"{name}-origin")
    return {"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
            "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s",
            "reconnect_window": "10s"}


def daemon_commands(d):
    """The commands the running daemon accepts, from its answer to an unknown command."""
    rc, out, err = d.ctl("no-such-command")
    assert rc == 1
    names = []
    for line in err.splitlines()[2:]:
        words = [w for w in line.split() if not re.search(r"[A-Z\[\]|(]", w)]
        names.append(" ".join(words))
    return names


def test_help_covers_every_daemon_command(tmpdir_path, redis, sim, daemons):
    d = Daemon(tmpdir_path, redis, sim, [fleet(sim)])
    daemons.append(d)
    d.start()
    d.wait_ready()
    accepted = daemon_commands(d)
    assert "replication start" in accepted and "status" in accepted

    rc, listing, err = ctl("help")
    assert rc == 0 and err == ""
    listed = []
    for line in listing.splitlines():
        if line.startswith("  ") and not line.startswith("  -"):
            words = [w for w in line.split("  ")[1].split() if not re.search(r"[A-Z\[\]|]", w)]
            listed.append(" ".join(words))
    assert sorted(listed) == sorted(accepted + ["help"])

    for name in accepted:
        rc, out, err = ctl("help", *name.split())
        assert rc == 0, (name, err)
        assert out.startswith(f"usage: ivs-autoscalerctl {name}"), out
        assert len(out.splitlines()) >= 3, out
    rc, out, err = ctl("help", "frobnicate")
    assert rc == 2 and out == "" and "`ivs-autoscalerctl help` lists them" in err

    rc, out, _ = ctl("-h")
    assert rc == 0 and "ivs-autoscalerctl help" in out
    # help needs no daemon: no socket at all here
    p = subprocess.run([CTL, "-s", "/nonexistent/socket", "help", "status"], capture_output=True)
    assert p.returncode == 0


def header(text, first_column):
    for line in text.splitlines():
        if line.lstrip().startswith(first_column + " "):
            return line.split()
    raise AssertionError(f"no header starting with {first_column} in:\n{text}")


def test_every_text_table_has_column_headers(tmpdir_path, redis, sim, daemons):
    f = fleet(sim)
    origin = f["origin_stage_arn"]
    host = sim.add_host(origin)
    redis.cmd("SET", f"{PREFIX}stage:{origin}:viewers", 150)
    d = Daemon(tmpdir_path, redis, sim, [f])
    daemons.append(d)
    d.start()
    d.wait_ready()
    wait_until(lambda: d.ctl_json("replicas")["data"], 20, what="a replication")
    replica = d.ctl_json("replicas")["data"][0]["destination"]

    fleet_columns = ["FLEET", "STAGES(SRV/DES)", "DRAINING", "HOSTS", "REPLICAS(ACT/EXP)",
                     "FLAGS", "DECISION"]
    for cmd in (["status"], ["fleets"]):
        rc, out, err = d.ctl(*cmd)
        assert rc == 0, err
        assert header(out, "FLEET") == fleet_columns, cmd
        row = out.splitlines()[-1].split()
        assert row[:5] == ["main", "2/2", "0", "1", "1/1"], out
    assert header(d.ctl("stages")[1], "FLEET") == ["FLEET", "ROLE", "ARN", "VIEWERS",
                                                 "DRAINING", "REPLICATION"]
    assert header(d.ctl("replicas")[1], "FLEET") == ["FLEET", "PARTICIPANT", "DESTINATION",
                                                   "STATE"]
    assert header(d.ctl("replication", "status", replica)[1], "SOURCE") == \
        ["SOURCE", "DESTINATION", "PARTICIPANT", "STATE", "STARTED_BY"]

    # a plan with actions: paused, with more viewers than two stages hold
    assert d.ctl("pause", "main")[0] == 0
    redis.cmd("SET", f"{PREFIX}stage:{origin}:viewers", 350)
    d.reconcile_now()
    out = wait_until(lambda: "ACTION" in d.ctl("plan")[1] and d.ctl("plan")[1], 20,
                     what="a plan with actions")
    assert out.splitlines()[0] == "fleet main: stages desired 4, serving 2; flags paused"
    assert header(out, "ACTION") == ["ACTION", "STAGE", "PARTICIPANT", "REASON"]
    assert any(l.split()[0] == "create" for l in out.splitlines()[2:]), out
    # the flags column follows the pause
    status = d.ctl("status")[1]
    assert status.splitlines()[-1].split()[5] == "paused", status
    assert host  # the host's replication is what made the tables non-empty


def test_check_config_names_the_credentials_path_and_loadcredential(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("aws:\n  region: us-east-1\n  credentials_file: aws-credentials\n"
                   "fleets:\n  - name: main\n    origin_stage_arn: "
                   "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k != "CREDENTIALS_DIRECTORY"}
    p = subprocess.run([DAEMON, "-t", "-c", str(cfg)], capture_output=True, env=env, timeout=20)
    err = p.stderr.decode()
    assert p.returncode == 1
    assert f"cannot open {tmp_path}/aws-credentials" in err, err
    assert "$CREDENTIALS_DIRECTORY" in err and "LoadCredential=" in err, err
    # inside systemd's credentials directory the hint is not needed
    creds = tmp_path / "creds"
    creds.mkdir()
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    p = subprocess.run([DAEMON, "-t", "-c", str(cfg)], capture_output=True, env=env, timeout=20)
    err = p.stderr.decode()
    assert p.returncode == 1 and f"cannot open {creds}/aws-credentials" in err
    assert "LoadCredential=" not in err
    (creds / "aws-credentials").write_text("[default]\naws_access_key_id = AKIDEXAMPLE\n"
                                           "aws_secret_access_key = x\n")
    os.chmod(creds / "aws-credentials", 0o600)
    p = subprocess.run([DAEMON, "-t", "-c", str(cfg)], capture_output=True, env=env, timeout=20)
    assert p.returncode == 0, p.stderr.decode()


@pytest.mark.parametrize("mode", ["--once", "--dry-run"])
def test_one_pass_modes_log_cleanly(tmpdir_path, redis, sim, mode):
    f = fleet(sim)
    sim.add_host(f["origin_stage_arn"])
    redis.cmd("SET", f"{PREFIX}stage:{f['origin_stage_arn']}:viewers", 150)
    d = Daemon(tmpdir_path, redis, sim, [f])
    rc, log = d.run(mode)
    assert rc == 0, log
    assert len(re.findall(r"AWS credentials from ", log)) == 1, log
    assert "cancelled" not in log, log
    assert "failed" not in log, log
