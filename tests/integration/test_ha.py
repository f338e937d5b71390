"""Two daemons, one Redis lease (issue: ownership that cannot collide, and a standby that takes
over). Real daemons, a real redis-server and the simulator; each daemon signs with its own
access key, so the simulator's request log says who made every call.

Takeover times are printed (pytest -s shows them), never asserted: waits have deadlines far
above the configured lease, so a loaded machine cannot fail a test that is right."""
import datetime
import json
import os
import signal
import time

import pytest

from harness import ACCESS_KEY, Daemon, Sim, stop_and_check_sanitizers, wait_until
from test_notify import NotifySocket

PREFIX = "ivs:test:"
MUTATING = {"CreateStage", "DeleteStage", "UpdateStage", "StartParticipantReplication",
            "StopParticipantReplication", "TagResource", "UntagResource",
            "CreateParticipantToken", "DisconnectParticipant"}
KEY_B, SECRET_B = "AKIDSTANDBYHOSTB", "secret-of-host-b"
LEASE_S, RETRY_S = 1.0, 0.15
HA = ["ha:", "  enabled: true", "  lease_duration: 1s", "  renew_deadline: 600ms",
      "  retry_period: 150ms"]


@pytest.fixture
def sim2(tmpdir_path):
    """The simulator, accepting a second access key (host b's)."""
    s = Sim(tmpdir_path, extra=("--extra-credential", f"{KEY_B}:{SECRET_B}"))
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def sanitizer_clean(tmpdir_path, redis, sim2, daemons):
    yield
    stop_and_check_sanitizers(daemons)


def origin_fleet(sim, name="main", origin_id=None, **policy):
    arn = sim.create_stage(origin_id or f"Origin{name.capitalize()}1", name=f"{name}-origin")
    fleet = {"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
             "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s",
             "reconnect_window": "10s"}
    fleet.update(policy)
    return fleet


def set_viewers(redis, arn, n, prefix=PREFIX):
    redis.cmd("SET", f"{prefix}stage:{arn}:viewers", n)


def ha_daemon(daemons, tmpdir, redis, sim, fleets, instance, key=ACCESS_KEY, secret=None,
              prefix=PREFIX, extra_lines=HA, start=True, notify=None):
    d_dir = os.path.join(tmpdir, instance)
    os.makedirs(d_dir, exist_ok=True)
    env = {"AWS_ACCESS_KEY_ID": key}
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.path
    if secret:
        env["AWS_SECRET_ACCESS_KEY"] = secret
    d = Daemon(d_dir, redis, sim, fleets, prefix=prefix, env=env)
    d.instance = instance
    d.key = key
    with open(d.config, "a") as fh:
        fh.write("\n".join(["controller:", f"  instance: {instance}", *extra_lines]) + "\n")
    daemons.append(d)
    if start:
        d.start()
        d.wait_ready()
    return d


def pair(daemons, tmpdir, redis, sim, fleets, notify=(None, None)):
    a = ha_daemon(daemons, tmpdir, redis, sim, fleets, "host-a", notify=notify[0])
    b = ha_daemon(daemons, tmpdir, redis, sim, fleets, "host-b", KEY_B, SECRET_B, notify=notify[1])
    return a, b


def role(d):
    try:
        st = d.status()
    except (AssertionError, ValueError, OSError):
        return None
    return st.get("role"), st.get("leader_id")


def one_leader(a, b):
    """(leader, standby) once exactly one leads and the other names it; else None."""
    ra, rb = role(a), role(b)
    if ra is None or rb is None:
        return None
    if ra == ("leader", "host-a") and rb == ("standby", "host-a"):
        return a, b
    if rb == ("leader", "host-b") and ra == ("standby", "host-b"):
        return b, a
    return None


def requests(sim):
    with open(sim.log, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def when(entry):
    return datetime.datetime.fromisoformat(entry["time"]).timestamp()


def mutations(sim, key=None, after=0.0):
    return [r for r in requests(sim) if r["operation"] in MUTATING and r["status"] == 200
            and (key is None or r["accessKeyId"] == key) and when(r) > after]


def owned(sim, fleet="main"):
    return sorted(s["arn"] for s in sim.stages()
                  if s.get("tags", {}).get("ivs-autoscaler:managed") == "true"
                  and s.get("tags", {}).get("ivs-autoscaler:fleet") == fleet)


def fed(sim, fleet, pid, n):
    arns = owned(sim, fleet["name"])
    reps = sorted(r["destinationStageArn"] for r in sim.state().get("replications", [])
                  if r["sourceStageArn"] == fleet["origin_stage_arn"] and r["participantId"] == pid
                  and r["replicationState"] == "ACTIVE")
    return len(arns) == n and reps == arns


def nudge(*ds):
    for d in ds:
        if d.proc is not None and d.proc.poll() is None:
            d.ctl("reconcile")


def converge(sim, fleet, pid, n, *ds, timeout=40):
    def step():
        if fed(sim, fleet, pid, n):
            return True
        nudge(*ds)
        return False
    wait_until(step, timeout, interval=0.2, what=f"{n} fed replica stages")


# ---- 1: exactly one leader; only it mutates; the standby refuses drain ---------------------

def test_two_daemons_one_leader(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    pid = sim2.add_host(origin)["participantId"]
    set_viewers(redis, origin, 250)
    a, b = pair(daemons, tmpdir_path, redis, sim2, [fleet])
    leader, standby = wait_until(lambda: one_leader(a, b), 20, what="one leader, one standby")
    converge(sim2, fleet, pid, 2, leader)
    # The standby observes too: its view of the fleet is warm.
    wait_until(lambda: len([s for s in standby.ctl_json("stages")["data"]
                            if s["role"] == "replica"]) == 2, 20, what="standby's stage view")
    muts = mutations(sim2)
    assert muts, "the leader made no mutating call"
    assert {m["accessKeyId"] for m in muts} == {leader.key}, muts
    assert one_leader(a, b) == (leader, standby)
    # Mutating admin commands on the standby name the leader; read-only ones answer.
    replica = owned(sim2)[0]
    rc, out, err = standby.ctl("drain", replica)
    assert rc == 1 and f"not the leader (leader: {leader.instance})" in out + err, (rc, out, err)
    rc, out, err = standby.ctl("status")
    assert rc == 0 and "standby" in out and f"leader {leader.instance}" in out, out
    # ... and every fleet row of the standby is flagged so.
    assert all(f["standby"] for f in standby.status()["fleets"])
    assert not any(f["standby"] for f in leader.status()["fleets"])
    assert "standby" in next(ln for ln in out.splitlines() if ln.startswith("main "))
    rc, out, _ = standby.ctl("metrics")
    assert "ivs_autoscaler_leader 0" in out
    rc, out, _ = leader.ctl("metrics")
    assert "ivs_autoscaler_leader 1" in out and "ivs_autoscaler_leader_transitions_total 1" in out
    st = leader.status()
    assert st["ha"] is True and st["lease_deadline"], st
    # Only the leader writes the status hash; it names itself.
    wait_until(lambda: redis.cmd("HGET", f"{PREFIX}autoscaler:status", "leader_id") == leader.instance,
               10, what="status hash written by the leader")
    assert redis.cmd("GET", f"{PREFIX}autoscaler:leader").startswith(leader.instance + ":")
    assert "leader" in leader.log() and "is the leader now" in leader.log()
    # The standby's drain was refused: no draining mark was written.
    assert redis.cmd("EXISTS", f"{PREFIX}stage:{replica}:draining") == 0


# ---- 2: SIGKILL of the leader during a scale-up --------------------------------------------

def test_sigkill_leader_mid_scale_up(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    pid = sim2.add_host(origin)["participantId"]
    set_viewers(redis, origin, 50)
    a, b = pair(daemons, tmpdir_path, redis, sim2, [fleet])
    leader, standby = wait_until(lambda: one_leader(a, b), 20, what="one leader")
    leader.wait_passes(1)
    assert owned(sim2) == []
    # A scale-up from the origin alone to 5 replicas takes two passes (at most 4 new stages per
    # pass). The simulator holds every request once the first CreateStage has answered, so the
    # leader dies with its first pass on the wire and its second never made.
    sim2.call("POST", "/_sim/pause", {"operation": "CreateStage", "afterCalls": 1})
    set_viewers(redis, origin, 650)         # 7 stages' worth: capped at 1 + 5
    nudge(leader)
    wait_until(lambda: sim2.call("GET", "/_sim/pause")["held"] >= 1, 20,
               what="the scale-up to be under way")
    killed_at = time.time()
    leader.kill()
    held = sim2.call("GET", "/_sim/pause")["held"]
    sim2.call("POST", "/_sim/resume")
    # The standby takes over, acts, and converges with no more stages than the policy wants.
    wait_until(lambda: role(standby) == ("leader", standby.instance), 20, what="takeover")
    leading_at = time.time()
    first = wait_until(lambda: mutations(sim2, standby.key, after=killed_at), 20,
                       what="a mutating call by the new leader")[0]
    print(f"\ntakeover after SIGKILL: leading seen {leading_at - killed_at:.3f}s, first mutating "
          f"call answered {when(first) - killed_at:.3f}s after the kill (lease_duration + "
          f"retry_period = {LEASE_S + RETRY_S:.2f}s)")
    try:
        converge(sim2, fleet, pid, 5, standby)
    except AssertionError:
        print(owned(sim2), sim2.state().get("replications"), standby.ctl("plan")[1],
              standby.ctl("stages")[1], standby.log()[-3000:])
        raise
    assert len(owned(sim2)) == 5
    # Of the dead leader, only what was on the wire when it died.
    assert len(mutations(sim2, leader.key, after=killed_at)) <= held


# ---- 3: SIGSTOP of the leader longer than the lease ----------------------------------------

def test_sigstop_leader_then_sigcont(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    pid = sim2.add_host(origin)["participantId"]
    set_viewers(redis, origin, 150)
    a, b = pair(daemons, tmpdir_path, redis, sim2, [fleet])
    old, new = wait_until(lambda: one_leader(a, b), 20, what="one leader")
    converge(sim2, fleet, pid, 1, old)
    old.proc.send_signal(signal.SIGSTOP)
    stopped_at = time.time()
    try:
        wait_until(lambda: role(new) == ("leader", new.instance), 20, what="takeover")
        print(f"\ntakeover after SIGSTOP seen {time.time() - stopped_at:.3f}s after the stop")
        # The new leader acts: more viewers, one more stage.
        set_viewers(redis, origin, 250)
        nudge(new)
        converge(sim2, fleet, pid, 2, new)
        assert mutations(sim2, new.key, after=stopped_at)
        # Demand rises again while the old leader is stopped: on waking it would want to act.
        set_viewers(redis, origin, 350)
    finally:
        resumed_at = time.time()
        old.proc.send_signal(signal.SIGCONT)
    # The old leader resumes as a standby naming the new leader, passes several times, and
    # makes no mutating call: it does not hold the lease.
    wait_until(lambda: role(old) == ("standby", new.instance), 20, what="old leader stands by")
    start = old.passes()
    wait_until(lambda: (nudge(old), old.passes() >= start + 3)[1], 20, interval=0.2,
               what="three passes of the old leader")
    assert not mutations(sim2, old.key, after=resumed_at), mutations(sim2, old.key, after=resumed_at)
    assert "no longer the leader" in old.log()
    converge(sim2, fleet, pid, 3, new)


# ---- 4: SIGTERM releases the lease -----------------------------------------------------------

def test_sigterm_releases_lease(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    pid = sim2.add_host(origin)["participantId"]
    set_viewers(redis, origin, 150)
    for n in ("notify-a", "notify-b"):
        os.makedirs(os.path.join(tmpdir_path, n))
    sockets = {n: NotifySocket(os.path.join(tmpdir_path, "notify-" + n)) for n in ("a", "b")}
    try:
        run_sigterm_scenario(tmpdir_path, redis, sim2, daemons, fleet, pid, sockets)
    finally:
        for sock in sockets.values():
            sock.close()


def run_sigterm_scenario(tmpdir_path, redis, sim2, daemons, fleet, pid, sockets):
    origin = fleet["origin_stage_arn"]
    a, b = pair(daemons, tmpdir_path, redis, sim2, [fleet], (sockets["a"], sockets["b"]))
    old, new = wait_until(lambda: one_leader(a, b), 20, what="one leader")
    converge(sim2, fleet, pid, 1, old)
    notify_new = sockets["a" if new is a else "b"]
    # STATUS= names the role; the standby's names the leader.
    notify_new.wait(lambda ls: any(x.startswith(f"STATUS=standby (leader: {old.instance}); ")
                                   for x in ls), what="standby STATUS=")
    mark = notify_new.mark()
    t0 = time.monotonic()
    assert old.stop(signal.SIGTERM) == 0
    stopped = time.monotonic()
    assert "leader lease released" in old.log()
    holder = redis.cmd("GET", f"{PREFIX}autoscaler:leader")
    assert holder is None or holder.startswith(new.instance + ":"), holder
    wait_until(lambda: role(new) == ("leader", new.instance), 20, what="standby leads")
    notify_new.wait(lambda ls: any(x.startswith("STATUS=leader; ") for x in ls), mark,
                    what="leader STATUS=")
    assert "MESSAGE_ID=fa1828038cfc4239af96a356a862acdb IVS_ROLE=leader IVS_INSTANCE=" + \
        new.instance in new.log()
    print(f"\nafter SIGTERM: exit {stopped - t0:.3f}s, standby leading {time.monotonic() - stopped:.3f}s "
          f"after the exit (retry_period {RETRY_S:.2f}s, lease_duration {LEASE_S:.2f}s)")
    set_viewers(redis, origin, 250)
    nudge(new)
    converge(sim2, fleet, pid, 2, new)


# ---- Redis down: nobody renews, nobody mutates -------------------------------------------------

def test_redis_down_nobody_mutates(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    pid = sim2.add_host(origin)["participantId"]
    set_viewers(redis, origin, 150)
    a = ha_daemon(daemons, tmpdir_path, redis, sim2, [fleet], "host-a")
    wait_until(lambda: role(a) == ("leader", "host-a"), 20, what="a leads")
    converge(sim2, fleet, pid, 1, a)
    redis.stop()
    down_at = time.time()
    wait_until(lambda: role(a) is not None and role(a)[0] == "standby", 20, what="a steps down")
    assert not mutations(sim2, after=down_at + LEASE_S)
    redis.start()
    wait_until(lambda: role(a) == ("leader", "host-a"), 30, what="a leads again")


# ---- 5: two deployments in one account: same fleet name, own origins and prefixes ------------

def test_two_deployments_same_fleet_name(tmpdir_path, redis, sim2, daemons):
    prod = origin_fleet(sim2, origin_id="OriginProd1")
    staging = origin_fleet(sim2, origin_id="OriginStaging1")
    pid_prod = sim2.add_host(prod["origin_stage_arn"], user_id="prod-host")["participantId"]
    pid_staging = sim2.add_host(staging["origin_stage_arn"], user_id="staging-host")["participantId"]
    set_viewers(redis, prod["origin_stage_arn"], 250, prefix="ivs:prod:")
    set_viewers(redis, staging["origin_stage_arn"], 150, prefix="ivs:staging:")
    a = ha_daemon(daemons, tmpdir_path, redis, sim2, [prod], "prod-a", prefix="ivs:prod:",
                  extra_lines=[])
    b = ha_daemon(daemons, tmpdir_path, redis, sim2, [staging], "staging-a", KEY_B, SECRET_B,
                  prefix="ivs:staging:", extra_lines=[])

    def mine(fleet):
        """Replica stages carrying this fleet's origin tag."""
        origin_id = fleet["origin_stage_arn"].rsplit("/", 1)[1]
        return sorted(s["arn"] for s in sim2.stages()
                      if s.get("tags", {}).get("ivs-autoscaler:origin") == origin_id)

    def fed_own(fleet, pid, n):
        arns = mine(fleet)
        reps = sorted(r["destinationStageArn"] for r in sim2.state().get("replications", [])
                      if r["sourceStageArn"] == fleet["origin_stage_arn"] and r["replicationState"] == "ACTIVE")
        return len(arns) == n and reps == arns

    wait_until(lambda: (nudge(a, b), fed_own(prod, pid_prod, 2) and fed_own(staging, pid_staging, 1))[1],
               40, interval=0.2, what="both deployments converged")
    prod_stages, staging_stages = mine(prod), mine(staging)
    # Several more passes each: nothing changes, neither drains the other's "surplus".
    for d in (a, b):
        d.wait_passes(2)
    assert mine(prod) == prod_stages and mine(staging) == staging_stages
    # Every stage was created by its own deployment, and nobody stopped or deleted anything.
    muts = mutations(sim2)
    assert not [m for m in muts if m["operation"] in ("DeleteStage", "StopParticipantReplication")]
    creates = {k: len([m for m in muts if m["operation"] == "CreateStage" and m["accessKeyId"] == k])
               for k in (ACCESS_KEY, KEY_B)}
    assert creates == {ACCESS_KEY: 2, KEY_B: 1}, creates
    # Each lists the other's stages as foreign-managed, and plans only on its own.
    for d, own, other in ((a, prod_stages, staging_stages), (b, staging_stages, prod_stages)):
        stages = d.ctl_json("stages")["data"]
        assert sorted(s["arn"] for s in stages if s["role"] == "replica") == own
        assert sorted(s["arn"] for s in stages if s["role"] == "foreign-managed") == other
        assert sorted(f["arn"] for f in d.status()["foreign_stages"]) == other
        plan = json.dumps(d.ctl_json("plan")["data"])
        assert not any(arn in plan for arn in other)
        rc, out, err = d.ctl("drain", other[0])
        assert rc == 1 and "not a replica stage this daemon owns" in out + err
        assert d.log().count("is managed by another deployment") == len(other)
        # The fleet's row says another deployment uses its name.
        assert d.status()["fleets"][0]["foreign_managed"] is True
        assert "foreign-managed" in d.ctl("plan", "main")[1]


# ---- 6: 0.1-style stages: adopted only with a parentStage record naming our origin ------------

def test_legacy_stage_adopted_only_with_parent_record(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    pid = sim2.add_host(origin)["participantId"]
    legacy_tags = {"ivs-autoscaler:managed": "true", "ivs-autoscaler:fleet": "main"}
    adoptable = sim2.create_stage("Legacy1", name="main-replica-old-1", tags=dict(legacy_tags))
    orphan = sim2.create_stage("Legacy2", name="main-replica-old-2", tags=dict(legacy_tags))
    redis.cmd("SET", f"{PREFIX}stage:{adoptable}", json.dumps(
        {"name": "main-replica-old-1", "arn": adoptable, "autoScaled": True,
         "createdAt": "2025-01-01T00:00:00.000Z", "parentStage": origin}))
    set_viewers(redis, origin, 250)
    d = ha_daemon(daemons, tmpdir_path, redis, sim2, [fleet], "host-a",
                  extra_lines=["  owner: prod"])

    def state():
        tags = {s["arn"]: s.get("tags", {}) for s in sim2.stages()}
        reps = sorted(r["destinationStageArn"] for r in sim2.state().get("replications", [])
                      if r["sourceStageArn"] == origin and r["replicationState"] == "ACTIVE")
        return tags, reps

    def adopted_and_fed():
        tags, reps = state()
        ours = sorted(a for a, t in tags.items() if t.get("ivs-autoscaler:origin") == "OriginMain1")
        return (tags[adoptable].get("ivs-autoscaler:origin") == "OriginMain1"
                and tags[adoptable].get("ivs-autoscaler:owner") == "prod"
                and len(ours) == 2 and reps == ours)

    wait_until(lambda: (nudge(d), adopted_and_fed())[1], 30, interval=0.2,
               what="the legacy stage adopted, tagged and fed, plus one new stage")
    tags, reps = state()
    # The one without a record is left exactly as it was: not tagged, not fed, not counted.
    assert tags[orphan] == legacy_tags
    assert orphan not in reps
    stages = d.ctl_json("stages")["data"]
    assert [s["legacy"] for s in stages if s["arn"] == orphan] == [True]
    assert adoptable in [s["arn"] for s in stages if s["role"] == "replica"]
    assert "adopted replica stage " + adoptable in d.log()
    assert len(mutations(sim2)) == len([m for m in mutations(sim2) if m["operation"] in
                                        ("CreateStage", "StartParticipantReplication", "TagResource")])
    assert len([m for m in mutations(sim2) if m["operation"] == "TagResource"]) == 1


# ---- --once takes part in the election --------------------------------------------------------

def test_once_acts_only_with_the_lease(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    sim2.add_host(origin)
    set_viewers(redis, origin, 150)
    # Alone: it takes the lease, acts, and gives the lease back on exit.
    one = ha_daemon(daemons, tmpdir_path, redis, sim2, [fleet], "cron-a", start=False)
    rc, log = one.run("--once")
    assert rc == 0, log
    assert len(owned(sim2)) == 1 and "leader lease released" in log
    assert redis.cmd("EXISTS", f"{PREFIX}autoscaler:leader") == 0
    # While another daemon leads: it observes only, and says so.
    lead = ha_daemon(daemons, tmpdir_path, redis, sim2, [fleet], "host-a")
    wait_until(lambda: role(lead) == ("leader", "host-a"), 20, what="host-a leads")
    set_viewers(redis, origin, 250)
    other = ha_daemon(daemons, tmpdir_path, redis, sim2, [fleet], "cron-b", KEY_B, SECRET_B,
                      start=False)
    before = time.time()
    rc, log = other.run("--once")
    assert "the lease is held by host-a" in log, log
    assert not mutations(sim2, KEY_B, after=before)
    assert redis.cmd("GET", f"{PREFIX}autoscaler:leader").startswith("host-a:")


def test_legacy_stage_with_unreadable_record_blocks_creates(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    pid = sim2.add_host(origin)["participantId"]
    legacy = sim2.create_stage("Legacy1", name="old", tags={"ivs-autoscaler:managed": "true",
                                                           "ivs-autoscaler:fleet": "main"})
    # A record of the wrong type: GET answers an error, so nobody knows whose stage it is.
    redis.cmd("HSET", f"{PREFIX}stage:{legacy}", "parentStage", origin)
    set_viewers(redis, origin, 250)
    d = ha_daemon(daemons, tmpdir_path, redis, sim2, [fleet], "host-a", extra_lines=[])
    start = d.passes()
    wait_until(lambda: (nudge(d), d.passes() >= start + 3)[1], 20, interval=0.2, what="passes")
    # Not knowing whether the fleet already has that stage, it creates none.
    assert not [m for m in mutations(sim2) if m["operation"] == "CreateStage"]
    redis.cmd("DEL", f"{PREFIX}stage:{legacy}")
    redis.cmd("SET", f"{PREFIX}stage:{legacy}", json.dumps({"parentStage": origin}))
    converge(sim2, fleet, pid, 2, d)
    assert len([m for m in mutations(sim2) if m["operation"] == "CreateStage"]) == 1


# ---- a new leader reads the admin state its predecessor changed ------------------------------

def test_new_leader_keeps_a_pause_made_on_the_old_one(tmpdir_path, redis, sim2, daemons):
    fleet = origin_fleet(sim2)
    origin = fleet["origin_stage_arn"]
    sim2.add_host(origin)
    set_viewers(redis, origin, 50)
    a, b = pair(daemons, tmpdir_path, redis, sim2, [fleet])
    leader, standby = wait_until(lambda: one_leader(a, b), 20, what="one leader")
    standby.wait_passes(1)                  # the standby has read the admin state: none paused
    rc, out, err = leader.ctl("pause", "main")
    assert rc == 0, (out, err)
    wait_until(lambda: redis.cmd("SMEMBERS", f"{PREFIX}autoscaler:paused") == ["main"], 10,
               what="the pause kept in redis")
    set_viewers(redis, origin, 250)         # 3 stages' worth: a scale-up, if not paused
    killed_at = time.time()
    leader.kill()
    wait_until(lambda: role(standby) == ("leader", standby.instance), 20, what="takeover")
    nudge(standby)
    standby.wait_passes(2)
    fleets = {f["name"]: f for f in standby.status()["fleets"]}
    assert fleets["main"]["paused"] is True
    assert mutations(sim2, standby.key, after=killed_at) == []
    assert owned(sim2) == []
