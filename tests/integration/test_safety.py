"""Safety under restarts and lost answers: deterministic reproductions of what the soak
(tests/soak/) found. The real daemon against a real redis-server and the local IVS simulator,
whose request log names, for every DeleteStage, the replications still ACTIVE into the stage.

Each test drives passes with the admin `reconcile` command and waits on observable conditions;
none sleeps to synchronise."""
import json

import pytest

from harness import Daemon, set_viewers, start_daemon, wait_until
from test_reconcile import (PREFIX, converge, fed, full_pass, origin_fleet, owned_arns,
                            request_log, sanitizer_clean)  # noqa: F401

SHIPPED = {"scale_down_delay": "5m", "drain_timeout": "10m"}


def deletes(sim):
    """The DeleteStage calls IVS performed (answered, or answer lost after the delete)."""
    return [e for e in request_log(sim) if e["operation"] == "DeleteStage"
            and (e["status"] == 200 or e["errorType"] == "DroppedAfterCommit")]


def creates(sim):
    return [e for e in request_log(sim) if e["operation"] == "CreateStage"
            and (e["status"] == 200 or e["errorType"] == "DroppedAfterCommit")]


def stage_keys(redis, arn):
    """The controller's records of one stage that are present in Redis."""
    keys = [f"{PREFIX}stage:{arn}", f"{PREFIX}replication:{arn}", f"{PREFIX}stage:{arn}:draining",
            f"{PREFIX}stage:{arn}:drained_by"]
    return [k for k in keys if redis.cmd("EXISTS", k)]


def three_replicas_with_viewers(tmpdir, redis, sim, daemons, **policy):
    """One host, 50 viewers in the origin and in each of three fed replicas (sized by the
    override key, as an application that knows its audience may do)."""
    fleet = origin_fleet(sim, **policy)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    redis.cmd("SET", f"{PREFIX}desired_stages", 4)
    d = start_daemon(daemons, tmpdir, redis, sim, [fleet], prefix=PREFIX)
    converge(d, lambda: fed(sim, fleet, [pid], 3), what="three fed replicas")
    arns = owned_arns(sim)

    def write_viewers():
        for arn in [origin] + arns:
            key = f"{PREFIX}stage:{arn}:viewers"
            redis.cmd("DEL", key)
            redis.cmd("SADD", key, *[f"viewer-{arn[-4:]}-{i}" for i in range(50)])
        redis.cmd("SET", f"{PREFIX}desired_stages", 4)
    write_viewers()
    full_pass(d)
    return d, fleet, pid, arns, write_viewers


# ---- 1. a host reboot: daemon and Redis come back together, Redis empty -------------------

def test_restart_with_empty_redis_keeps_stages_with_viewers(tmpdir_path, redis, sim, daemons):
    d, fleet, pid, arns, write_viewers = three_replicas_with_viewers(
        tmpdir_path, redis, sim, daemons, **SHIPPED)
    assert deletes(sim) == []
    # The host reboots: the daemon dies, the non-persistent Redis restarts empty.
    d.kill()
    redis.stop()
    redis.start()
    assert redis.cmd("DBSIZE") == 0
    d2 = Daemon(tmpdir_path, redis, sim, [fleet], prefix=PREFIX)
    daemons.append(d2)
    d2.start()
    d2.wait_ready()
    # Passes run before the application has written its viewer sets again.
    for _ in range(4):
        full_pass(d2)
    assert deletes(sim) == [], "a stage was deleted while Redis had not been refilled"
    write_viewers()
    full_pass(d2)
    assert owned_arns(sim) == arns and fed(sim, fleet, [pid], 3)


# ---- 2. a host inside its reconnect window still feeds the stage --------------------------

@pytest.mark.parametrize("drop", ["disconnect", "unpublish"])
def test_no_delete_while_a_replication_into_the_stage_is_active(tmpdir_path, redis, sim, daemons,
                                                                 drop):
    # A short drain_timeout: the drained stages go whatever the viewer counts say.
    fleet = origin_fleet(sim, reconnect_window="60s", drain_timeout="3s")
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 250)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], prefix=PREFIX)
    converge(d, lambda: fed(sim, fleet, [pid], 2), what="two fed replicas")
    # The host drops or stops publishing; IVS keeps its replications ACTIVE for the reconnect
    # window (the virtual clock does not move). The audience falls to what the origin holds.
    if drop == "disconnect":
        sim.disconnect(origin, pid)
    else:
        sim.publish(origin, pid, False)
    set_viewers(redis, origin, 50)
    for arn in owned_arns(sim):
        set_viewers(redis, arn, 0)
    converge(d, lambda: deletes(sim), timeout=30, what="a drained replica deleted")
    for e in deletes(sim):
        assert e["detail"]["activeInto"] == [], f"deleted with ACTIVE replications: {e}"


# ---- 3. a CreateStage whose answer is lost ---------------------------------------------------

def test_create_with_lost_answer_is_not_sent_again(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 150)                      # two stages: one replica to create
    sim.faults(dropAfterCommit=["CreateStage"])
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], prefix=PREFIX)
    full_pass(d)
    assert len(creates(sim)) == 1, [e["detail"] for e in creates(sim)]
    assert "CreateStage outcome unknown" in d.log()
    sim.faults(dropAfterCommit=[])
    # The next passes adopt the stage that was created: no second one.
    converge(d, lambda: fed(sim, fleet, [pid], 1), what="the created stage adopted and fed")
    full_pass(d)
    assert len(creates(sim)) == 1 and len(owned_arns(sim)) == 1


# ---- 4. records of stages that vanished while the daemon was stopped -----------------------

def test_records_of_stages_gone_while_stopped_are_cleaned(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 250)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], prefix=PREFIX)
    converge(d, lambda: fed(sim, fleet, [pid], 2), what="two fed replicas")
    gone, kept = owned_arns(sim)
    wait_until(lambda: len(stage_keys(redis, gone)) == 2, what="stage and replication records")
    redis.cmd("SET", f"{PREFIX}stage:{gone}:draining", 1)   # as if it was draining
    assert d.stop() == 0
    sim.delete_stage(gone)                               # out of band, while stopped
    d2 = Daemon(tmpdir_path, redis, sim, [fleet], prefix=PREFIX)
    daemons.append(d2)
    d2.start()
    d2.wait_ready()
    converge(d2, lambda: stage_keys(redis, gone) == [], timeout=30,
             what="records of the vanished stage gone")
    # What belongs to live stages stays.
    assert json.loads(redis.cmd("GET", f"{PREFIX}stage:{kept}"))["arn"] == kept


def test_records_of_stages_gone_while_redis_was_down_are_cleaned(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    origin = fleet["origin_stage_arn"]
    pid = sim.add_host(origin)["participantId"]
    set_viewers(redis, origin, 250)
    d = start_daemon(daemons, tmpdir_path, redis, sim, [fleet], prefix=PREFIX)
    converge(d, lambda: fed(sim, fleet, [pid], 2), what="two fed replicas")
    gone, _ = owned_arns(sim)
    wait_until(lambda: len(stage_keys(redis, gone)) == 2, what="stage and replication records")
    saved = {k: redis.cmd("GET", k) for k in stage_keys(redis, gone)}
    redis.stop()
    sim.delete_stage(gone)
    full_pass(d)                                         # sees the stage gone, Redis down
    full_pass(d)
    redis.start()
    for k, v in saved.items():                           # Redis comes back with its data
        redis.cmd("SET", k, v)
    set_viewers(redis, origin, 250)
    converge(d, lambda: stage_keys(redis, gone) == [], timeout=30,
             what="records of the vanished stage gone")
