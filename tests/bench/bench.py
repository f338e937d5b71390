#!/usr/bin/env python3
"""make bench: the figures of docs/benchmarks.md, measured against the local IVS simulator
and a private redis-server, each printed beside its bound.

Every figure is printed as `BENCH <name> value=<v> unit=<u> bound=<b> ratio=<v/b>` and in a table
at the end. Nothing is asserted: machines differ. Each scenario starts its own redis-server,
simulator and daemon on free loopback ports and stops them when it ends (also on Ctrl-C).

Method and the derivation of every bound: docs/benchmarks.md.
"""
import argparse
import datetime
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
import redis_servers  # noqa: E402

PREFIX = "ivs:bench:"
MUTATING = ("CreateStage", "DeleteStage", "UpdateStage", "StartParticipantReplication",
            "StopParticipantReplication", "TagResource", "UntagResource", "DisconnectParticipant",
            "CreateParticipantToken")
RESULTS = []


class Stop(Exception):
    pass


def on_signal(signum, frame):  # noqa: ARG001
    raise Stop(signal.Signals(signum).name)


def report(name, value, unit, bound, note=""):
    ratio = value / bound if bound else float("nan")
    print(f"BENCH {name} value={value:.6g} unit={unit} bound={bound:.6g} ratio={ratio:.3f}", flush=True)
    RESULTS.append((name, value, unit, bound, ratio, note))


def info(msg):
    print(f"bench: {msg}", flush=True)


def percentile(xs, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(xs)
    k = max(0, math.ceil(p / 100.0 * len(s)) - 1)
    return s[k]


# ---- the pieces: Redis connection, admin socket client, simulator request log --------------

class RedisConn:
    """One persistent RESP connection: SET + PUBLISH go out in one write."""

    def __init__(self, port, tls_ca=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_ca is not None:
            ctx = ssl.create_default_context(cafile=tls_ca)
            self.s = ctx.wrap_socket(self.s, server_hostname="localhost")
        self.f = self.s.makefile("rb")
        if tls_ca is not None:
            self.pipeline(("AUTH", redis_servers.USER, redis_servers.PASSWORD))

    def pipeline(self, *cmds):
        out = b""
        for args in cmds:
            out += b"*%d\r\n" % len(args)
            for a in args:
                a = str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return [harness._read_resp(self.f) for _ in cmds]

    def close(self):
        self.f.close()
        self.s.close()


def admin(sock_path, command, timeout=30):
    """One admin round trip in JSON mode: connect, one line out, one line back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(f"json {command}\n".encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply = json.loads(buf)
    if not reply.get("ok"):
        raise RuntimeError(f"admin {command}: {reply.get('error')}")
    return reply["data"]


class SimLog:
    """Incremental reader of the simulator's request log (one JSON object per line)."""

    def __init__(self, path):
        self.tail = harness.LineTail(path)

    def new(self):
        out = []
        for line in self.tail.new_lines():
            e = json.loads(line)
            done = datetime.datetime.fromisoformat(e["time"]).timestamp()
            # "time" is written when the answer is sent; latencyMs runs from the request's arrival.
            e["arrived"] = done - e["latencyMs"] / 1000.0
            e["done"] = done
            out.append(e)
        return out


# ---- one scenario's processes -------------------------------------------------------------

class Env:
    def __init__(self, name, sim_args=(), tps=0, tls=False):
        self.tmp = tempfile.mkdtemp(prefix=f"ivs-bench-{name}-")
        os.chmod(self.tmp, 0o755)
        self.redis = self.sim = self.daemon = None
        self.redis_extra = []
        self.tls_ca = None
        if tls:
            # TLS-only server with an ACL user, as ElastiCache with in-transit encryption.
            certs = redis_servers.Certs(self.tmp)
            self.redis = redis_servers.TlsRedis(self.tmp, certs)
            self.tls_ca = certs.path("ca.crt")
            pw = os.path.join(self.tmp, "redis-password")
            with open(pw, "w") as fh:
                fh.write(redis_servers.PASSWORD + "\n")
            os.chmod(pw, 0o600)
            self.redis_extra = [f"password_file: {pw}", "tls:", f"  ca_file: {self.tls_ca}"]
        else:
            self.redis = harness.Redis(self.tmp)
        self.sim = harness.Sim(self.tmp, tps=tps, extra=list(sim_args))
        self.simlog = SimLog(self.sim.log)

    def start_daemon(self, fleets, max_tps, resync, timeout="10s", reconcile_extra=None):
        d = harness.Daemon(self.tmp, self.redis, self.sim, fleets, prefix=PREFIX, resync=resync,
                           reconcile_extra=reconcile_extra, redis_extra=self.redis_extra)
        with open(d.config) as fh:
            text = fh.read()
        text = text.replace("  max_tps: 20\n", f"  max_tps: {max_tps}\n")
        text = text.replace("  timeout: 5s\n", f"  timeout: {timeout}\n")
        with open(d.config, "w") as fh:
            fh.write(text)
        self.daemon = d
        d.start()
        return d

    status_calls = 0

    def status(self):
        self.status_calls += 1
        return admin(self.daemon.socket, "status")

    def wait_idle_after(self, passes, timeout=60, interval=0.01):
        """Until a pass numbered > passes has finished and none is running; returns the status."""
        return harness.wait_until(lambda: (lambda st: st if st["passes"] > passes and
                                           not st["pass_running"] else None)(self.status()),
                                  timeout, interval=interval, what=f"a pass after #{passes}")

    def close(self):
        for p in (self.daemon, self.sim, self.redis):
            if p is not None:
                try:
                    p.stop()
                except Exception as e:  # noqa: BLE001 - cleanup goes on
                    info(f"stopping {type(p).__name__}: {e}")
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_fleets(env, n, replicas, host=True):
    """n origin stages (out of band), a publishing host in each, desired override 1 + replicas."""
    fleets = []
    for i in range(n):
        name = f"f{i:03d}"
        arn = env.sim.create_stage(f"BenchOrigin{i:03d}", name=f"{name}-origin")
        if host:
            env.sim.add_host(arn, user_id=f"host-{name}")
        env.redis.cmd("SET", f"{PREFIX}fleet:{name}:desired", str(1 + replicas))
        fleets.append({"name": name, "origin_stage_arn": arn, "viewers_per_stage": 10000,
                       "max_replicas": 5, "scale_down_delay": "1s", "drain_timeout": "60s", "drain_min": "0s",
                       "reconnect_window": "60s",
                       "keys": {"publisher": "fleet:{fleet}:publisher",
                                "desired_stages": "fleet:{fleet}:desired"}})
    return fleets


def owned(state):
    return [s for s in state.get("stages", [])
            if s.get("tags", {}).get("ivs-autoscaler:managed") == "true"]


def active(state):
    return [r for r in state.get("replications", [])
            if r.get("state", r.get("replicationState")) == "ACTIVE"]


def api_calls(counters):
    return {op: c["calls"] for op, c in counters.get("operations", {}).items()}


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])
    return out


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime (fields 14, 15)


# ---- 1. reaction ---------------------------------------------------------------------------

def wait_budget_full(env, rate, burst, timeout=30):
    """Until the daemon's per-operation token buckets are all full again: no IVS call for
    burst/rate seconds (the bucket refills `rate` tokens per second up to `burst`, so that much
    quiet fills it whatever was spent before) and no pass running. Returns the quiet time."""
    quiet = burst / rate
    last = time.time()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in env.simlog.new():
            last = max(last, e["done"])
        if time.time() - last >= quiet and not env.status()["pass_running"]:
            return quiet
        time.sleep(0.02)
    raise RuntimeError(f"IVS calls did not stop for {quiet:.2f} s within {timeout} s")


class ReactionRig:
    """One daemon, Redis and simulator for the reaction figure; trial() measures one wake-up
    to the first CreateStage, in ms. tls: a TLS-only redis-server with an ACL user, reached
    over rediss://."""

    MAX_TPS = 20

    def __init__(self, tls):
        self.env = Env("reaction-tls" if tls else "reaction", tps=0, tls=tls)
        fleets = make_fleets(self.env, 1, 0)
        fleets[0]["scale_down_delay"] = "1ms"
        self.desired = f"{PREFIX}fleet:f000:desired"
        self.env.start_daemon(fleets, max_tps=self.MAX_TPS, resync="600s")
        self.env.daemon.wait_ready()
        self.env.wait_idle_after(0)
        self.conn = RedisConn(self.env.redis.port, self.env.tls_ca)
        self.env.simlog.new()
        self.samples = []

    def trial(self):
        env = self.env
        # Each trial and its reset spend two or three calls of every observation operation
        # within ~20 ms; back to back, the trials drained the daemon's own budget (max_tps
        # 20/s per operation, burst 20) and then measured its wait for a token (~40 ms).
        # Start every trial with a full budget, as a wake-up after a quiet period has.
        wait_budget_full(env, self.MAX_TPS, self.MAX_TPS)
        passes = env.status()["passes"]
        t0 = time.time()
        self.conn.pipeline(("SET", self.desired, "2"),
                           ("PUBLISH", f"{PREFIX}autoscaler:wake", "bench"))
        deadline = time.monotonic() + 10
        got = None
        while got is None and time.monotonic() < deadline:
            for e in env.simlog.new():
                if e["operation"] == "CreateStage" and got is None:
                    got = e
            if got is None:
                time.sleep(0.001)
        if got is None:
            raise RuntimeError("no CreateStage within 10 s of the wake-up")
        self.samples.append((got["arrived"] - t0) * 1000.0)
        # Back to one stage: the override down, the new stage removed out of band, and one
        # pass that sees it, so the next trial starts from an idle daemon.
        env.wait_idle_after(passes)
        self.conn.pipeline(("SET", self.desired, "1"))
        for s in owned(env.sim.state()):
            env.sim.delete_stage(s["arn"])
        before = env.status()["passes"]
        admin(env.daemon.socket, "reconcile")
        env.wait_idle_after(before)

    def summary(self, label):
        s = self.samples
        p50, p99 = percentile(s, 50), percentile(s, 99)
        info(f"reaction{label} over {len(s)} trials: min {min(s):.2f} p50 {p50:.2f} "
             f"p99 {p99:.2f} max {max(s):.2f} ms; slowest: "
             f"{', '.join(f'{x:.1f}' for x in sorted(s)[-5:])}")
        return p50, p99

    def close(self):
        try:
            self.conn.close()
        except (AttributeError, OSError):
            pass
        self.env.close()


def bench_reaction(trials):
    """Wake-up to the first CreateStage over redis:// and over rediss:// (TLS-only server,
    ACL user). The two set-ups run side by side and their trials alternate, so both see the
    same machine load; the TLS p99 is bounded by the plain p99 + 1 ms."""
    plain = tls = None
    try:
        plain = ReactionRig(tls=False)
        tls = ReactionRig(tls=True)
        for _ in range(trials):
            plain.trial()
            tls.trial()
        p50, p99 = plain.summary("")
        tls_p50, tls_p99 = tls.summary(" over rediss://")
        report("reaction_p50_ms", p50, "ms", 50.0)
        report("reaction_p99_ms", p99, "ms", 50.0)
        report("reaction_tls_p50_ms", tls_p50, "ms", p50 + 1.0, "bound: plain p50 + 1 ms")
        report("reaction_tls_p99_ms", tls_p99, "ms", p99 + 1.0,
               f"rediss:// + ACL user; bound: plain p99 {p99:.2f} + 1 ms")
    finally:
        for rig in (plain, tls):
            if rig is not None:
                rig.close()


# ---- 2 + 3. converge and steady calls --------------------------------------------------------

def bench_converge(fail_rate, steady):
    n_fleets, replicas, tps, latency_ms = 20, 5, 5, 50
    tag = "converge" if not fail_rate else "converge_faults"
    sim_args = ["--latency-ms", str(latency_ms), "--seed", "8"]
    if fail_rate:
        sim_args += ["--fail-rate", str(fail_rate)]
    env = Env(tag, sim_args=sim_args, tps=tps)
    try:
        if fail_rate:
            env.sim.faults(failRate=0.0)      # no faults while setting up
        fleets = make_fleets(env, n_fleets, replicas)
        if fail_rate:
            env.sim.faults(failRate=fail_rate, hangSeconds=3)
        need = n_fleets * replicas
        t0 = time.time()
        env.start_daemon(fleets, max_tps=tps, resync="5s", timeout="2s")
        creates = starts = 0
        last = first_create = last_create = None
        errors = {}
        deadline = time.monotonic() + 240
        while (creates < need or starts < need) and time.monotonic() < deadline:
            for e in env.simlog.new():
                if e["status"] != 200:
                    k = f"{e['operation']}:{e['errorType']}"
                    errors[k] = errors.get(k, 0) + 1
                if e["operation"] == "CreateStage" and first_create is None:
                    first_create = e["arrived"]
                if e["status"] == 200 and e["operation"] == "CreateStage":
                    creates += 1
                    last = last_create = e["done"]
                elif e["status"] == 200 and e["operation"] == "StartParticipantReplication":
                    starts += 1
                    last = e["done"]
            time.sleep(0.05)
        state = env.sim.state()
        n_owned, n_active = len(owned(state)), len(active(state))
        if n_owned != need or n_active != need:
            raise RuntimeError(f"{tag}: not converged: {n_owned} stages, {n_active} ACTIVE "
                               f"(successful CreateStage {creates}, Start {starts})")
        wall = last - t0
        info(f"{tag}: timeline from daemon start: first CreateStage arrived {first_create - t0:.2f} s, "
             f"last CreateStage done {last_create - t0:.2f} s, last Start done {last - t0:.2f} s, "
             f"errors {json.dumps(errors, sort_keys=True)}")
        lower = need / tps + latency_ms / 1000.0
        cnt = api_calls(env.sim.counters())
        info(f"{tag}: {need} stages + {need} replications in {wall:.2f} s; lower bound "
             f"{lower:.2f} s; calls {json.dumps(cnt, sort_keys=True)}")
        report(f"{tag}_ratio", wall / lower, "ratio", 1.15,
               f"{wall:.1f} s vs {lower:.2f} s" + (f", fail rate {fail_rate:.0%}" if fail_rate else ""))
        if steady:
            bench_steady(env, n_fleets)
    finally:
        env.close()


def bench_steady(env, n_fleets, rounds=3):
    """Calls per resync round (the walk over every fleet), over `rounds` whole rounds once the
    convergence's passes are over; the walk runs back to back when a round takes longer than
    resync_interval, so rounds are counted, not idle moments."""
    harness.wait_until(lambda: env.status().get("targeted_passes_running", 0) == 0, 120,
                       what="the convergence's passes to end")

    def next_round(after):
        return harness.wait_until(lambda: (lambda st: st if st["resync"]["rounds"] > after
                                           else None)(env.status()), 120, interval=0.01,
                                  what=f"resync round #{after + 1} to end")
    st = next_round(env.status()["resync"]["rounds"])
    before = api_calls(env.sim.counters())
    first = st["resync"]["rounds"]
    st = next_round(first + rounds - 1)
    after = api_calls(env.sim.counters())
    done = st["resync"]["rounds"] - first
    delta = {op: after.get(op, 0) - before.get(op, 0) for op in after}
    delta = {op: v for op, v in delta.items() if v}
    stages = len(env.sim.state()["stages"])
    minimum = math.ceil(stages / 100) + n_fleets + n_fleets       # one host per fleet
    per = sum(delta.values()) / done
    mutating = sum(v for op, v in delta.items() if op in MUTATING)
    info(f"steady: {done} resync rounds, calls per round {json.dumps({k: v / done for k, v in sorted(delta.items())})}; "
         f"minimum {minimum} ({stages} stages); resync {json.dumps(st['resync'])}")
    report("steady_calls_ratio", per / minimum, "ratio", 1.0, f"{per:.1f} calls/round vs {minimum}")
    report("steady_mutating_calls", mutating, "calls", 0, "must be 0")


# ---- 4. memory and idle CPU -------------------------------------------------------------------

def bench_memory(resyncs):
    n_fleets, replicas = 200, 5
    env = Env("memory", sim_args=["--stage-quota", "2000"], tps=0)
    try:
        fleets = make_fleets(env, n_fleets, replicas)
        # A long resync: the passes measured below are started one at a time with "reconcile",
        # so each is counted whole and never overlaps the next.
        d = env.start_daemon(fleets, max_tps=100, resync="600s", timeout="10s")
        pid = d.proc.pid
        peak = {"RssAnon": 0, "VmHWM": 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    s = proc_status(pid)
                except (FileNotFoundError, ProcessLookupError, ValueError):
                    return
                for k in peak:
                    peak[k] = max(peak[k], s.get(k, 0))
                stop.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        need = n_fleets * replicas
        t0 = time.monotonic()
        d.wait_ready()

        def converged():
            st = env.status()
            if st["pass_running"]:
                return None
            if sum(f.get("replications_active", 0) for f in st["fleets"]) >= need:
                return st
            admin(d.socket, "reconcile")      # the scale-up limit needs a second pass
            return None

        st = harness.wait_until(converged, 300, interval=0.2, what=f"{need} ACTIVE replications")
        n_active = len(active(env.sim.state()))
        info(f"memory: {n_active} ACTIVE replications into {need} replica stages of {n_fleets} "
             f"fleets after {time.monotonic() - t0:.1f} s")
        # The status polls that find the end of each pass cost the daemon CPU too (a status of
        # 200 fleets is a large JSON document): poll slowly, count them, and subtract their cost
        # measured on an idle daemon.
        hz = os.sysconf("SC_CLK_TCK")
        ticks0, passes0, polls0 = cpu_ticks(pid), st["passes"], env.status_calls
        for _ in range(resyncs):
            admin(d.socket, "reconcile")
            st = env.wait_idle_after(st["passes"], timeout=120, interval=0.1)
        ticks1, passes1, polls = cpu_ticks(pid), st["passes"], env.status_calls - polls0
        t_idle = cpu_ticks(pid)
        for _ in range(200):
            env.status()
        status_ms = (cpu_ticks(pid) - t_idle) * 1000.0 / hz / 200
        stop.set()
        sampler.join()
        cpu_ms = ((ticks1 - ticks0) * 1000.0 / hz - polls * status_ms) / (passes1 - passes0)
        info(f"memory: peak RssAnon {peak['RssAnon']} kB, VmHWM {peak['VmHWM']} kB; "
             f"idle pass CPU {cpu_ms:.1f} ms over {passes1 - passes0} passes, after subtracting "
             f"{polls} status polls at {status_ms:.2f} ms each "
             f"(last pass {st['last_pass']['duration_ms']} ms wall)")
        report("anon_kb", peak["RssAnon"], "kB", 4096.0, f"VmHWM {peak['VmHWM']} kB")
        report("vmhwm_kb", peak["VmHWM"], "kB", float("nan"), "information")
        report("idle_pass_cpu_ms", cpu_ms, "ms", float("nan"), f"{n_fleets} fleets, {need} replicas")
    finally:
        env.close()


# ---- 5. admin round trip under slow IVS ---------------------------------------------------------

def _admin_worker(args):
    sock_path, n = args
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        admin(sock_path, "status")
        lat.append((time.perf_counter() - t) * 1000.0)
    return lat


def _default_signals():
    """A pool's workers are ended with SIGTERM: they must not raise Stop like the parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def bench_admin(clients, per_client):
    env = Env("admin", sim_args=["--latency-ms", "5000"], tps=0)
    try:
        fleets = make_fleets(env, 5, 5)
        d = env.start_daemon(fleets, max_tps=20, resync="1s", timeout="20s")
        d.wait_ready()
        harness.wait_until(lambda: env.status()["pass_running"], 20, what="a pass in flight")
        with multiprocessing.get_context("fork").Pool(clients, initializer=_default_signals) as pool:
            lat = sum(pool.map(_admin_worker, [(d.socket, per_client)] * clients), [])
        inflight = env.status()["pass_running"]
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        info(f"admin: {len(lat)} status requests from {clients} clients: p50 {p50:.2f} "
             f"p99 {p99:.2f} max {max(lat):.2f} ms; IVS pass still in flight: {inflight}")
        report("admin_p50_ms", p50, "ms", 5.0)
        report("admin_p99_ms", p99, "ms", 5.0)
    finally:
        env.close()


# ---- 6. many fleets: reaction under the resync, and the resync's own rate -------------------

OBSERVATION = ("ListStages", "GetStage", "ListParticipants", "ListParticipantReplicas")


def scale_env(n_fleets, tag):
    """n fleets with one publishing host each against IVS's real quotas (5 TPS per operation,
    50 ms per call); the daemon with its defaults (resync_interval 15s, max_tps 4)."""
    env = Env(tag, sim_args=["--latency-ms", "50"], tps=5)
    fleets = make_fleets(env, n_fleets, 0)
    for f in fleets:
        f["scale_down_delay"] = "1ms"
    d = env.start_daemon(fleets, max_tps=4, resync="15s")
    d.wait_ready()
    # Steady state: the start-up passes over every fleet are over, only the resync walks.
    harness.wait_until(lambda: (lambda st: st["passes"] >= 1 and
                                st.get("targeted_passes_running", 0) == 0)(env.status()),
                       300, interval=0.2, what="the start-up passes to end")
    return env, fleets


def measure_resync_rate(env, window):
    """Observation calls per second and operation over window seconds with no wake-up."""
    before = api_calls(env.sim.counters())
    t0 = time.monotonic()
    time.sleep(window)          # a measuring window, not synchronisation
    after = api_calls(env.sim.counters())
    dt = time.monotonic() - t0
    return {op: (after.get(op, 0) - before.get(op, 0)) / dt for op in OBSERVATION}


def reaction_trials(env, fleets, trials, spread_s):
    """Wake one fleet at a time (its override 1 -> 2, a wake-channel message naming it) at
    random moments of the resync cycle; the reaction is the arrival of the next CreateStage."""
    import random
    rng = random.Random(13)
    conn = RedisConn(env.redis.port)
    samples = []
    try:
        env.simlog.new()
        for k in range(trials):
            f = fleets[(k * 37) % len(fleets)]["name"]
            desired = f"{PREFIX}fleet:{f}:desired"
            time.sleep(rng.uniform(0.2, spread_s))      # lands anywhere in the resync cycle
            env.simlog.new()
            t0 = time.time()
            conn.pipeline(("SET", desired, "2"), ("PUBLISH", f"{PREFIX}autoscaler:wake", f))
            deadline = time.monotonic() + 60
            got = None
            while got is None and time.monotonic() < deadline:
                for e in env.simlog.new():
                    if e["operation"] == "CreateStage" and e["status"] == 200 and got is None:
                        got = e
                if got is None:
                    time.sleep(0.002)
            if got is None:
                raise RuntimeError(f"no CreateStage within 60 s of waking {f}")
            samples.append((got["arrived"] - t0) * 1000.0)
            # back to one stage: the override down and the new stage removed out of band
            conn.pipeline(("SET", desired, "1"))
            for st in owned(env.sim.state()):
                env.sim.delete_stage(st["arn"])
    finally:
        conn.close()
    return samples


def bench_scale(trials):
    n_fleets, max_tps, share = 100, 4, 0.5
    env, fleets = scale_env(n_fleets, "scale")
    try:
        rates = measure_resync_rate(env, 30)
        st = env.status()
        info(f"scale: observation calls/s with {n_fleets} fleets and no wake-up: "
             f"{json.dumps({k: round(v, 2) for k, v in rates.items()})}; "
             f"resync: {json.dumps(st.get('resync', {}))}")
        worst = max(rates.values())
        report("resync_calls_per_s", worst, "calls/s", share * max_tps,
               f"busiest operation, {n_fleets} fleets")
        samples = reaction_trials(env, fleets, trials, 3.0)
    finally:
        env.close()
    env1, fleets1 = scale_env(1, "scale1")
    try:
        one = reaction_trials(env1, fleets1, max(10, trials // 2), 1.0)
    finally:
        env1.close()
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    p99_1 = percentile(one, 99)
    info(f"scale: reaction over {len(samples)} trials with {n_fleets} fleets: min "
         f"{min(samples):.1f} p50 {p50:.1f} p99 {p99:.1f} max {max(samples):.1f} ms; "
         f"with 1 fleet ({len(one)} trials): p50 {percentile(one, 50):.1f} p99 {p99_1:.1f} ms")
    report("reaction_100_p99_ms", p99, "ms", 500.0, f"1 fleet: p99 {p99_1:.0f} ms, p50 "
           f"{percentile(one, 50):.0f} ms; 100 fleets p50 {p50:.0f} ms")


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    distro = "?"
    try:
        with open("/etc/os-release") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {distro}, Linux {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", default="",
                    help="comma list: reaction,converge,converge_faults (the faulty run alone),memory,admin,scale")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--scale-trials", type=int, default=40)
    ap.add_argument("--resyncs", type=int, default=20)
    args = ap.parse_args()
    harness.BUILD = os.path.abspath(args.build)
    for b in ("ivs-autoscaler", "ivs-autoscalerctl"):
        if not os.access(os.path.join(harness.BUILD, b), os.X_OK):
            print(f"bench: {harness.BUILD}/{b} not found; run make first", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    only = set(filter(None, args.only.split(",")))
    want = lambda k: not only or k in only  # noqa: E731
    started = time.monotonic()
    info(f"machine: {machine()}")
    try:
        if want("reaction"):
            bench_reaction(args.trials)
        if want("converge"):
            bench_converge(0.0, steady=True)
        if want("converge") or want("converge_faults"):
            bench_converge(0.10, steady=False)
        if want("memory"):
            bench_memory(args.resyncs)
        if want("admin"):
            bench_admin(10, 100)
        if want("scale"):
            bench_scale(args.scale_trials)
    except Stop as e:
        print(f"\nbench: {e}, stopped", flush=True)
        return 130
    print()
    print(f"{'figure':<24} {'value':>10} {'unit':<6} {'bound':>8} {'ratio':>7}  note")
    for name, value, unit, bound, ratio, note in RESULTS:
        print(f"{name:<24} {value:>10.4g} {unit:<6} {bound:>8.4g} {ratio:>7.3f}  {note}")
    print(f"\nmachine: {machine()}; run took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
