"""Early wake-ups: the wake channel and Redis keyspace notifications start a pass at once (the
periodic resync is set far away so that only the event can explain the pass), and the daemon's
own write-backs never wake it up again (the daemon counts its wake-ups per reason)."""
from harness import owned, start_daemon, wait_until

PREFIX = "ivs:wake:"


def start_one_fleet(tmpdir, redis, sim, daemons):
    """A one-fleet daemon whose start-up pass has ended; resync is far away."""
    origin = sim.create_stage("WakeOrigin1", name="wake-origin")
    fleet = {"name": "main", "origin_stage_arn": origin, "viewers_per_stage": 100,
             "target_utilization": 1.0}
    d = start_daemon(daemons, tmpdir, redis, sim, [fleet], prefix=PREFIX, resync="600s")
    wait_until(lambda: d.passes() >= 1 and not d.status()["pass_running"], 20,
               what="the start-up pass to end")
    return d, origin


def test_wake_channel_starts_a_pass(tmpdir_path, redis, sim, daemons):
    d, origin = start_one_fleet(tmpdir_path, redis, sim, daemons)
    before = d.passes()
    redis.cmd("SET", f"{PREFIX}desired_stages", "2")
    assert redis.cmd("PUBLISH", f"{PREFIX}autoscaler:wake", "now") == 1   # the daemon listens
    wait_until(lambda: len(owned(sim)) == 1, 10, what="the woken pass to create a stage")
    assert d.passes() > before


def test_keyspace_event_on_an_input_key_starts_a_pass(tmpdir_path, redis, sim, daemons):
    # The server's operator enables notifications; the daemon never changes them itself.
    redis.cmd("CONFIG", "SET", "notify-keyspace-events", "K$s")
    d, origin = start_one_fleet(tmpdir_path, redis, sim, daemons)
    assert redis.cmd("CONFIG", "GET", "notify-keyspace-events")[1] in ("$sK", "K$s", "s$K")
    redis.cmd("SET", f"{PREFIX}stage:{origin}:viewers", "250")
    wait_until(lambda: len(owned(sim)) == 2, 10, what="a keyspace-woken pass to scale up")


def test_own_writes_do_not_wake_the_daemon(tmpdir_path, redis, sim, daemons):
    redis.cmd("CONFIG", "SET", "notify-keyspace-events", "K$sz")
    d, origin = start_one_fleet(tmpdir_path, redis, sim, daemons)
    assert d.status()["wakes"]["keyspace"] == 0
    sim.add_host(origin)
    redis.cmd("SET", f"{PREFIX}stage:{origin}:viewers", "250")     # one input change
    wait_until(lambda: len(owned(sim)) == 2 and not d.status()["pass_running"], 10,
               what="the scale-up pass to finish")
    # Those passes wrote stage:, replication: and the open-stages ZSET, each a keyspace event.
    # Once Redis holds the last pass's record, every event of the daemon's own writes has been
    # published; a message on the wake channel, published after them, reaches the daemon after
    # them too. When the daemon has counted that message, it has seen all of those events.
    wait_until(lambda: redis.cmd("HGET", f"{PREFIX}autoscaler:status", "passes")
               == str(d.passes()) and not d.status()["pass_running"], 10,
               what="the last pass's record in redis")
    assert redis.cmd("PUBLISH", f"{PREFIX}autoscaler:wake", "now") == 1
    wait_until(lambda: d.status()["wakes"]["wake_channel"] == 1, 10,
               what="the wake channel message to be counted")
    wakes = d.status()["wakes"]
    assert wakes["keyspace"] == 1, f"the daemon's own writes woke it up: {wakes}"
