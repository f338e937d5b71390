"""Reconciler acceptance scenarios (issue: the reconciler): the real daemon against a real
redis-server and the local IVS simulator. Each test waits on observable conditions with
deadlines; none sleeps to synchronise. Passes are triggered with the admin `reconcile` command
instead of waiting for the resync timer, except where the timer itself is under test.

Every test ends by stopping its daemons and checking their logs for sanitizer reports, so the
file can be run as is against an ASan+UBSan build (IVS_BUILD=build/asan)."""
import json
import re

import pytest

from harness import (Daemon, owned_stages, set_viewers, start_daemon, stop_and_check_sanitizers,
                     viewers_key, wait_until)

PREFIX = "ivs:test:"
MUTATING = {"CreateStage", "DeleteStage", "UpdateStage", "StartParticipantReplication",
            "StopParticipantReplication", "TagResource", "UntagResource",
            "CreateParticipantToken", "DisconnectParticipant"}


# ---- fixtures and helpers ----------------------------------------------------------------

@pytest.fixture(autouse=True)
def sanitizer_clean(tmpdir_path, redis, sim, daemons):
    """After each test: stop its daemons (leak reports come at exit), then read their logs.

    Requesting the other fixtures makes this one tear down first: the daemons stop while Redis
    and the simulator still answer, and their logs are read before the directory goes."""
    yield
    stop_and_check_sanitizers(daemons)


def origin_fleet(sim, name="main", origin_id=None, **policy):
    arn = sim.create_stage(origin_id or f"Origin{name.capitalize()}1", name=f"{name}-origin")
    fleet = {"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
             "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s", "drain_min": "0s",
             "reconnect_window": "10s"}
    fleet.update(policy)
    return fleet


def owned_arns(sim, fleet="main"):
    return sorted(s["arn"] for s in owned_stages(sim, fleet))


def replications(sim, origin, pid, state="ACTIVE"):
    return sorted(r["destinationStageArn"] for r in sim.state().get("replications", [])
                  if r["sourceStageArn"] == origin and r["participantId"] == pid
                  and r["replicationState"] == state)


def fed(sim, fleet, pids, n):
    """n owned replica stages, each with an ACTIVE replication from every host in pids."""
    arns = owned_arns(sim, fleet["name"])
    if len(arns) != n:
        return False
    return all(replications(sim, fleet["origin_stage_arn"], pid) == arns for pid in pids)


def full_pass(d, timeout=30):
    """Trigger a pass and wait until one that began after this call has been recorded."""
    st = d.status()
    n = st["passes"] + (2 if st["pass_running"] else 1)
    d.reconcile_now()
    wait_until(lambda: d.passes() >= n, timeout, what=f"pass {n}")


def converge(d, predicate, timeout=20, what="condition"):
    """Run passes until predicate() holds (the state it checks is re-read each time)."""
    def step():
        if predicate():
            return True
        full_pass(d, timeout)
        return predicate()
    return wait_until(step, timeout, interval=0.05, what=what)


def two_fed_replicas(tmpdir, redis, sim, daemons):
    """The common starting point: one host, 2.5 stages' worth of viewers, converged to two
    fed replica stages. Returns (daemon, fleet, origin ARN, host participant id)."""
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 250)
    d = start_daemon(daemons, tmpdir, redis, sim, [fleet])
    converge(d, lambda: fed(sim, fleet, [pid], 2), what="two fed replicas")
    return d, fleet, origin, pid


def fleet_status(d, name="main"):
    return next(f for f in d.status()["fleets"] if f["name"] == name)


def log_lines(d, priorities):
    """Log lines whose <N> prefix is one of priorities (0 emerg .. 7 debug)."""
    return [ln for ln in d.log().splitlines()
            if re.match(r"<(\d)>", ln) and int(ln[1]) in priorities]


def request_log(sim):
    with open(sim.log) as fh:
        return [json.loads(ln) for ln in fh if ln.strip()]


def mutating_calls(sim):
    ops = sim.counters().get("operations", {})
    return {op: c["calls"] for op, c in ops.items() if op in MUTATING and c["calls"]}


def open_stages(redis, fleet="main"):
    return sorted(redis.cmd("ZRANGE", f"{PREFIX}autoscaler:fleet:{fleet}:stages", 0, -1) or [])


def converged(d, name="main"):
    """Status says: desired == serving, every replication active, last pass ok."""
    try:
        st = d.status()
    except (AssertionError, ValueError):
        return False
    f = next(x for x in st["fleets"] if x["name"] == name)
    return (st["last_pass"] is not None and st["last_pass"]["result"] == "ok"
            and f.get("observed") and f["desired"] == f["serving"]
            and f["replications_expected"] == f["replications_active"]
            and f["actions_failed"] == 0)


# ---- 1. scale up ---------------------------------------------------------------------------

def test_scale_up_creates_and_feeds_replicas(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    host = sim.add_host(fleet["origin_stage_arn"])
    set_viewers(redis, fleet["origin_stage_arn"], 250)          # 2.5 stages' worth
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    wait_until(lambda: len(owned_stages(sim, "main")) == 2, 20, what="two replica stages")
    stages = owned_stages(sim, "main")
    wait_until(lambda: fed(sim, fleet, [host["participantId"]], 2), 20,
               what="host replicated into both")
    for s in stages:
        rep = wait_until(lambda: redis.cmd("GET", f"{PREFIX}replication:{s['arn']}"), 10,
                         what="replication key")
        rep = json.loads(rep)
        assert rep["sourceStageArn"] == fleet["origin_stage_arn"]
        assert rep["destStageArn"] == s["arn"]
        assert rep["participantId"] == host["participantId"]
        assert rep["startedAt"]
        info = json.loads(redis.cmd("GET", f"{PREFIX}stage:{s['arn']}"))
        assert info["arn"] == s["arn"] and info["autoScaled"] is True
        assert info["parentStage"] == fleet["origin_stage_arn"] and info["createdAt"]
        assert info["name"] == s["name"]
    assert fleet_status(d)["desired"] == 3
    wait_until(lambda: len(open_stages(redis)) == 3, 10, what="three open stages")
    # One pass did it: one CreateStage per stage and one start per replication.
    assert sim.calls("CreateStage") == 2
    assert sim.calls("StartParticipantReplication") == 2
    assert d.stop() == 0


# ---- 2. host publishes late ------------------------------------------------------------------

def test_replication_deferred_until_host_publishes(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    host = sim.add_host(origin, publish=False)
    set_viewers(redis, origin, 250)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], resync="1s")
    converge(d, lambda: len(owned_stages(sim, "main")) == 2, what="two replica stages")
    full_pass(d)
    full_pass(d)
    assert replications(sim, origin, host["participantId"]) == []
    # The host publishes; the periodic resync alone (no admin trigger) must feed both stages.
    sim.publish(origin, host["participantId"])
    wait_until(lambda: fed(sim, fleet, [host["participantId"]], 2), 10,
               what="replication started by the resync")
    wait_until(lambda: converged(d), 10, what="status converged")
    warnings = log_lines(d, {4})
    assert len(warnings) == 1, warnings
    assert "no host is publishing" in warnings[0]
    assert log_lines(d, {0, 1, 2, 3}) == []


# ---- 3. host drops past the reconnect window -------------------------------------------------

def test_replication_restarted_after_reconnect_window(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim, reconnect_window="5s")
    origin = fleet["origin_stage_arn"]
    host = sim.add_host(origin)
    pid = host["participantId"]
    set_viewers(redis, origin, 150)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    converge(d, lambda: fed(sim, fleet, [pid], 1), what="one fed replica")
    (dest,) = owned_arns(sim)
    sim.disconnect(origin, pid)
    sim.advance(6)                                     # past the 5 s window
    wait_until(lambda: replications(sim, origin, pid, "STOPPED") == [dest], 10,
               what="replication STOPPED by IVS")
    full_pass(d)
    assert owned_arns(sim) == [dest]                   # stopped replication: no new stage
    starts = sim.calls("StartParticipantReplication")
    sim.reconnect(origin, pid)
    converge(d, lambda: replications(sim, origin, pid) == [dest], what="replication restarted")
    assert sim.calls("StartParticipantReplication") > starts
    assert owned_arns(sim) == [dest]
    assert log_lines(d, {0, 1, 2, 3}) == []


def test_replication_record_follows_ivs(tmpdir_path, redis, sim, daemons):
    """replication:{dest} is kept equal to what IVS reports: gone when no host feeds the stage
    any more, written again when the controller restarts the replication."""
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 150)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    converge(d, lambda: fed(sim, fleet, [pid], 1), what="one fed replica")
    (dest,) = owned_arns(sim)
    key = f"{PREFIX}replication:{dest}"
    wait_until(lambda: redis.cmd("GET", key), 10, what="the replication record")
    # The operator stops the replication by hand while the fleet is paused.
    assert d.ctl("pause", "main")[0] == 0
    assert d.ctl("replication", "stop", origin, dest, pid)[0] == 0
    wait_until(lambda: replications(sim, origin, pid) == [], 10, what="IVS to stop it")
    converge(d, lambda: redis.cmd("GET", key) is None, what="the stale record to go")
    assert owned_arns(sim) == [dest]                   # paused: nothing restarted or deleted
    assert d.ctl("resume", "main")[0] == 0
    converge(d, lambda: replications(sim, origin, pid) == [dest], what="replication restarted")
    rec = json.loads(wait_until(lambda: redis.cmd("GET", key), 10, what="the record again"))
    assert rec["destStageArn"] == dest and rec["participantId"] == pid


# ---- 4. out-of-band deletion; foreign stages untouched ------------------------------------------

def test_deleted_replica_recreated_and_foreign_stages_untouched(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    stray = sim.create_stage("Stray1", name="stray")
    other = sim.create_stage("OtherFleet1", name="other",
                             tags={"ivs-autoscaler:managed": "true", "ivs-autoscaler:fleet": "other"})
    # Viewers on the foreign stages must not count or make them candidates for anything.
    set_viewers(redis, stray, 0)
    set_viewers(redis, other, 500)
    set_viewers(redis, origin, 150)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    converge(d, lambda: fed(sim, fleet, [pid], 1), what="one fed replica")
    (old,) = owned_arns(sim)
    old_keys = [f"{PREFIX}stage:{old}", f"{PREFIX}replication:{old}",
                f"{PREFIX}stage:{old}:draining"]
    wait_until(lambda: redis.cmd("EXISTS", *old_keys[:2]) == 2, 10, what="the replica's records")
    sim.delete_stage(old)
    redis.cmd("SET", old_keys[2], "1")           # a drain mark left behind, too
    converge(d, lambda: fed(sim, fleet, [pid], 1) and owned_arns(sim) != [old],
             what="replica recreated and fed")
    # The vanished stage's Redis keys go; the new stage's stay.
    wait_until(lambda: redis.cmd("EXISTS", *old_keys) == 0, 10, what="the old stage's keys removed")
    assert redis.cmd("EXISTS", f"{PREFIX}stage:{owned_arns(sim)[0]}") == 1
    full_pass(d)
    arns = {s["arn"]: s for s in sim.stages()}
    assert stray in arns and other in arns
    assert arns[stray]["tags"] == {}
    assert arns[other]["tags"] == {"ivs-autoscaler:managed": "true", "ivs-autoscaler:fleet": "other"}
    for r in sim.state()["replications"]:
        assert r["destinationStageArn"] not in (stray, other)
    # Nothing was deleted, stopped or re-tagged by the daemon (only our out-of-band delete).
    calls = mutating_calls(sim)
    assert set(calls) <= {"CreateStage", "StartParticipantReplication"}, calls
    assert calls["CreateStage"] == 2
    assert open_stages(redis) == sorted([origin, owned_arns(sim)[0]])


# ---- 5. scale down by draining -------------------------------------------------------------

def test_scale_down_drains_the_emptiest_replica(tmpdir_path, redis, sim, daemons):
    d, fleet, origin, pid = two_fed_replicas(tmpdir_path, redis, sim, daemons)
    busy, quiet = owned_arns(sim)
    # 100 + 50 + 20 = 170 viewers: two stages are enough; the quiet one goes.
    set_viewers(redis, origin, 100)
    set_viewers(redis, busy, 50)
    set_viewers(redis, quiet, 20)
    drain_key = f"{PREFIX}stage:{quiet}:draining"
    converge(d, lambda: redis.cmd("GET", drain_key) is not None, what="draining mark")
    assert redis.cmd("GET", f"{PREFIX}stage:{busy}:draining") is None
    converge(d, lambda: open_stages(redis) == sorted([origin, busy]), what="ZSET without it")
    # Still has viewers and drain_timeout (60 s) is far: it stays, and stays fed.
    for _ in range(3):
        full_pass(d)
    assert quiet in owned_arns(sim)
    assert sim.calls("DeleteStage") == 0 and sim.calls("StopParticipantReplication") == 0
    assert replications(sim, origin, pid) == sorted([busy, quiet])
    set_viewers(redis, quiet, 0)
    converge(d, lambda: owned_arns(sim) == [busy], what="drained stage deleted")
    ops = [e["operation"] for e in request_log(sim)
           if e["operation"] in ("StopParticipantReplication", "DeleteStage") and e["status"] == 200]
    assert ops == ["StopParticipantReplication", "DeleteStage"], ops
    wait_until(lambda: all(redis.cmd("EXISTS", k) == 0 for k in (
        drain_key, f"{PREFIX}stage:{quiet}", f"{PREFIX}replication:{quiet}")), 10,
        what="its Redis keys removed")
    assert redis.cmd("GET", f"{PREFIX}stage:{busy}") is not None
    assert replications(sim, origin, pid) == [busy]
    assert log_lines(d, {0, 1, 2, 3}) == []


def test_no_delete_while_a_stop_is_unconfirmed(tmpdir_path, redis, sim, daemons):
    """A drained stage is deleted only after IVS confirmed, in that pass, every stop into it:
    a stop that failed, or that a later pass skips because it is backing off, keeps it."""
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 150)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], resync="1s")
    converge(d, lambda: fed(sim, fleet, [pid], 1), what="one fed replica")
    (replica,) = owned_arns(sim)
    sim.faults(failOperations=["StopParticipantReplication"])
    set_viewers(redis, origin, 50)                     # one stage is enough: drain the replica
    converge(d, lambda: redis.cmd("GET", f"{PREFIX}stage:{replica}:draining") is not None,
             what="draining mark")
    # Empty and draining: every pass now wants stop + delete, and every stop fails (then backs
    # off, so some passes skip it). Across those passes the stage must stay.
    wait_until(lambda: sim.calls("StopParticipantReplication") >= 2, 20,
               what="stops attempted and failing")
    for _ in range(4):
        full_pass(d)
    assert sim.calls("DeleteStage") == 0
    assert replica in owned_arns(sim) and replications(sim, origin, pid) == [replica]
    sim.faults(failOperations=[])
    converge(d, lambda: owned_arns(sim) == [], timeout=30, what="stop, then delete")
    ops = [e["operation"] for e in request_log(sim)
           if e["operation"] in ("StopParticipantReplication", "DeleteStage") and e["status"] == 200]
    assert ops == ["StopParticipantReplication", "DeleteStage"], ops


def test_drain_timeout_deletes_a_stage_that_keeps_viewers(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim, drain_timeout="2s")
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 150)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    converge(d, lambda: fed(sim, fleet, [pid], 1), what="one fed replica")
    (rep,) = owned_arns(sim)
    set_viewers(redis, origin, 30)
    set_viewers(redis, rep, 5)                         # never reaches 0
    converge(d, lambda: redis.cmd("GET", f"{PREFIX}stage:{rep}:draining") is not None,
             what="draining mark")
    converge(d, lambda: owned_arns(sim) == [], timeout=20, what="deleted after drain_timeout")
    assert sim.calls("DeleteStage") == 1
    assert replications(sim, origin, pid) == []


# ---- 6. the replication cap ------------------------------------------------------------------

def test_demand_beyond_one_host_is_capped(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim, max_replicas=5)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 800)                    # 8 stages' worth
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    converge(d, lambda: fed(sim, fleet, [pid], 5), what="five fed replicas")
    for _ in range(3):
        full_pass(d)
    f = fleet_status(d)
    assert f["capped"] is True
    assert f["serving"] == 6
    assert len(owned_arns(sim)) == 5
    assert sim.calls("CreateStage") == 5
    assert sim.calls("StartParticipantReplication") == 5      # never retried into the quota
    capped = [ln for ln in log_lines(d, {4}) if "capped" in ln]
    assert len(capped) == 1, capped
    assert log_lines(d, {0, 1, 2, 3}) == []


# ---- 7. crash right after CreateStage ------------------------------------------------------------

def test_crash_after_create_stage_adopts_the_stage(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 150)
    sim.call("POST", "/_sim/pause", {"operation": "CreateStage", "afterCalls": 1})
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    wait_until(lambda: sim.call("GET", "/_sim/pause")["paused"], 20, what="simulator paused")
    assert d.kill() == -9
    sim.call("POST", "/_sim/resume")
    (created,) = owned_arns(sim)
    d2 = start_daemon(daemons, tmpdir_path, redis, sim, [fleet])
    converge(d2, lambda: fed(sim, fleet, [pid], 1), what="adopted stage fed")
    for _ in range(2):
        full_pass(d2)
    assert owned_arns(sim) == [created]
    assert sim.calls("CreateStage") == 1
    assert len(sim.stages()) == 2                      # origin + the one replica: nothing leaked
    # The adopted stage gets the records the application reads.
    wait_until(lambda: redis.cmd("GET", f"{PREFIX}stage:{created}"), 10, what="stage key")
    info = json.loads(redis.cmd("GET", f"{PREFIX}stage:{created}"))
    assert info["arn"] == created and info["parentStage"] == origin
    rep = json.loads(wait_until(lambda: redis.cmd("GET", f"{PREFIX}replication:{created}"), 10,
                                what="replication key"))
    assert rep["participantId"] == pid and rep["destStageArn"] == created
    assert open_stages(redis) == sorted([origin, created])


# ---- 8. fail static -----------------------------------------------------------------------------

def test_redis_down_is_fail_static(tmpdir_path, redis, sim, daemons):
    d, fleet, origin, pid = two_fed_replicas(tmpdir_path, redis, sim, daemons)
    arns = owned_arns(sim)
    redis.stop()
    # Viewer counts are unknown: several passes past scale_down_delay change nothing.
    converge(d, lambda: fleet_status(d)["fail_static"], what="fail static")
    for _ in range(3):
        full_pass(d)
    assert d.status()["last_pass"]["result"] == "error"
    assert owned_arns(sim) == arns
    assert set(mutating_calls(sim)) <= {"CreateStage", "StartParticipantReplication"}
    assert replications(sim, origin, pid) == arns
    redis.start()                                      # empty: the application writes again
    set_viewers(redis, origin, 250)
    wait_until(lambda: d.status()["redis_connected"], 20, what="redis reconnected")
    converge(d, lambda: converged(d) and not fleet_status(d)["fail_static"]
             and open_stages(redis) == sorted([origin] + arns), what="full recovery")
    assert owned_arns(sim) == arns
    assert redis.cmd("HGET", f"{PREFIX}autoscaler:status", "last_pass_result") == "ok"


def test_list_stages_failing_is_fail_static(tmpdir_path, redis, sim, daemons):
    d, fleet, origin, pid = two_fed_replicas(tmpdir_path, redis, sim, daemons)
    arns = owned_arns(sim)
    # Every IVS call fails, and the audience has left: nothing may be drained or deleted.
    sim.faults(failRate=1.0, seed=1, hangSeconds=1)
    for a in arns:
        set_viewers(redis, a, 0)
    set_viewers(redis, origin, 10)
    for _ in range(3):
        full_pass(d)
    assert d.status()["last_pass"]["result"] == "error"
    assert "ListStages" in d.status()["last_pass"].get("error", "")
    for a in arns:
        assert redis.cmd("EXISTS", f"{PREFIX}stage:{a}:draining") == 0
    assert set(mutating_calls(sim)) <= {"CreateStage", "StartParticipantReplication"}
    assert owned_arns(sim) == arns
    # IVS back with the audience back: the fleet is whole again and the pass is clean.
    set_viewers(redis, origin, 250)
    sim.faults(failRate=0.0)
    converge(d, lambda: converged(d) and not fleet_status(d)["fail_static"], what="recovery")
    assert owned_arns(sim) == arns
    assert replications(sim, origin, pid) == arns


# ---- 9. slow, faulty IVS --------------------------------------------------------------------------

def test_converges_at_two_tps_with_faults(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 250)
    sim.faults(tps=2, failRate=0.1, seed=42, hangSeconds=1)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], resync="1s")
    wait_until(lambda: fed(sim, fleet, [pid], 2) and converged(d), 60, interval=0.2,
               what="convergence under faults")
    assert owned_arns(sim) and len(sim.stages()) == 3      # no duplicate stage from retries
    f = fleet_status(d)
    assert f["desired"] == f["serving"] == 3
    assert f["replications_active"] == f["replications_expected"] == 2


# ---- 10. two fleets, two hosts ------------------------------------------------------------------

def test_two_fleets_every_host_into_every_replica(tmpdir_path, redis, sim, daemons):
    keys = {"publisher": "publisher:{fleet}:info", "desired_stages": "desired_stages:{fleet}"}
    a = origin_fleet(sim, "alpha", keys=keys)
    b = origin_fleet(sim, "beta", keys=keys)
    a1 = sim.add_host(a["origin_stage_arn"], user_id="alpha-1")["participantId"]
    a2 = sim.add_host(a["origin_stage_arn"], user_id="alpha-2")["participantId"]
    b1 = sim.add_host(b["origin_stage_arn"], user_id="beta-1")["participantId"]
    set_viewers(redis, a["origin_stage_arn"], 250)
    set_viewers(redis, b["origin_stage_arn"], 150)
    redis.cmd("SET", f"{PREFIX}desired_stages:beta", 3)        # beta's override: 3 stages
    d = start_daemon(daemons, tmpdir_path, redis, sim, [a, b])
    converge(d, lambda: fed(sim, a, [a1, a2], 2) and fed(sim, b, [b1], 2), what="both fleets fed")
    assert not set(owned_arns(sim, "alpha")) & set(owned_arns(sim, "beta"))
    assert replications(sim, b["origin_stage_arn"], a1) == []
    assert replications(sim, a["origin_stage_arn"], b1) == []
    assert open_stages(redis, "alpha") == sorted([a["origin_stage_arn"]] + owned_arns(sim, "alpha"))
    assert open_stages(redis, "beta") == sorted([b["origin_stage_arn"]] + owned_arns(sim, "beta"))
    converge(d, lambda: converged(d, "alpha") and converged(d, "beta"), what="status converged")
    assert fleet_status(d, "alpha")["replications_active"] == 4
    assert fleet_status(d, "beta")["desired"] == 3


# ---- 11. --dry-run and --once ---------------------------------------------------------------

def test_dry_run_mutates_nothing_and_once_converges(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 250)
    d = Daemon(tmpdir_path, redis, sim, [fleet], prefix=PREFIX)
    daemons.append(d)
    rc, out = d.run("--dry-run")
    assert rc == 0, out
    assert "fleet main: desired 3 stages" in out
    assert out.count("  create") == 2, out
    assert mutating_calls(sim) == {}
    assert all(op.startswith(("List", "Get"))
               for op in sim.counters()["operations"]), sim.counters()
    assert redis.cmd("EXISTS", f"{PREFIX}autoscaler:fleet:main:stages") == 0
    assert redis.cmd("EXISTS", f"{PREFIX}autoscaler:status") == 0
    rc, out = d.run("--once")
    assert rc == 0, out
    assert fed(sim, fleet, [pid], 2)
    assert open_stages(redis) == sorted([origin] + owned_arns(sim))
    assert redis.cmd("HGET", f"{PREFIX}autoscaler:status", "last_pass_result") == "ok"


# ---- 12. malformed Redis values --------------------------------------------------------------

def test_malformed_redis_values_are_reported_and_ignored(tmpdir_path, redis, sim, daemons):
    d, fleet, origin, pid = two_fed_replicas(tmpdir_path, redis, sim, daemons)
    arns = owned_arns(sim)
    redis.cmd("SET", f"{PREFIX}desired_stages", "six")
    redis.cmd("SET", f"{PREFIX}publisher:info", "{not json")
    redis.cmd("DEL", viewers_key(arns[0]))
    redis.cmd("HSET", viewers_key(arns[0]), "viewer", "1")
    set_viewers(redis, origin, 10)                     # would shrink the fleet if trusted
    converge(d, lambda: fleet_status(d).get("viewers_error"), what="viewers error reported")
    for _ in range(3):
        full_pass(d)
    f = fleet_status(d)
    assert f["override_invalid"] is True and f["override_error"]
    assert f["publisher_error"]
    assert arns[0] in f["viewers_error"]
    assert f["fail_static"] is True
    assert d.proc.poll() is None
    assert owned_arns(sim) == arns
    for a in arns:
        assert redis.cmd("EXISTS", f"{PREFIX}stage:{a}:draining") == 0
    assert set(mutating_calls(sim)) <= {"CreateStage", "StartParticipantReplication"}
    text = d.log()
    # Reported once when they appear, not on every pass.
    assert text.count("desired_stages override ignored") == 1
    assert text.count("publisher info ignored") == 1
    assert text.count("viewer count ignored") == 1
    assert log_lines(d, {0, 1, 2, 3}) == []
    # Fixed values are picked up: the override now rules.
    redis.cmd("SET", f"{PREFIX}desired_stages", "2")
    redis.cmd("DEL", viewers_key(arns[0]))
    converge(d, lambda: fleet_status(d)["desired"] == 2 and not fleet_status(d)["fail_static"],
             what="valid values used again")
    wait_until(lambda: "viewer count valid again" in d.log(), 10, what="the fix reported")
    text = d.log()
    assert "desired_stages override valid again" in text
    assert "publisher info valid again" not in text
