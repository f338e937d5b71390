"""Early wake-ups: the wake channel and Redis keyspace notifications start a pass at once (the
periodic resync is set far away so that only the event can explain the pass), and the daemon's
own write-backs never wake it up again."""
import time

from harness import Daemon, wait_until

PREFIX = "ivs:wake:"


def start(tmpdir, redis, sim, daemons):
    origin = sim.create_stage("WakeOrigin1", name="wake-origin")
    fleet = {"name": "main", "origin_stage_arn": origin, "viewers_per_stage": 100,
             "target_utilization": 1.0}
    d = Daemon(tmpdir, redis, sim, [fleet], prefix=PREFIX, resync="600s")
    daemons.append(d)
    d.start()
    d.wait_ready()
    wait_until(lambda: d.passes() >= 1 and not d.status()["pass_running"], 20,
               what="the start-up pass to end")
    return d, origin


def owned(sim):
    return [s for s in sim.stages() if s.get("tags", {}).get("ivs-autoscaler:managed") == "true"]


def test_wake_channel_starts_a_pass(tmpdir_path, redis, sim, daemons):
    d, origin = start(tmpdir_path, redis, sim, daemons)
    before = d.passes()
    redis.cmd("SET", f"{PREFIX}desired_stages", "2")
    assert redis.cmd("PUBLISH", f"{PREFIX}autoscaler:wake", "now") == 1   # the daemon listens
    wait_until(lambda: len(owned(sim)) == 1, 10, what="the woken pass to create a stage")
    assert d.passes() > before


def test_keyspace_event_on_an_input_key_starts_a_pass(tmpdir_path, redis, sim, daemons):
    # The server's operator enables notifications; the daemon never changes them itself.
    redis.cmd("CONFIG", "SET", "notify-keyspace-events", "K$s")
    d, origin = start(tmpdir_path, redis, sim, daemons)
    assert redis.cmd("CONFIG", "GET", "notify-keyspace-events")[1] in ("$sK", "K$s", "s$K")
    redis.cmd("SET", f"{PREFIX}stage:{origin}:viewers", "250")
    wait_until(lambda: len(owned(sim)) == 2, 10, what="a keyspace-woken pass to scale up")


def test_own_writes_do_not_wake_the_daemon(tmpdir_path, redis, sim, daemons):
    redis.cmd("CONFIG", "SET", "notify-keyspace-events", "K$sz")
    d, origin = start(tmpdir_path, redis, sim, daemons)
    sim.add_host(origin)
    redis.cmd("SET", f"{PREFIX}stage:{origin}:viewers", "250")     # one input change
    wait_until(lambda: len(owned(sim)) == 2 and not d.status()["pass_running"], 10,
               what="the scale-up pass to finish")
    # Those passes wrote stage:, replication: and the open-stages ZSET, each a keyspace event.
    # Over a bounded observation window no further pass may start on its own.
    settled = d.passes()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        assert d.passes() <= settled, "the daemon woke itself up with its own writes"
        time.sleep(0.05)
