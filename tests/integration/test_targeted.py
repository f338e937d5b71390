"""Targeted passes and the resync walk: a wake-up names its fleets and only they are observed,
planned and acted on; a fleet's pass never runs twice at once (a wake during it queues exactly
one more); the resync walks the fleets at resync_share x max_tps and says so when that takes
longer than resync_interval. Which fleet a call was for comes from the simulator's request log
("stage": the origin a ListParticipants / ListParticipantReplicas reads)."""
import json

from harness import Daemon, LineTail, wait_until

PREFIX = "ivs:tgt:"
PER_FLEET = ("ListParticipants", "ListParticipantReplicas")


class Log:
    """The simulator's request log, read incrementally, kept whole."""

    def __init__(self, sim):
        self.tail = LineTail(sim.log)
        self.entries = []

    def read(self):
        self.entries += [json.loads(x) for x in self.tail.new_lines()]
        return self.entries

    def mark(self):
        return len(self.read())


def fleet_of(stage_arn, origins):
    for name, arn in origins.items():
        if arn == stage_arn:
            return name
    return None


def start_fleets(tmpdir, redis, sim, daemons, n, resync="600s", aws=None):
    """n fleets f0..f(n-1), each an origin with one publishing host and the override 1."""
    fleets, origins = [], {}
    for i in range(n):
        name = f"f{i}"
        arn = sim.create_stage(f"TgtOrigin{i}", name=f"{name}-origin")
        sim.add_host(arn, user_id=f"host-{name}")
        redis.cmd("SET", f"{PREFIX}fleet:{name}:desired", "1")
        origins[name] = arn
        fleets.append({"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
                       "scale_down_delay": "1ms",
                       "keys": {"publisher": "fleet:{fleet}:publisher",
                                "desired_stages": "fleet:{fleet}:desired"}})
    d = Daemon(tmpdir, redis, sim, fleets, prefix=PREFIX, resync=resync)
    if aws:
        with open(d.config) as fh:
            text = fh.read()
        for k, v in aws.items():
            if f"  {k}: " in text:
                text = "\n".join(f"  {k}: {v}" if line.startswith(f"  {k}: ") else line
                                 for line in text.split("\n"))
            else:
                text = text.replace("aws:\n", f"aws:\n  {k}: {v}\n", 1)
        with open(d.config, "w") as fh:
            fh.write(text)
    daemons.append(d)
    d.start()
    d.wait_ready()
    return d, origins


def idle(d):
    st = d.status()
    return st["passes"] >= 1 and not st["pass_running"]


def owned_by(sim, fleet):
    return [s for s in sim.stages() if s.get("tags", {}).get("ivs-autoscaler:fleet") == fleet]


def wake(redis, fleet):
    assert redis.cmd("PUBLISH", f"{PREFIX}autoscaler:wake", fleet) == 1


def test_targeted_wake_calls_ivs_for_that_fleet_only(tmpdir_path, redis, sim, daemons):
    d, origins = start_fleets(tmpdir_path, redis, sim, daemons, 3)
    wait_until(lambda: idle(d), 30, what="the start-up pass over every fleet")
    log = Log(sim)
    start = log.mark()
    redis.cmd("SET", f"{PREFIX}fleet:f1:desired", "2")
    wake(redis, "f1")
    wait_until(lambda: len(owned_by(sim, "f1")) == 1 and idle(d), 20,
               what="the targeted pass to create f1's stage")
    calls = [e for e in log.read()[start:] if e["operation"] in PER_FLEET]
    fleets = {fleet_of(e.get("stage"), origins) for e in calls}
    assert fleets == {"f1"}, calls
    assert not owned_by(sim, "f0") and not owned_by(sim, "f2")


def test_reconcile_fleet_touches_only_that_fleet(tmpdir_path, redis, sim, daemons):
    d, origins = start_fleets(tmpdir_path, redis, sim, daemons, 3)
    wait_until(lambda: idle(d), 30, what="the start-up pass over every fleet")
    log = Log(sim)
    start = log.mark()
    passes = d.passes()
    # Every fleet would scale up: only the named one may.
    for f in origins:
        redis.cmd("SET", f"{PREFIX}fleet:{f}:desired", "2")
    rc, out, err = d.ctl("reconcile", "f2")
    assert rc == 0, out + err
    wait_until(lambda: d.passes() > passes and idle(d), 20, what="the pass over f2")
    calls = [e for e in log.read()[start:] if e["operation"] in PER_FLEET]
    assert {fleet_of(e.get("stage"), origins) for e in calls} == {"f2"}, calls
    assert len(owned_by(sim, "f2")) == 1
    assert not owned_by(sim, "f0") and not owned_by(sim, "f1")


def test_a_scale_up_cut_by_the_step_is_followed_up_without_another_wake(
        tmpdir_path, redis, sim, daemons):
    d, origins = start_fleets(tmpdir_path, redis, sim, daemons, 2)
    wait_until(lambda: idle(d), 30, what="the start-up pass over every fleet")
    passes = d.passes()
    wakes = d.status()["wakes_total"]
    # origin + 5 replicas (one host feeds at most 5): the step allows max(S, 4) = 4 new stages
    # in the first pass, and the resync is 600 s away: only the follow-up can create the 5th.
    redis.cmd("SET", f"{PREFIX}fleet:f0:desired", "6")
    wake(redis, "f0")
    wait_until(lambda: len(owned_by(sim, "f0")) == 5 and idle(d), 30,
               what="the first pass and its follow-up to create f0's 5 stages")
    assert d.passes() >= passes + 2
    assert d.status()["wakes_total"] == wakes + 1      # the wake channel's, nothing else
    assert not owned_by(sim, "f1")


def test_a_targeted_pass_whose_reads_failed_is_retried_after_the_backoff(
        tmpdir_path, redis, sim, daemons):
    d, origins = start_fleets(tmpdir_path, redis, sim, daemons, 1)
    wait_until(lambda: idle(d), 30, what="the start-up pass")
    # Every attempt of the fleet's host listing fails: the woken pass ends in fail static.
    sim.faults(failOperations=["ListParticipants"])
    passes = d.passes()
    redis.cmd("SET", f"{PREFIX}fleet:f0:desired", "2")
    wake(redis, "f0")
    wait_until(lambda: d.passes() > passes and d.status()["fleets"][0].get("fail_static"), 30,
               what="the woken pass to end with a failed read")
    sim.faults(failOperations=[])
    # The resync is 600 s away and nothing else wakes the fleet: only the backoff's end can
    # start the pass that reads it again and feeds the stage the first pass created blind.
    def fed():
        stages = owned_by(sim, "f0")
        return len(stages) == 1 and any(
            r["destinationStageArn"] == stages[0]["arn"] and r["replicationState"] == "ACTIVE"
            for r in sim.state().get("replications", []))
    wait_until(fed, 30, what="a pass after the backoff to read the fleet again and feed its stage")
    wait_until(lambda: d.status()["fleets"][0].get("fail_static") is False, 10,
               what="the fleet's reads healthy again")
    assert d.status()["wakes"]["backoff"] >= 1
    assert len(owned_by(sim, "f0")) == 1


def test_wake_during_a_running_pass_queues_exactly_one_more(tmpdir_path, redis, sim, daemons):
    d, origins = start_fleets(tmpdir_path, redis, sim, daemons, 1)
    wait_until(lambda: idle(d), 30, what="the start-up pass")
    log = Log(sim)
    start = log.mark()
    # Hold every call after the pass's ListStages: its ListParticipants is then on the wire (a
    # pass that has not read the fleet yet would see later changes anyway and needs no other).
    sim.call("POST", "/_sim/pause", {"operation": "ListStages", "afterCalls": 1})
    wake(redis, "f0")
    wait_until(lambda: sim.call("GET", "/_sim/pause")["held"] >= 1, 10,
               what="the first pass's ListParticipants to be held")
    assert d.status()["pass_running"]
    # Three more wake-ups while that pass cannot finish; each is handled before the next check.
    for _ in range(3):
        before = d.status()["wakes_total"]
        wake(redis, "f0")
        wait_until(lambda: d.status()["wakes_total"] > before, 10, what="the wake to arrive")
    # Still one call held: no second pass started beside the running one.
    assert sim.call("GET", "/_sim/pause")["held"] == 1
    sim.call("POST", "/_sim/resume")
    wait_until(lambda: idle(d), 20, what="the running pass and the queued one to end")
    lp = [e for e in log.read()[start:] if e["operation"] == "ListParticipants"
          and e.get("stage") == origins["f0"] and e["status"] == 200]
    assert len(lp) == 2, lp     # the running pass and exactly one queued pass


def test_targeted_wake_during_the_resync_acts_before_the_walk_reaches_the_fleet(
        tmpdir_path, redis, sim, daemons):
    # 6 fleets walked at 0.25 x 2 = 0.5 observation calls/s: a fleet every 2 s, 12 s a round.
    d, origins = start_fleets(tmpdir_path, redis, sim, daemons, 6, resync="1s",
                              aws={"max_tps": 2, "resync_share": 0.25})
    log = Log(sim)
    # After a whole round (the start-up passes are over by then), the start of the next one.
    wait_until(lambda: d.status()["resync"]["rounds"] >= 1, 60, what="a first resync round")
    wait_until(lambda: (lambda st: st["targeted_passes_running"] == 0 and
                        st["resync"].get("walking") and
                        st["resync"].get("next_fleet") in ("f0", "f1"))(d.status()),
               60, interval=0.05, what="a resync walk at its start, no other pass running")
    start = log.mark()
    redis.cmd("SET", f"{PREFIX}fleet:f5:desired", "2")
    wake(redis, "f5")
    wait_until(lambda: len(owned_by(sim, "f5")) == 1, 20, what="f5's stage")
    new = owned_by(sim, "f5")[0]["arn"]
    # Wait for the walk to read f4, the fleet before f5, then look at the order of events.
    wait_until(lambda: any(e["operation"] == "ListParticipants" and
                           e.get("stage") == origins["f4"] for e in log.read()[start:]),
               60, what="the walk to reach f4")
    entries = log.read()[start:]
    created = next(i for i, e in enumerate(entries)
                   if e["operation"] == "CreateStage" and e.get("stage") == new)
    f4_read = next(i for i, e in enumerate(entries)
                   if e["operation"] == "ListParticipants" and e.get("stage") == origins["f4"])
    trace = "\n".join(f"{e['time']} {e['operation']} {e.get('stage', '')[-12:]}" for e in entries)
    assert created < f4_read, trace


def test_status_reports_the_real_resync_period(tmpdir_path, redis, sim, daemons):
    # 6 fleets with one host each at 0.5 x 1 = 0.5 observation calls/s: 12 s, more than 5 s.
    d, origins = start_fleets(tmpdir_path, redis, sim, daemons, 6, resync="5s",
                              aws={"max_tps": 1, "resync_share": 0.5})
    wait_until(lambda: d.status()["resync"].get("period_ms", 0) > 5000, 60,
               what="the computed resync period")
    r = d.status()["resync"]
    assert r["interval_ms"] == 5000
    assert r["period_ms"] == 12000
    assert r["fleets"] == 6
    rc, out, err = d.ctl("status")
    assert rc == 0
    assert "resync period 12 s: 6 fleets at 0.5 observation calls/s" in out, out
    rc, out, err = d.ctl("metrics")
    assert "ivs_autoscaler_resync_period_seconds 12" in out
    # Logged once, not every round.
    wait_until(lambda: d.status()["resync"].get("rounds", 0) >= 1, 60, what="a first round")
    assert d.log().count("resync period 12 s") == 1, d.log()
