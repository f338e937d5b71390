"""The admin interface against the real daemon (issue 6): every ivs-autoscalerctl command in
text and JSON, authorisation by peer uid, hostile clients, answers while IVS hangs, metrics, and
the original Node server's replication flow (publisher info, replication start/status/stop).

Each test runs the real daemon with its own redis-server and IVS simulator (conftest.py). Waits
are conditions with deadlines (harness.wait_until), never fixed sleeps.
"""
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import BUILD, owned, set_viewers, start_daemon, wait_until

PREFIX = "ivs:test:"
CTL = os.path.join(BUILD, "ivs-autoscalerctl")
PROMPT = 1.0        # seconds within which the admin socket must answer, whatever else happens
MUTATING_OPS = ("CreateStage", "DeleteStage", "UpdateStage", "StartParticipantReplication",
                "StopParticipantReplication", "TagResource", "UntagResource",
                "DisconnectParticipant")

pytestmark = pytest.mark.skipif(
    not (os.access(os.path.join(BUILD, "ivs-autoscaler"), os.X_OK) and os.access(CTL, os.X_OK)),
    reason=f"daemon or ctl not built in {BUILD} (run `make`)")


@pytest.fixture(autouse=True)
def clean_exit(tmpdir_path, daemons):
    """Every daemon of a test exits 0 on SIGTERM with no sanitizer report (for IVS_BUILD=build/asan)."""
    yield
    for d in daemons:
        rc = d.stop()
        log = d.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert bad not in log, log[-4000:]
        assert rc in (0, None), f"daemon exited {rc}: {log[-2000:]}"
        # IVS answered promptly, so stopping never needs the deadline
        assert "stop deadline reached" not in log, log[-2000:]


# ---- helpers ---------------------------------------------------------------------------------

def make_fleet(sim, name="main", **policy):
    arn = sim.create_stage(f"Origin{name.capitalize()}1", name=f"{name}-origin")
    fleet = {"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
             "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s", "drain_min": "0s",
             "reconnect_window": "10s"}
    fleet.update(policy)
    return fleet


def set_publisher(redis, host, origin, user="broadcaster-1", key="publisher:info"):
    info = {"participantId": host["participantId"], "stageArn": origin, "userId": user,
            "joinedAt": "2025-01-02T03:04:05.000Z"}
    redis.cmd("SET", f"{PREFIX}{key}", json.dumps(info))
    return info


def sim_replications(sim, src, pid, state="ACTIVE"):
    return sorted(r["destinationStageArn"] for r in sim.state().get("replications", [])
                  if r.get("sourceStageArn") == src and r.get("participantId") == pid
                  and r.get("state", r.get("replicationState")) == state)


def mutating_calls(sim):
    ops = sim.counters().get("operations", {})
    return sum(ops.get(op, {}).get("calls", 0) for op in MUTATING_OPS)


def snake(record):
    """The admin JSON spells the Node server's camelCase record keys in snake_case."""
    return {"".join("_" + c.lower() if c.isupper() else c for c in k): v for k, v in record.items()}


def fleet_rows(text):
    """The fleets table of `status`/`fleets` text: one dict per row, keyed by the header."""
    lines = text.splitlines()
    i = next(n for n, l in enumerate(lines) if l.startswith("FLEET "))
    header = lines[i].split()
    rows = []
    for line in lines[i + 1:]:
        parts = line.split(None, len(header) - 1)
        rows.append(dict(zip(header, parts)))
    return rows


def ok(d, *args):
    """Run ctl in text mode; assert exit 0 and return stdout."""
    rc, out, err = d.ctl(*args)
    assert rc == 0, f"ctl {args}: rc={rc} stdout={out!r} stderr={err!r}"
    assert err == ""
    return out


def ok_json(d, *args):
    rc, out, err = d.ctl(*args, json_mode=True)
    assert rc == 0, f"ctl -j {args}: rc={rc} stdout={out!r} stderr={err!r}"
    assert out.endswith("\n") and out.count("\n") == 1, out    # exactly one JSON line
    reply = json.loads(out)
    assert reply["ok"] is True
    return reply["data"]


def fails(d, *args, match):
    """Both forms fail with exit 1 and the same message, which must contain match."""
    rc, out, err = d.ctl(*args)
    assert rc == 1 and out == "" and err.startswith("error: ") and match in err, (rc, out, err)
    rc, out, _ = d.ctl(*args, json_mode=True)
    reply = json.loads(out)
    assert rc == 1 and reply["ok"] is False and match in reply["error"], (rc, out)
    return reply["error"]


def sock_connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # A blocking connect waits for room in the listen backlog (a storm of clients may fill it);
    # a socket with a timeout is non-blocking underneath and would fail with EAGAIN instead.
    s.connect(path)
    s.settimeout(timeout)
    return s


def read_until(s, end=b"\n"):
    """Read up to and including end; every reply here is alone on its connection, so nothing
    after it is lost."""
    data = b""
    while end not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_line(s):
    return read_until(s, b"\n")


def timed_status(path):
    """One JSON status over a fresh connection: (seconds taken, data)."""
    t0 = time.monotonic()
    with sock_connect(path) as s:
        s.sendall(b"json status\n")
        line = read_line(s)
    took = time.monotonic() - t0
    reply = json.loads(line)
    assert reply["ok"] is True, reply
    return took, reply["data"]


def assert_prompt_status(path, times=3):
    for _ in range(times):
        took, data = timed_status(path)
        assert took < PROMPT, f"status took {took:.3f}s"
    return data


def need_nobody():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running the client as nobody needs root and setpriv")
    try:
        pwd.getpwnam("nobody")
        grp.getgrnam("nogroup")
    except KeyError:
        pytest.skip("user nobody / group nogroup missing")


def ctl_as_nobody(d, *args, groups=None, json_mode=False):
    cred = ["--reuid=nobody", "--regid=nogroup"]
    cred += [f"--groups={groups}"] if groups is not None else ["--clear-groups"]
    argv = ["setpriv", *cred, "--", CTL, "-s", d.socket] + (["-j"] if json_mode else []) + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=15, env=d.env)
    return p.returncode, p.stdout, p.stderr


# ---- every command, text and JSON ------------------------------------------------------------

def test_read_only_commands_text_and_json(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    origin = fleet["origin_stage_arn"]
    host = sim.add_host(origin)
    set_viewers(redis, origin, 150)                      # two stages: origin + one replica
    info = set_publisher(redis, host, origin)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    wait_until(lambda: len(sim_replications(sim, origin, host["participantId"])) == 1, 20,
               what="the host replicated into one replica stage")
    d.wait_passes(1)
    wait_until(lambda: d.status()["fleets"][0].get("replications_active") == 1, 20,
               what="status to see the active replication")
    replica = owned(sim, "main")[0]
    pid = host["participantId"]

    st = ok_json(d, "status")
    assert st["version"] and st["leader"] is True and st["redis_connected"] is True
    assert st["last_pass"]["result"] == "ok" and st["passes"] >= 1 and st["uptime_s"] >= 0
    f = st["fleets"][0]
    assert (f["name"], f["desired"], f["serving"], f["hosts"], f["paused"]) == ("main", 2, 2, 1, False)
    assert f["capped"] is False and f["fail_static"] is False
    text = ok(d, "status")
    assert text.startswith(f"ivs-autoscaler {st['version']}, pid {d.proc.pid}, uptime ")
    assert "redis: connected\n" in text and "last pass: ok at " in text
    assert fleet_rows(text) == [{"FLEET": "main", "STAGES(SRV/DES)": "2/2", "DRAINING": "0",
                                 "HOSTS": "1", "REPLICAS(ACT/EXP)": "1/1", "FLAGS": "-",
                                 "DECISION": fleet_rows(text)[0]["DECISION"]}]

    fl = ok_json(d, "fleets")
    assert [x["name"] for x in fl] == ["main"] and fl[0]["origin"] == origin
    assert fleet_rows(ok(d, "fleets"))[0]["STAGES(SRV/DES)"] == "2/2"

    stages = ok_json(d, "stages")
    by_role = {s["role"]: s for s in stages}
    assert by_role["origin"]["arn"] == origin and by_role["origin"]["viewers"] == 150
    assert by_role["replica"]["arn"] == replica and by_role["replica"]["draining"] is False
    assert by_role["replica"]["replication"] == [{"participant": pid, "state": "ACTIVE"}]
    assert ok_json(d, "stages", "main") == stages
    text = ok(d, "stages", "main")
    assert text.splitlines()[0].split() == ["FLEET", "ROLE", "ARN", "VIEWERS", "DRAINING", "REPLICATION"]
    assert f"{pid}=ACTIVE" in text and text.endswith("2 stages\n")

    reps = ok_json(d, "replicas")
    assert reps == [{"fleet": "main", "participant": pid, "destination": replica, "state": "ACTIVE"}]
    text = ok(d, "replicas", "main")
    assert replica in text and "ACTIVE" in text and text.endswith("1 replications\n")

    plan = ok_json(d, "plan")
    assert plan == [{"fleet": "main", "desired": 2, "serving": 2, "capped": False,
                     "fail_static": False, "paused": False, "origin_missing": False,
                     "override_invalid": False, "foreign_managed": False,
                     "standby": False, "actions": []}]
    assert ok(d, "plan", "main") == \
        "fleet main: stages desired 2, serving 2; flags -\n  nothing to do\n"
    pub = ok_json(d, "publisher")
    assert pub[0]["fleet"] == "main" and pub[0]["has_publisher"] is True
    assert pub[0]["publisher_info"] == snake(info) and pub[0]["publishing"] is True
    text = ok(d, "publisher", "main")
    assert f"participant_id {pid}\n" in text and "user_id broadcaster-1\n" in text
    assert "publishing now: yes\n" in text

    rs = ok_json(d, "replication", "status", replica)
    assert rs == [{"source_stage_arn": origin, "dest_stage_arn": replica, "participant_id": pid,
                   "state": "ACTIVE", "manual": False}]
    lines = ok(d, "replication", "status", replica).splitlines()
    assert lines[0].split() == ["SOURCE", "DESTINATION", "PARTICIPANT", "STATE", "STARTED_BY"]
    assert lines[1].split() == [origin, replica, pid, "ACTIVE", "autoscaler"]
    assert ok_json(d, "replication", "status", sim.create_stage("Nothing1")) == []
    assert "no replication known" in ok(d, "replication", "status", "arn:aws:ivs:us-east-1:1:stage/x")

    metrics = ok(d, "metrics")
    assert 'ivs_autoscaler_desired_stages{fleet="main"}' in metrics
    assert ok_json(d, "metrics") == metrics     # JSON carries the exposition text as a string

    # an unknown fleet is an error (exit 1) for every command that takes one
    for cmd in ("stages", "replicas", "plan", "publisher", "reconcile", "pause", "resume"):
        fails(d, cmd, "nosuch", match="no fleet named 'nosuch'")
    # wrong arity and unknown commands: exit 1 with the usage
    fails(d, "replication", "status", match="usage: replication status STAGE_ARN")
    err = fails(d, "frobnicate", match='unknown command "frobnicate"')
    assert "replication start SRC DST PARTICIPANT" in err


def test_pause_resume_reconcile_and_log_level(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    origin = fleet["origin_stage_arn"]
    host = sim.add_host(origin)
    set_viewers(redis, origin, 50)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    d.wait_passes(1)

    # reconcile: a pass runs now (the resync interval is 2 s, so wait for more than one)
    before = d.passes()
    assert ok(d, "reconcile") == "reconcile pass requested\n"
    assert ok_json(d, "reconcile", "main") == "reconcile pass requested"
    wait_until(lambda: d.passes() > before, 10, what="the requested pass")

    assert ok(d, "pause", "main") == "fleet main paused\n"
    assert ok_json(d, "pause") == {"fleet": "*", "paused": True}
    st = ok_json(d, "status")
    assert st["fleets"][0]["paused"] is True
    assert fleet_rows(ok(d, "status"))[0]["FLAGS"] == "paused"
    # while paused, more viewers are planned for but no pass makes a mutating call
    calls = mutating_calls(sim)
    set_viewers(redis, origin, 350)
    d.reconcile_now()
    d.wait_passes(2)
    assert mutating_calls(sim) == calls
    assert owned(sim, "main") == []
    plan = ok_json(d, "plan", "main")[0]
    assert plan["desired"] == 4 and [a["action"] for a in plan["actions"]].count("create") == 3
    assert "  create " in ok(d, "plan", "main")

    assert ok(d, "resume") == "all fleets resumed\n"
    assert ok_json(d, "status")["fleets"][0]["paused"] is False
    wait_until(lambda: len(owned(sim, "main")) == 3, 20, what="three replica stages after resume")
    wait_until(lambda: len(sim_replications(sim, origin, host["participantId"])) == 3, 20,
               what="the host fed into the new stages")

    # log-level: debug lines appear, then stop again; a bad level is refused
    assert ok(d, "log-level", "debug") == "log level debug\n"
    d.reconcile_now()
    wait_until(lambda: "<7>" in d.log(), 10, what="a debug line in the log")
    assert ok_json(d, "log-level", "info") == {"level": "info"}
    fails(d, "log-level", "chatty", match="unknown level 'chatty'")
    fails(d, "log-level", "err", match="unknown level 'err'")

    # every mutating command is logged with the caller's uid and pid
    log = d.log()
    assert 'admin command "pause main" from uid 0 pid ' in log
    assert "ADMIN_RESULT=succeeded" in log


def test_drain_owned_stage_and_refuse_origin_or_unowned(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    origin = fleet["origin_stage_arn"]
    sim.add_host(origin)
    set_viewers(redis, origin, 150)
    stranger = sim.create_stage("Stranger1", name="not-ours")
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    wait_until(lambda: len(owned(sim, "main")) == 1, 20, what="one replica stage")
    replica = owned(sim, "main")[0]
    wait_until(lambda: any(s["arn"] == replica for s in ok_json(d, "stages")), 10,
               what="the replica in the snapshot")

    fails(d, "drain", origin, match="origin and unowned stages are never drained")
    fails(d, "drain", stranger, match="is not a replica stage this daemon owns")
    fails(d, "drain", "not-an-arn", match="is not a replica stage this daemon owns")
    fails(d, "drain", match="usage: drain STAGE_ARN")
    assert ok_json(d, "drain", replica) == {"stage": replica, "draining": True}
    assert ok(d, "drain", replica).startswith(f"{replica} marked draining")
    # the next pass acts on the operator's mark: the stage has no viewers, so it is drained
    # and deleted at once (test_operator_drain_replaces_a_needed_stage covers a busy stage)
    wait_until(lambda: f"deleted drained replica stage {replica}" in d.log(), 10,
               what="the pass to act on the draining mark")
    assert replica not in [s["arn"] for s in sim.stages()]
    assert f"stage {replica} back in service" not in d.log()
    assert stranger in [s["arn"] for s in sim.stages()]         # never touched


def test_operator_drain_replaces_a_needed_stage(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    origin = fleet["origin_stage_arn"]
    sim.add_host(origin)
    set_viewers(redis, origin, 150)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    wait_until(lambda: len(owned(sim, "main")) == 1, 20, what="one replica stage")
    replica = owned(sim, "main")[0]
    # viewers keep the drained stage busy, so only the operator's mark can end its service
    set_viewers(redis, replica, 30)
    wait_until(lambda: any(s["arn"] == replica for s in ok_json(d, "stages")), 10,
               what="the replica in the snapshot")
    draining_key = f"{PREFIX}stage:{replica}:draining"
    by_key = f"{PREFIX}stage:{replica}:drained_by"
    ok(d, "drain", replica)
    assert redis.cmd("GET", by_key) == "operator"
    assert redis.cmd("GET", draining_key).isdigit()      # still a plain ms timestamp
    # expected: a replacement is created and the drained stage goes once empty
    wait_until(lambda: len(owned(sim, "main")) == 2, 20, what="a replacement for the drained stage")
    # the drain sticks: later passes do not put the stage back in service
    d.reconcile_now()
    d.wait_passes(2)
    assert replica in owned(sim, "main")
    assert redis.cmd("EXISTS", draining_key) == 1
    stage = next(s for s in ok_json(d, "stages") if s["arn"] == replica)
    assert stage["draining"] is True and stage["operator_drain"] is True
    open_stages = redis.cmd("ZRANGE", f"{PREFIX}autoscaler:fleet:main:stages", 0, -1) or []
    assert replica not in open_stages and len(open_stages) == 2
    assert "back in service" not in d.log()
    # once empty, the stage is deleted and its keys with it
    set_viewers(redis, replica, 0)
    wait_until(lambda: replica not in owned(sim, "main"), 20, what="the drained stage deleted")
    wait_until(lambda: redis.cmd("EXISTS", draining_key, by_key) == 0, 10,
               what="the drained stage's keys removed")
    assert len(owned(sim, "main")) == 1


# ---- authorisation ---------------------------------------------------------------------------

MUTATING = [["reconcile"], ["pause"], ["pause", "main"], ["resume", "main"],
            ["drain", "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGh1234"],
            ["log-level", "debug"],
            ["replication", "start", "arn:aws:ivs:us-east-1:123456789012:stage/A",
             "arn:aws:ivs:us-east-1:123456789012:stage/B", "p1"],
            ["replication", "stop", "arn:aws:ivs:us-east-1:123456789012:stage/A",
             "arn:aws:ivs:us-east-1:123456789012:stage/B", "p1"]]
READ_ONLY = [["status"], ["fleets"], ["stages"], ["replicas", "main"], ["plan"], ["metrics"],
             ["publisher"], ["replication", "status", "arn:aws:ivs:us-east-1:123456789012:stage/A"]]


def test_non_admin_uid_may_read_but_not_mutate(tmpdir_path, redis, sim, daemons):
    need_nobody()
    try:
        admin = grp.getgrnam("users")
    except KeyError:
        pytest.skip("group users missing")
    fleet = make_fleet(sim)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], control_extra={"admin_group": "users"})
    # The daemon creates its socket 0660 and gives it to the admin group; the test opens it to
    # everyone (the directory is 0755) so that authorisation, not file mode, is what refuses.
    assert os.stat(d.socket).st_mode & 0o777 == 0o660
    assert os.stat(d.socket).st_gid == admin.gr_gid
    rc, _, err = ctl_as_nobody(d, "status")
    assert rc == 3 and d.socket in err and "permission denied" in err
    os.chmod(d.socket, 0o666)
    d.wait_passes(1)
    calls = mutating_calls(sim)

    for argv in READ_ONLY:
        rc, out, err = ctl_as_nobody(d, *argv)
        assert rc == 0 and out and err == "", (argv, rc, out, err)
        rc, out, err = ctl_as_nobody(d, *argv, json_mode=True)
        assert rc == 0 and json.loads(out)["ok"] is True, (argv, rc, out, err)
    for argv in MUTATING:
        rc, out, err = ctl_as_nobody(d, *argv)
        assert (rc, out, err) == (1, "", "error: permission denied\n"), argv
        rc, out, err = ctl_as_nobody(d, *argv, json_mode=True)
        assert rc == 1 and json.loads(out) == {"ok": False, "error": "permission denied"}, argv
    # nothing happened: not paused, no mutating IVS call, log level unchanged
    assert ok_json(d, "status")["fleets"][0]["paused"] is False
    assert mutating_calls(sim) == calls
    log = d.log()
    assert "ADMIN_UID=65534" in log and "ADMIN_RESULT=denied" in log
    assert "<7>" not in log
    # a member of the admin group may mutate
    rc, out, err = ctl_as_nobody(d, "pause", "main", groups=admin.gr_gid)
    assert (rc, out) == (0, "fleet main paused\n"), err
    assert ok_json(d, "status")["fleets"][0]["paused"] is True


# ---- hostile clients -------------------------------------------------------------------------

def test_hostile_clients_do_not_disturb_status(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], control_extra={"max_clients": 256})
    d.wait_passes(1)
    path = d.socket
    held = []
    try:
        # garbage bytes: an error reply, and the connection still serves the next line
        g = sock_connect(path)
        held.append(g)
        g.sendall(b"\x00\xff\xfe\x1b[2J garbage\n")
        assert read_until(g, b"\n\n") == \
            b"error: invalid command line: control characters or invalid UTF-8\n\n"
        g.sendall(b"json fleets\n")
        assert json.loads(read_line(g))["data"][0]["name"] == "main"
        assert_prompt_status(path)

        # a 1 MiB line: refused and closed; the daemon reads at most one line's worth
        big = sock_connect(path)
        held.append(big)
        sender_done = threading.Event()

        def send_big():
            try:
                big.sendall(b"status " + b"x" * (1 << 20) + b"\n")
            except OSError:
                pass                        # the daemon closed the connection: expected
            sender_done.set()
        threading.Thread(target=send_big, daemon=True).start()
        assert_prompt_status(path)
        assert sender_done.wait(10), "1 MiB sender still blocked: the connection was not closed"

        # a client that never reads: many large replies queued, none read
        stuck = sock_connect(path)
        held.append(stuck)
        stuck.sendall(b"metrics\n" * 200)
        assert_prompt_status(path)

        # a client that drips one byte at a time
        drip = sock_connect(path)
        held.append(drip)
        for b in b"json status\n":
            drip.sendall(bytes([b]))
            took, _ = timed_status(path)
            assert took < PROMPT
        assert json.loads(read_line(drip))["ok"] is True

        # 200 concurrent clients, all connected at once, each with a request outstanding
        many = [sock_connect(path) for _ in range(200)]
        held.extend(many)
        for s in many:
            s.sendall(b"json status\n")
        data = assert_prompt_status(path)
        assert data["fleets"][0]["name"] == "main"
        for s in many:
            assert json.loads(read_line(s))["ok"] is True
    finally:
        for s in held:
            s.close()
    # the daemon is alive and well afterwards
    assert_prompt_status(path)
    assert d.proc.poll() is None


def test_status_answers_while_a_thousand_idle_connections_are_held(tmpdir_path, redis, sim,
                                                                   daemons):
    import resource
    need = 1200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    fleet = make_fleet(sim)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])     # max_clients: 64
    d.wait_passes(1)
    path = d.socket
    held = []
    try:
        # a client with a request in progress: replies far larger than the socket buffer
        stuck = sock_connect(path)
        held.append(stuck)
        stuck.sendall(b"metrics\n" * 200)
        wait_until(lambda: stuck.recv(1, socket.MSG_PEEK), 10, what="the replies to start")
        # a group member opens 1,000 connections and never sends a byte
        for _ in range(1000):
            held.append(sock_connect(path))
        # operators still get answers, each time by closing the client idle longest
        for _ in range(5):
            rc, out, err = d.ctl("status")
            assert rc == 0 and out.startswith("ivs-autoscaler ") and err == "", (rc, out, err)
        data = assert_prompt_status(path)
        assert data["fleets"][0]["name"] == "main"
        # the idle ones were told why they were closed
        first = held[1]
        assert read_until(first, b"\n\n") == \
            b"error: closed to admit another client (too many clients)\n\n"
        # the client with a request in progress was never closed: its replies keep coming
        got = b""
        while got.count(b"# HELP ivs_autoscaler_build_info") < 3:
            chunk = stuck.recv(65536)
            assert chunk, "the busy client was closed"
            got += chunk
        assert not got.startswith(b"error:")
    finally:
        for s in held:
            s.close()
    assert_prompt_status(path)
    assert d.proc.poll() is None


def test_status_answers_while_ivs_hangs(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    origin = fleet["origin_stage_arn"]
    sim.add_host(origin)
    set_viewers(redis, origin, 150)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], aws_timeout="60s")
    wait_until(lambda: len(owned(sim, "main")) == 1, 20, what="one replica stage")
    d.wait_passes(1)
    # hold every IVS request from now on (as a 30 s+ latency would), and start a pass
    sim.call("POST", "/_sim/pause", {"operation": "ListStages", "afterCalls": 0})
    try:
        passes = d.passes()
        d.reconcile_now()
        wait_until(lambda: timed_status(d.socket)[1]["pass_running"], 10,
                   what="a pass to be running")
        held_since = time.monotonic()
        while time.monotonic() - held_since < 30.0:         # the 30 s of hanging IVS
            took, data = timed_status(d.socket)
            assert took < PROMPT, f"status took {took:.3f}s while IVS hangs"
            assert data["pass_running"] is True and data["passes"] == passes
        # the other read-only views answer from the snapshot too
        for cmd in (["stages"], ["plan"], ["publisher"], ["metrics"]):
            t0 = time.monotonic()
            ok(d, *cmd)
            assert time.monotonic() - t0 < PROMPT + 0.5      # includes starting ctl
    finally:
        sim.call("POST", "/_sim/resume", {})
    wait_until(lambda: d.passes() > passes, 20, what="the held pass to finish")


# ---- metrics ---------------------------------------------------------------------------------

def parse_samples(text):
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_from_start_up_and_after_a_pass(tmpdir_path, redis, sim, daemons):
    main = make_fleet(sim, "main")
    eu = make_fleet(sim, "eu", keys={"publisher": "eu:publisher:info",
                                     "desired_stages": "eu:desired_stages"})
    host = sim.add_host(main["origin_stage_arn"])
    set_viewers(redis, main["origin_stage_arn"], 150)
    # IVS held from the start: the first scrape shows every series before any pass is done
    sim.call("POST", "/_sim/pause", {"operation": "ListStages", "afterCalls": 0})
    try:
        d = start_daemon(daemons, tmpdir_path, redis, sim, [main, eu], aws_timeout="60s")
        first = ok(d, "metrics")
    finally:
        sim.call("POST", "/_sim/resume", {})
    s = parse_samples(first)
    for fleet in ("main", "eu"):
        for fam in ("desired_stages", "actual_stages", "replications_active", "fleet_capped",
                    "fleet_fail_static"):
            assert s[f'ivs_autoscaler_{fam}{{fleet="{fleet}"}}'] == 0
    assert s['ivs_autoscaler_reconcile_total{result="success"}'] == 0
    assert s['ivs_autoscaler_reconcile_total{result="error"}'] == 0
    assert s['ivs_autoscaler_aws_requests_total{operation="StartParticipantReplication",outcome="success"}'] == 0
    assert s['ivs_autoscaler_aws_throttled_total{operation="ListStages"}'] == 0
    assert s['ivs_autoscaler_build_info{version="%s"}' % ok_json(d, "status")["version"]] == 1
    assert "ivs_autoscaler_reconcile_duration_seconds_count 0" in first

    wait_until(lambda: len(sim_replications(sim, main["origin_stage_arn"], host["participantId"])) == 1,
               20, what="the host replicated")
    d.wait_passes(1)
    after = ok(d, "metrics")
    s = parse_samples(after)
    assert s['ivs_autoscaler_reconcile_total{result="success"}'] >= 1
    assert s["ivs_autoscaler_reconcile_duration_seconds_count"] >= 1
    for op in ("ListStages", "CreateStage", "ListParticipants", "ListParticipantReplicas",
               "StartParticipantReplication"):
        assert s[f'ivs_autoscaler_aws_requests_total{{operation="{op}",outcome="success"}}'] >= 1, op
    assert s['ivs_autoscaler_desired_stages{fleet="main"}'] == 2
    assert s['ivs_autoscaler_actual_stages{fleet="main"}'] == 2
    assert s['ivs_autoscaler_replications_active{fleet="main"}'] == 1
    assert s['ivs_autoscaler_desired_stages{fleet="eu"}'] == 1
    assert s["ivs_autoscaler_redis_up"] == 1
    assert s["ivs_autoscaler_last_pass_success_timestamp_seconds"] > 1.6e9

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; `make deps`)")
    for text in (first, after):
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr


# ---- the original server's replication flow --------------------------------------------------

def test_replication_flow_through_the_cli(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    origin = fleet["origin_stage_arn"]
    host = sim.add_host(origin)
    pid = host["participantId"]
    set_viewers(redis, origin, 150)                           # the controller wants one replica
    info = set_publisher(redis, host, origin)
    side = sim.create_stage("SideStage1", name="out-of-band")  # not the controller's
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    wait_until(lambda: len(sim_replications(sim, origin, pid)) == 1, 20, what="controller replica")
    replica = owned(sim, "main")[0]
    wait_until(lambda: ok_json(d, "publisher")[0]["publishing"], 10, what="publisher observed")

    # publisher: what the Node server stored, plus what IVS says
    pub = ok_json(d, "publisher", "main")[0]
    assert pub["publisher_info"] == snake(info) and pub["publishing"] is True
    assert pub["hosts"] == [{"participant_id": pid, "user_id": "broadcaster-1"}]

    # replication start into the out-of-band stage
    assert ok_json(d, "replication", "start", origin, side, pid) == {
        "request": "start", "source_stage_arn": origin, "dest_stage_arn": side,
        "participant_id": pid}
    wait_until(lambda: side in sim_replications(sim, origin, pid), 10, what="manual replication")
    d.wait_passes(1)
    wait_until(lambda: ok_json(d, "replication", "status", side) == [
        {"source_stage_arn": origin, "dest_stage_arn": side, "participant_id": pid,
         "state": "ACTIVE", "manual": True}], 10, what="replication status ACTIVE (manual)")
    assert ok(d, "replication", "status", side).splitlines()[1].split() == \
        [origin, side, pid, "ACTIVE", "operator"]
    # the next passes leave it alone
    stops = sim.calls("StopParticipantReplication")
    d.reconcile_now()
    d.wait_passes(2)
    assert side in sim_replications(sim, origin, pid)
    assert sim.calls("StopParticipantReplication") == stops

    # stopping a replication the controller wants is refused while the fleet runs ...
    fails(d, "replication", "stop", origin, replica, pid, match="pause the fleet first")
    assert replica in sim_replications(sim, origin, pid)
    # ... and the manual one stops on request
    assert ok(d, "replication", "stop", origin, side, pid) == \
        f"replication stop requested: {origin} -> {side} participant {pid}\n"
    wait_until(lambda: side not in sim_replications(sim, origin, pid), 10, what="manual stop")
    d.reconcile_now()
    wait_until(lambda: ok_json(d, "replication", "status", side) == [], 10,
               what="replication status to forget the stopped replication")

    # paused, the controller's own replication may be stopped, and stays stopped
    ok(d, "pause", "main")
    ok(d, "replication", "stop", origin, replica, pid)
    wait_until(lambda: replica not in sim_replications(sim, origin, pid), 10, what="stop")
    starts = sim.calls("StartParticipantReplication")
    d.reconcile_now()
    d.wait_passes(2)
    assert sim.calls("StartParticipantReplication") == starts
    # resumed, the controller feeds its stage again
    ok(d, "resume", "main")
    wait_until(lambda: replica in sim_replications(sim, origin, pid), 20, what="re-replicated")

    # malformed requests are refused before any IVS call
    fails(d, "replication", "start", "nope", side, pid, match="expected SRC_STAGE_ARN")
    fails(d, "replication", "stop", origin, side, match="usage: replication stop")

    # publisher follows IVS: the host stops publishing
    sim.publish(origin, pid, published=False)
    d.reconcile_now()
    wait_until(lambda: ok_json(d, "publisher")[0]["publishing"] is False, 10,
               what="publisher to show the host no longer publishing")
    assert "publishing now: no\n" in ok(d, "publisher")
    # and a publisher:info the server wrote badly is reported, not trusted
    redis.cmd("SET", f"{PREFIX}publisher:info", "{not json")
    d.reconcile_now()
    pub = wait_until(lambda: [p for p in ok_json(d, "publisher") if not p["has_publisher"]], 10,
                     what="the malformed publisher info to be reported")[0]
    assert pub["publisher_info"] is None and pub["error"]
    assert "no publisher info" in ok(d, "publisher") and "  error: " in ok(d, "publisher")


# ---- ivs-autoscalerctl exit codes ------------------------------------------------------------

def test_ctl_exit_codes_against_the_daemon(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    assert d.ctl("status")[0] == 0
    assert d.ctl("stages", "nosuch")[0] == 1
    rc, out, err = d.ctl()                         # no command
    assert rc == 2 and "usage:" in err
    rc, _, err = d.ctl("--no-such-option", "status")
    assert rc == 2
    rc, _, err = d.ctl("pause", "two words")       # an argument the protocol cannot carry
    assert rc == 2 and "blank" in err
    assert d.stop() == 0
    rc, out, err = d.ctl("status")
    assert rc == 3 and out == "" and d.socket in err
    assert "is ivs-autoscaler running?" in err or "not running" in err


# ---- manual replications only when IVS accepted them; admin state across restarts ------------

def test_refused_manual_start_is_not_recorded(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    origin = fleet["origin_stage_arn"]
    host = sim.add_host(origin)
    pid = host["participantId"]
    set_viewers(redis, origin, 150)                           # the controller wants one replica
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    wait_until(lambda: len(sim_replications(sim, origin, pid)) == 1, 20, what="controller replica")
    replica = owned(sim, "main")[0]
    conflicts = sim.counters().get("operations", {}).get(
        "StartParticipantReplication", {}).get("errors", {})

    # IVS refuses: the host already replicates into the controller's stage
    ok(d, "replication", "start", origin, replica, pid)
    wait_until(lambda: "manual replication start refused by IVS" in d.log(), 10,
               what="the refusal to be logged")
    assert "not recorded as manual" in d.log()
    d.reconcile_now()
    d.wait_passes(1)
    assert ok_json(d, "replication", "status", replica) == [
        {"source_stage_arn": origin, "dest_stage_arn": replica, "participant_id": pid,
         "state": "ACTIVE", "manual": False}]
    assert redis.cmd("SMEMBERS", f"{PREFIX}autoscaler:manual_replications") in ([], None)
    assert sim.counters().get("operations", {}).get(
        "StartParticipantReplication", {}).get("errors", {}) != conflicts

    # so the planner still owns it: the audience leaves, the stage is stopped and deleted
    set_viewers(redis, origin, 10)
    wait_until(lambda: owned(sim, "main") == [], 30, what="the drained replica to be deleted")
    assert sim_replications(sim, origin, pid) == []
    plan = ok_json(d, "plan", "main")[0]
    assert plan["serving"] == 1


def test_pause_and_manual_replications_survive_restarts(tmpdir_path, redis, sim, daemons):
    main = make_fleet(sim, "main")
    second = make_fleet(sim, "second", keys={"publisher": "second:publisher:info",
                                              "desired_stages": "second:desired_stages"})
    origin = main["origin_stage_arn"]
    host = sim.add_host(origin)
    pid = host["participantId"]
    side = sim.create_stage("SideStage1", name="out-of-band")
    d = start_daemon(daemons, tmpdir_path, redis, sim, [main, second])
    d.wait_passes(1)

    # a manual replication IVS accepted, and every fleet paused
    ok(d, "replication", "start", origin, side, pid)
    wait_until(lambda: side in sim_replications(sim, origin, pid), 10, what="manual replication")
    member = f"{origin} {side} {pid}"
    wait_until(lambda: redis.cmd("SMEMBERS", f"{PREFIX}autoscaler:manual_replications")
               == [member], 10, what="the manual replication in redis")
    assert ok(d, "pause") == "all fleets paused\n"
    wait_until(lambda: sorted(redis.cmd("SMEMBERS", f"{PREFIX}autoscaler:paused") or [])
               == ["main", "second"], 10, what="the pauses in redis")

    # a restart (even a crash) keeps both: nothing is created for the audience while paused
    d.kill()
    set_viewers(redis, origin, 350)
    calls = mutating_calls(sim)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [main, second])
    wait_until(lambda: ok_json(d, "status")["admin_state_loaded"], 10, what="admin state read")
    assert [f["paused"] for f in ok_json(d, "status")["fleets"]] == [True, True]
    d.wait_passes(2)
    assert mutating_calls(sim) == calls and owned(sim) == []
    assert ok_json(d, "replication", "status", side)[0]["manual"] is True
    assert "stays paused (paused before the restart)" in d.log()

    # resume one fleet; after a graceful restart only the other is still paused
    ok(d, "resume", "second")
    wait_until(lambda: redis.cmd("SMEMBERS", f"{PREFIX}autoscaler:paused") == ["main"], 10,
               what="the resume in redis")
    assert d.stop() == 0
    d = start_daemon(daemons, tmpdir_path, redis, sim, [main, second])
    wait_until(lambda: ok_json(d, "status")["admin_state_loaded"], 10, what="admin state read")
    assert [f["paused"] for f in ok_json(d, "status")["fleets"]] == [True, False]
    # the manual replication, once stopped, is forgotten across a restart too
    ok(d, "replication", "stop", origin, side, pid)
    wait_until(lambda: side not in sim_replications(sim, origin, pid), 10, what="manual stop")
    wait_until(lambda: redis.cmd("SMEMBERS", f"{PREFIX}autoscaler:manual_replications") in
               ([], None), 10, what="the manual replication removed from redis")
    # a member that does not parse is reported and ignored, not trusted
    redis.cmd("SADD", f"{PREFIX}autoscaler:manual_replications", "not a replication")
    d.kill()
    d = start_daemon(daemons, tmpdir_path, redis, sim, [main, second])
    wait_until(lambda: "manual replication \"not a replication\" in redis ignored" in d.log(), 10,
               what="the bad member to be reported")
    wait_until(lambda: ok_json(d, "status")["admin_state_loaded"], 10, what="admin state read")
    assert ok_json(d, "status")["fleets"][0]["paused"] is True
    # a key of the wrong type is reported and rewritten; it never keeps the daemon from acting
    d.kill()
    redis.cmd("DEL", f"{PREFIX}autoscaler:paused")
    redis.cmd("SET", f"{PREFIX}autoscaler:paused", "main")
    d = start_daemon(daemons, tmpdir_path, redis, sim, [main, second])
    wait_until(lambda: "the paused fleets kept in redis are unusable" in d.log(), 10,
               what="the wrong type to be reported")
    wait_until(lambda: len(owned(sim, "main")) == 3, 20, what="the fleet to grow")
    assert redis.cmd("TYPE", f"{PREFIX}autoscaler:paused") == "none"


# ---- reload: synchronous, refused reloads visible in status ----------------------------------

def test_reload_command_and_refused_reload_in_status(tmpdir_path, redis, sim, daemons):
    fleet = make_fleet(sim)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    assert ok_json(d, "status")["last_reload"] is None
    assert "last reload" not in ok(d, "status")
    with open(d.config) as fh:
        good = fh.read()

    # a valid file: reloaded, exit 0
    out = ok(d, "reload")
    assert out in ("configuration reloaded\n",
                   "configuration valid; swapped in when the running pass ends\n"), out
    wait_until(lambda: "configuration reloaded (1 fleets)" in d.log(), 10, what="the swap")
    st = ok_json(d, "status")["last_reload"]
    assert st["result"] == "ok" and st["at"].endswith("Z") and "error" not in st

    # a broken one: refused with file:line:col, exit 1, the running configuration kept
    with open(d.config, "a") as fh:
        fh.write("bogus_key: 1\n")
    bad_line = good.count("\n") + 1
    reason = f"{d.config}:{bad_line}:1: bogus_key: unknown key"
    rc, out, err = d.ctl("reload")
    assert rc == 1 and out == "" and err.startswith("error: reload refused: ") and reason in err, \
        (rc, out, err)
    st = ok_json(d, "status")
    assert st["last_reload"]["result"] == "failed" and reason in st["last_reload"]["error"]
    text = ok(d, "status")
    line = next(ln for ln in text.splitlines() if ln.startswith("last reload failed: "))
    assert reason in line and f"(at {st['last_reload']['at']})" in line
    assert [f["name"] for f in st["fleets"]] == ["main"]
    d.wait_passes(1)

    # SIGHUP takes the same path: its refusal is in status too
    with open(d.config, "w") as fh:
        fh.write(good.replace("viewers_per_stage: 100", "viewers_per_stage: -5"))
    before = st["last_reload"]["at"]
    d.proc.send_signal(signal.SIGHUP)
    st = wait_until(lambda: (lambda s: s if s["last_reload"]["at"] != before else None)(
        ok_json(d, "status")), 10, what="the SIGHUP reload in status")
    assert st["last_reload"]["result"] == "failed"
    assert "viewers_per_stage" in st["last_reload"]["error"]

    # fixed again: the failure is cleared
    with open(d.config, "w") as fh:
        fh.write(good)
    ok(d, "reload")
    assert ok_json(d, "status")["last_reload"]["result"] == "ok"
    assert "last reload: ok at " in ok(d, "status")


def test_reload_needs_admin(tmpdir_path, redis, sim, daemons):
    need_nobody()
    fleet = make_fleet(sim)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], control_extra={"admin_group": ""})
    os.chmod(d.socket, 0o666)
    rc, out, err = ctl_as_nobody(d, "reload")
    assert rc == 1 and "permission denied" in err, (rc, out, err)
    assert ok_json(d, "status")["last_reload"] is None


# ---- a wrong origin is an error, flagged in status and plan ---------------------------------

def test_origin_not_listed_by_ivs_is_an_error_and_flagged(tmpdir_path, redis, sim, daemons):
    good = make_fleet(sim)
    account = good["origin_stage_arn"].split(":")[4]
    wrong = dict(make_fleet(sim, "wrong"),
                 origin_stage_arn=f"arn:aws:ivs:eu-west-1:{account}:stage/OriginWrong1",
                 keys={"publisher": "wrong:publisher", "desired_stages": "wrong:desired"})
    d = start_daemon(daemons, tmpdir_path, redis, sim, [good, wrong])
    d.wait_passes(1)
    fleets = {f["name"]: f for f in ok_json(d, "status")["fleets"]}
    assert fleets["wrong"]["origin_missing"] is True
    assert fleets["main"]["origin_missing"] is False
    text = ok(d, "status")
    assert "origin-missing" in next(ln for ln in text.splitlines() if ln.startswith("wrong "))
    assert "origin-missing" not in next(ln for ln in text.splitlines() if ln.startswith("main "))
    plans = {p["fleet"]: p for p in ok_json(d, "plan")}
    assert plans["wrong"]["origin_missing"] is True and plans["wrong"]["actions"] == []
    assert plans["main"]["origin_missing"] is False
    assert "fleet wrong: stages desired 0, serving 0; flags origin-missing" in \
        ok(d, "plan", "wrong")
    # one error-level event with its own MESSAGE_ID, naming the region mismatch; not repeated
    lines = [ln for ln in d.log().splitlines() if "MESSAGE_ID=abcfb0243c394b87bd4a40e5a4ad6c0b" in ln]
    assert len(lines) == 1, lines
    assert lines[0].startswith("<3>") and "IVS_FLEET=wrong" in lines[0]
    assert "not listed by IVS in region us-east-1 (the ARN is in region eu-west-1)" in lines[0]
    d.wait_passes(2)
    assert d.log().count("MESSAGE_ID=abcfb0243c394b87bd4a40e5a4ad6c0b") == 1
