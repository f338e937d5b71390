"""Reconciler acceptance scenarios (issue: the reconciler): the real daemon against a real
redis-server and the local IVS simulator. Each test waits on observable conditions with
deadlines; none sleeps to synchronise."""
import json

from harness import Daemon, wait_until

PREFIX = "ivs:test:"


def origin_fleet(sim, name="main", origin_id=None, **policy):
    arn = sim.create_stage(origin_id or f"Origin{name.capitalize()}1", name=f"{name}-origin")
    fleet = {"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
             "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s",
             "reconnect_window": "10s"}
    fleet.update(policy)
    return fleet


def set_viewers(redis, arn, n):
    key = f"{PREFIX}stage:{arn}:viewers"
    redis.cmd("DEL", key)
    if n:
        redis.cmd("SET", key, n)


def owned_stages(sim, fleet="main"):
    return [s for s in sim.stages()
            if s.get("tags", {}).get("ivs-autoscaler:managed") == "true"
            and s.get("tags", {}).get("ivs-autoscaler:fleet") == fleet]


def active_replicas(sim, origin, pid):
    reps = []
    for r in sim.state().get("replications", []):
        if r.get("sourceStageArn") == origin and r.get("participantId") == pid \
                and r.get("state", r.get("replicationState")) == "ACTIVE":
            reps.append(r.get("destinationStageArn"))
    return reps


def start(daemons, tmpdir, redis, sim, fleets, **kw):
    d = Daemon(tmpdir, redis, sim, fleets, prefix=PREFIX, **kw)
    daemons.append(d)
    d.start()
    d.wait_ready()
    return d


def test_scale_up_creates_and_feeds_replicas(tmpdir_path, redis, sim, daemons):
    fleet = origin_fleet(sim)
    host = sim.add_host(fleet["origin_stage_arn"])
    set_viewers(redis, fleet["origin_stage_arn"], 250)          # 2.5 stages' worth
    d = start(daemons, tmpdir_path, redis, sim, [fleet])
    wait_until(lambda: len(owned_stages(sim)) == 2, 20, what="two replica stages")
    stages = owned_stages(sim)
    wait_until(lambda: sorted(active_replicas(sim, fleet["origin_stage_arn"], host["participantId"]))
               == sorted(s["arn"] for s in stages), 20, what="host replicated into both")
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
    st = d.status()
    f = st["fleets"][0]
    assert f["desired"] == 3
    open_stages = redis.cmd("ZRANGE", f"{PREFIX}autoscaler:fleet:main:stages", 0, -1)
    wait_until(lambda: len(redis.cmd("ZRANGE", f"{PREFIX}autoscaler:fleet:main:stages", 0, -1)) == 3,
               10, what="three open stages")
    assert d.stop() == 0
    assert open_stages is not None
