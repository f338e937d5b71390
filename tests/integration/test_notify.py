"""The daemon's systemd life cycle as seen on a NOTIFY_SOCKET the test owns (issue 7):
READY=1 once the admin socket answers, STATUS= after a pass, WATCHDOG=1 at the WATCHDOG_USEC
cadence, RELOADING=1 + MONOTONIC_USEC= ... READY=1 on SIGHUP (a valid config swapped in, a
broken one refused with file:line:col and the old one kept), STOPPING=1 and exit 0 on SIGTERM,
also while a pass is in flight: the daemon either lets the calls finish or abandons them at
reconcile.stop_timeout. Every wait is for a condition with a deadline."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import Daemon, wait_until

PREFIX = "ivs:test:"


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notify socket. A thread collects
    every datagram with its arrival time, so cadence can be measured without polling gaps."""

    def __init__(self, tmpdir):
        self.path = os.path.join(tmpdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []            # (monotonic time, [lines])
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode(errors="replace").split("\n")))

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def mark(self):
        """An index: later waits only look at messages that arrived after this call."""
        return len(self.snapshot())

    def find(self, pred, start=0):
        for i, (_, lines) in enumerate(self.snapshot()[start:], start):
            if pred(lines):
                return i
        return None

    def wait(self, pred, start=0, timeout=20, what="notify message"):
        def found():
            i = self.find(pred, start)
            return None if i is None else (i,)
        (i,) = wait_until(found, timeout, what=what)
        return i, self.snapshot()[i][1]

    def wait_line(self, line, start=0, timeout=20):
        return self.wait(lambda ls: line in ls, start, timeout, what=repr(line))

    def count(self, line, start=0):
        return sum(1 for _, ls in self.snapshot()[start:] if line in ls)


@pytest.fixture
def notify(tmpdir_path):
    n = NotifySocket(tmpdir_path)
    yield n
    n.close()


@pytest.fixture
def resume_sim(sim):
    """Whatever a test paused in the simulator is released at the end."""
    yield sim
    try:
        sim.call("POST", "/_sim/resume", {})
    except OSError:
        pass


def fleet(sim, name, stage_id):
    arn = sim.create_stage(stage_id, name=f"{name}-origin")
    return {"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
            "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s", "drain_min": "0s",
            "reconnect_window": "10s"}


def make_daemon(tmpdir, redis, sim, fleets, notify_path, watchdog_usec=None, **kw):
    env = {"NOTIFY_SOCKET": notify_path}
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return Daemon(tmpdir, redis, sim, fleets, prefix=PREFIX, env=env, **kw)


def edit_config(d, *replacements):
    """Textual edits of the generated config (the harness fixes some reconcile keys)."""
    with open(d.config) as fh:
        text = fh.read()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    with open(d.config, "w") as fh:
        fh.write(text)


def rewrite_fleets(d, redis, sim, fleets):
    """Write a new config for the running daemon d: same settings, other fleets."""
    fresh = Daemon(d.tmpdir, redis, sim, fleets, prefix=d.prefix)
    assert fresh.config == d.config


def status_fleets(d):
    try:
        return [f["name"] for f in d.status()["fleets"]]
    except (AssertionError, ValueError, subprocess.TimeoutExpired):
        return None


def managed_stages(sim, fleet_name):
    return [s["arn"] for s in sim.stages()
            if s.get("tags", {}).get("ivs-autoscaler:managed") == "true"
            and s.get("tags", {}).get("ivs-autoscaler:fleet") == fleet_name]


def is_pass_status(lines):
    return any(re.match(r"STATUS=.*main: \d+/\d+ stages serving/desired, \d+/\d+ replications active/expected", ln) for ln in lines)


def test_ready_status_watchdog_and_stop(tmpdir_path, redis, sim, daemons, notify):
    d = make_daemon(tmpdir_path, redis, sim, [fleet(sim, "main", "OriginNotify1")], notify.path,
                    watchdog_usec=400000)
    daemons.append(d)
    d.start()
    ready, lines = notify.wait_line("READY=1")
    # READY=1 promises a listening admin socket: the very first try must answer.
    assert d.ctl("status")[0] == 0
    assert notify.find(lambda ls: any(ln.startswith("STATUS=") for ln in ls)) is not None
    notify.wait(is_pass_status, ready, what="STATUS= with a fleet summary after a pass")
    assert "STOPPING=1" not in [ln for _, ls in notify.snapshot() for ln in ls]

    # WATCHDOG_USEC=400ms: systemd expects a ping well inside that; sd-event sends one every
    # half period or so. Ten pings in 15 s is a bound no healthy loop misses, even under ASan.
    start = notify.mark()
    t0 = time.monotonic()
    wait_until(lambda: notify.count("WATCHDOG=1", start) >= 10, 15, what="ten WATCHDOG=1 pings")
    pings = [t for t, ls in notify.snapshot()[start:] if "WATCHDOG=1" in ls]
    # Not a storm either: the loop pings at the watchdog cadence, not on every iteration.
    elapsed = max(pings[-1] - t0, 0.4)
    assert len(pings) / elapsed < 50, (len(pings), elapsed)

    mark = notify.mark()
    assert d.stop(signal.SIGTERM, timeout=20) == 0
    notify.wait_line("STOPPING=1", mark, timeout=5)
    assert "stopping (SIGTERM)" in d.log()


def test_no_watchdog_pings_without_watchdog_usec(tmpdir_path, redis, sim, daemons, notify):
    d = make_daemon(tmpdir_path, redis, sim, [fleet(sim, "main", "OriginNotify2")], notify.path)
    daemons.append(d)
    d.start()
    ready, _ = notify.wait_line("READY=1")
    notify.wait(is_pass_status, ready, what="STATUS= after a pass")
    d.wait_passes(1)
    assert notify.count("WATCHDOG=1") == 0
    mark = notify.mark()
    assert d.stop(signal.SIGINT) == 0
    notify.wait_line("STOPPING=1", mark, timeout=5)


def is_reloading(lines):
    return "RELOADING=1" in lines and any(re.fullmatch(r"MONOTONIC_USEC=\d+", ln) for ln in lines)


def test_sighup_swaps_a_valid_config_and_keeps_the_old_one_when_broken(
        tmpdir_path, redis, sim, daemons, notify):
    main = fleet(sim, "main", "OriginNotify3")
    sim.add_host(main["origin_stage_arn"])
    redis.cmd("SET", f"{PREFIX}stage:{main['origin_stage_arn']}:viewers", 150)
    d = make_daemon(tmpdir_path, redis, sim, [main], notify.path)
    daemons.append(d)
    d.start()
    notify.wait_line("READY=1")
    d.wait_ready()
    wait_until(lambda: len(managed_stages(sim, "main")) == 1, 20, what="a replica stage of main")
    kept = managed_stages(sim, "main")

    # A valid new config: fleet main removed, fleet second added.
    second = fleet(sim, "second", "OriginNotify4")
    rewrite_fleets(d, redis, sim, [second])
    mark = notify.mark()
    d.proc.send_signal(signal.SIGHUP)
    reloading, lines = notify.wait(is_reloading, mark, what="RELOADING=1 with MONOTONIC_USEC")
    usec = int(next(ln for ln in lines if ln.startswith("MONOTONIC_USEC="))[len("MONOTONIC_USEC="):])
    assert abs(usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 60
    notify.wait_line("READY=1", reloading + 1)
    wait_until(lambda: status_fleets(d) == ["second"], 20, what="status to show only fleet second")
    wait_until(lambda: d.status()["fleets"][0].get("observed"), 20, what="fleet second observed")
    d.wait_passes(2)
    assert "configuration reloaded (1 fleets)" in d.log()
    # A removed fleet's stages are left alone, not deleted.
    assert managed_stages(sim, "main") == kept
    assert sim.calls("DeleteStage") == 0

    # A broken config: refused with file:line:col, the running one kept.
    with open(d.config, "a") as fh:
        fh.write("bogus_key: 1\n")
    bad_line = sum(1 for _ in open(d.config))
    mark = notify.mark()
    d.proc.send_signal(signal.SIGHUP)
    reloading, _ = notify.wait(is_reloading, mark, what="RELOADING=1 for the broken config")
    notify.wait_line("READY=1", reloading + 1)
    wait_until(lambda: f"{d.config}:{bad_line}:1: bogus_key: unknown key" in d.log(), 10,
               what="the error as file:line:col in the log")
    assert "keeping the running configuration" in d.log()
    d.wait_passes(1)
    assert status_fleets(d) == ["second"]
    assert d.proc.poll() is None
    assert d.stop() == 0


def held_daemon(tmpdir, redis, sim, notify, stop_timeout, aws_timeout="60s"):
    """A daemon whose first pass is stuck: the simulator holds every API request."""
    sim.call("POST", "/_sim/pause", {"operation": "ListStages", "afterCalls": 0})
    d = make_daemon(tmpdir, redis, sim, [fleet(sim, "main", "OriginHeld1")], notify.path)
    # The AWS timeout must outlast the test so that only the stop path ends the calls.
    edit_config(d, ("  timeout: 5s\n", f"  timeout: {aws_timeout}\n"),
                ("  stop_timeout: 5s\n", f"  stop_timeout: {stop_timeout}\n"))
    d.start()
    notify.wait_line("READY=1")
    d.wait_ready()
    wait_until(lambda: d.status().get("pass_running"), 10, what="a pass in flight")
    wait_until(lambda: sim.call("GET", "/_sim/pause").get("held", 0) > 0, 10,
               what="the simulator to hold a request")
    return d


def test_sigterm_abandons_calls_in_flight_at_stop_timeout(tmpdir_path, redis, resume_sim, daemons,
                                                          notify):
    sim = resume_sim
    d = held_daemon(tmpdir_path, redis, sim, notify, stop_timeout="2s")
    daemons.append(d)
    mark = notify.mark()
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    notify.wait_line("STOPPING=1", mark, timeout=5)
    # Exit 0 once stop_timeout (2 s) has passed; 20 s is a generous bound, not a timing goal.
    rc = d.proc.wait(20)
    assert rc == 0, d.log()
    assert time.monotonic() - t0 < 20
    assert "stop deadline reached" in d.log()
    d.stop()


def test_sigterm_lets_calls_in_flight_finish(tmpdir_path, redis, resume_sim, daemons, notify):
    sim = resume_sim
    d = held_daemon(tmpdir_path, redis, sim, notify, stop_timeout="60s")
    daemons.append(d)
    mark = notify.mark()
    d.proc.send_signal(signal.SIGTERM)
    stopping, _ = notify.wait_line("STOPPING=1", mark, timeout=5)
    # New admin clients get no answer once STOPPING=1 was sent (same handler, before it).
    assert d.ctl("-t", "2", "status")[0] != 0
    # A reload while stopping is ignored: no READY=1 that would cancel the stop for systemd.
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload ignored: stopping" in d.log(), 10, what="the ignored reload")
    assert d.proc.poll() is None              # still waiting for the held call
    sim.call("POST", "/_sim/resume", {})
    rc = d.proc.wait(30)
    assert rc == 0, d.log()
    # It ended because the calls finished, long before the 60 s deadline.
    assert "stop deadline reached" not in d.log()
    assert notify.find(lambda ls: "READY=1" in ls or "RELOADING=1" in ls, stopping) is None
    d.stop()
