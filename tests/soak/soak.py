#!/usr/bin/env python3
"""make soak: every fault at once against the real daemon, with the invariants checked all along.

  tests/soak/soak.py --build build [--seconds N] [--seed S] [--allow CATEGORY,...]

SOAK_SECONDS (default 600) and SOAK_SEED (default 1) are read from the environment when the
flags are absent. Loopback only: a private redis-server (with a password), the local IVS
simulator (tests/ivs-sim/, with a session token) and the real daemon, each on free ports.

The soak plays the application (it writes the viewer sets and the override key, following the
open-stages set) and the world (hosts, IVS faults, throttling, the virtual clock, out-of-band
stages, Redis outages, signals to the daemon), at moments drawn from one seeded generator. It
checks, all the time, from the simulator's request log and state:
  1. no DeleteStage of a stage that holds viewers (unless drain_timeout has passed since its
     drain mark or since it left the open set), of
     an origin, of a stage that is not this fleet's; no replication into a stage not this fleet's
  2. no DeleteStage while a replication into the stage is ACTIVE
  3. no host above 5 ACTIVE replications; no request with a bad signature or shape
  4. after a final quiet period every fleet converges within 60 s (stage count, every replica
     fed, no managed stage left over, Redis records matching IVS)
  5. the daemon never exits unless it was told to; no sanitizer report in its log
  6. no secret (AWS secret key, session token, Redis password) in any log
plus: no CreateStage sent twice (a blind retry of a create whose answer was lost).
Violations are counted per category; the exit status is 1 when a category that is not in
--allow has any. The figures are printed at the end (docs/reliability.md explains them).
"""
import argparse
import collections
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

PREFIX = "ivs:soak:"
REDIS_PASSWORD = "soak-redis-password-7Qx"
SESSION_TOKEN = "soak-session-token-Zr4"
C = 100                       # viewers_per_stage (target_utilization 1.0)
MAX_REPLICAS = 5
POLICY = {"viewers_per_stage": C, "target_utilization": 1.0, "min_replicas": 0,
          "max_replicas": MAX_REPLICAS, "scale_down_delay": "3s", "drain_timeout": "10s",
          "reconnect_window": "5s",
          "keys": {"publisher": "publisher:{fleet}:info", "desired_stages": "desired_stages:{fleet}"}}
DRAIN_TIMEOUT = 10.0
RECONNECT_WINDOW = 5
TICK = 0.25
CONVERGE_LIMIT = 60.0
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
BAD_SHAPE = ("ValidationException", "SerializationException", "UnknownOperationException")
FAULT_ERRORS = ("InternalServerException", "ServiceUnavailable", "ConnectionDropped", "Hung",
                "DroppedAfterCommit", "ThrottlingException")
CATEGORIES = ("delete-with-viewers", "delete-not-ours", "replicate-not-ours",
              "delete-while-replicating", "host-over-5", "bad-request", "no-convergence",
              "records-mismatch", "daemon-exit", "sanitizer", "secret-in-log", "create-retried")


def say(msg):
    print(f"soak: {msg}", flush=True)


# ---- a password-protected redis-server, restartable with or without its data ----------------

class Redis:
    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.port = harness.free_port()
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--requirepass", REDIS_PASSWORD],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness.wait_until(self.up, 10, what="redis-server to answer")

    def up(self):
        try:
            return self.cmd("PING") == "PONG"
        except (OSError, RuntimeError):
            return False

    def stop(self, keep_data):
        """Stop; with keep_data the dataset is saved and loaded again by start()."""
        if self.proc is None:
            return
        try:
            self.cmd("SHUTDOWN", "SAVE" if keep_data else "NOSAVE")
        except (OSError, RuntimeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if not keep_data:
            try:
                os.unlink(os.path.join(self.dir, "dump.rdb"))
            except FileNotFoundError:
                pass

    def cmd(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = b""
            for cmd in (("AUTH", REDIS_PASSWORD), args):
                out += b"*%d\r\n" % len(cmd)
                for a in cmd:
                    a = a if isinstance(a, bytes) else str(a).encode()
                    out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            harness._read_resp(f)
            return harness._read_resp(f)


# ---- the soak ---------------------------------------------------------------------------------

class Soak:
    def __init__(self, args, tmpdir):
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmpdir = tmpdir
        self.violations = collections.Counter()
        self.examples = {}
        self.figures = collections.Counter()
        self.redis = Redis(tmpdir)
        self.redis_up = True
        self.sim = harness.Sim(tmpdir, tps=0, extra=("--session-token", SESSION_TOKEN,
                                                     "--seed", str(args.seed)))
        self.fleets = []
        self.origins = {}
        self.hosts = {}          # fleet -> [participant id]
        self.host_state = {}     # participant id -> "up" | "unpublished" | "disconnected"
        self.audience = {}       # fleet -> total viewers wanted
        self.truth = {}          # stage arn -> viewers the application holds there
        self.open = {}           # fleet -> arns the application sends new viewers to
        self.not_open_since = {}  # arn -> when the application saw it leave the open set
        self.drain_mark = {}     # arn -> the daemon's drain mark (ms since the epoch) last seen
        self.override = {}       # fleet -> override value or None
        self.names_created = set()
        self.tail = None
        self.daemon = None
        self.expect_exit = False
        self.rewrite_at = None   # Redis came back empty: the application rewrites at this time

    # -- setup --
    def setup(self):
        specs = [("alpha", 1), ("beta", 1), ("gamma", 2)]
        for name, n_hosts in specs:
            arn = self.sim.create_stage(f"Origin{name.capitalize()}", name=f"{name}-origin")
            self.origins[name] = arn
            self.fleets.append(dict({"name": name, "origin_stage_arn": arn}, **POLICY))
            self.hosts[name] = []
            for i in range(n_hosts):
                pid = self.sim.add_host(arn, user_id=f"{name}-host-{i}")["participantId"]
                self.hosts[name].append(pid)
                self.host_state[pid] = "up"
            self.audience[name] = self.rng.choice((50, 150, 250))
            self.open[name] = [arn]
            self.override[name] = None
        # Stages that are not ours: untagged, tagged for a fleet we do not run, and another
        # fleet's origin tagged as if it were one of alpha's replicas.
        self.foreign_stages()
        tagged = {"ivs-autoscaler:managed": "true", "ivs-autoscaler:fleet": "alpha",
                  "ivs-autoscaler:created": "2020-01-01T00:00:00.000Z"}
        self.tag_origin(self.origins["gamma"], tagged)
        self.daemon = harness.Daemon(self.tmpdir, self.redis, self.sim, self.fleets, prefix=PREFIX,
                                     resync="1s", env={"AWS_SESSION_TOKEN": SESSION_TOKEN})
        self.tail = harness.LineTail(self.sim.log)
        self.write_viewers()
        self.daemon.start()
        self.daemon.wait_ready(30)

    def tag_origin(self, arn, tags):
        """Give an origin our tags out of band (the simulator's control plane has no tagging:
        recreate it with the same id, tags and hosts)."""
        st = next(s for s in self.sim.stages() if s["arn"] == arn)
        fleet = next(f for f, a in self.origins.items() if a == arn)
        self.sim.delete_stage(arn)
        new = self.sim.create_stage(st["id"], name=st["name"], tags=tags)
        assert new == arn
        hosts = []
        for i, _ in enumerate(self.hosts[fleet]):
            pid = self.sim.add_host(arn, user_id=f"{fleet}-host-{i}")["participantId"]
            hosts.append(pid)
            self.host_state[pid] = "up"
        self.hosts[fleet] = hosts

    def foreign_stages(self):
        self.sim.create_stage(name="untagged")
        self.sim.create_stage(name="other-fleet", tags={"ivs-autoscaler:managed": "true",
                                                        "ivs-autoscaler:fleet": "delta"})
        self.sim.create_stage(name="half-tagged", tags={"ivs-autoscaler:fleet": "alpha"})

    # -- helpers --
    def violation(self, cat, detail):
        self.violations[cat] += 1
        if cat not in self.examples:
            self.examples[cat] = detail
            say(f"VIOLATION {cat}: {detail}")

    def owned(self, state, fleet):
        return [s["arn"] for s in state["stages"]
                if s["tags"].get("ivs-autoscaler:managed") == "true"
                and s["tags"].get("ivs-autoscaler:fleet") == fleet
                and s["arn"] not in self.origins.values()]

    def rcmd(self, *args):
        if not self.redis_up:
            return None
        try:
            return self.redis.cmd(*args)
        except (OSError, RuntimeError):
            return None

    def viewers_key(self, arn):
        return f"{PREFIX}stage:{arn}:viewers"

    # -- the application --
    def write_viewers(self, state=None):
        """Follow the open-stages set, spread each fleet's audience over its open stages, let the
        viewers of the others leave; write the counts as viewer sets."""
        state = state or self.sim.state()
        live = {s["arn"] for s in state["stages"]}
        for arn in list(self.truth):
            if arn not in live:
                del self.truth[arn]
        for f in self.fleets:
            name, origin = f["name"], f["origin_stage_arn"]
            zset = self.rcmd("ZRANGE", f"{PREFIX}autoscaler:fleet:{name}:stages", 0, -1)
            if zset:
                self.open[name] = [a for a in zset if a in live]
            open_ = self.open[name] or [origin]
            if origin not in open_:
                open_ = [origin] + open_
            now = time.monotonic()
            for arn in self.owned(state, name) + [origin]:
                if arn in open_:
                    self.not_open_since.pop(arn, None)
                else:
                    self.not_open_since.setdefault(arn, now)
                    self.truth[arn] = self.truth.get(arn, 0) // 2
                mark = self.rcmd("GET", f"{PREFIX}stage:{arn}:draining")
                if mark is not None and mark.isdigit():
                    self.drain_mark[arn] = int(mark)
            share, extra = divmod(self.audience[name], len(open_))
            for i, arn in enumerate(open_):
                self.truth[arn] = share + (1 if i < extra else 0)
        if not self.redis_up:
            return
        for arn, n in self.truth.items():
            key = self.viewers_key(arn)
            have = self.rcmd("SCARD", key)
            if have == n:
                continue
            self.rcmd("DEL", key)
            if n:
                self.rcmd("SADD", key, *[f"v{i}" for i in range(n)])
        for name, v in self.override.items():
            if v is None:
                self.rcmd("DEL", f"{PREFIX}desired_stages:{name}")
            else:
                self.rcmd("SET", f"{PREFIX}desired_stages:{name}", v)

    def wake(self):
        self.rcmd("PUBLISH", f"{PREFIX}autoscaler:wake", "soak")

    # -- the checks --
    def check_log(self):
        for line in self.tail.new_lines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            op, d = e["operation"], e.get("detail") or {}
            if e["signatureOk"] is False or e["errorType"] in BAD_SHAPE:
                self.violation("bad-request", line)
            performed = e["status"] == 200 or e["errorType"] == "DroppedAfterCommit"
            if not performed:
                continue
            if op == "CreateStage":
                self.figures["creates"] += 1
                if d.get("name") in self.names_created:
                    self.violation("create-retried", line)
                self.names_created.add(d.get("name"))
            elif op == "DeleteStage":
                self.figures["deletes"] += 1
                self.check_delete(d, line)
            elif op == "StartParticipantReplication":
                fleet = d.get("tags", {}).get("ivs-autoscaler:fleet")
                if (d.get("tags", {}).get("ivs-autoscaler:managed") != "true"
                        or self.origins.get(fleet) != d.get("sourceStageArn")
                        or d.get("destinationStageArn") in self.origins.values()):
                    self.violation("replicate-not-ours", line)

    def check_delete(self, d, line):
        arn, tags = d.get("arn"), d.get("tags", {})
        fleet = tags.get("ivs-autoscaler:fleet")
        if (arn in self.origins.values() or tags.get("ivs-autoscaler:managed") != "true"
                or fleet not in self.origins):
            self.violation("delete-not-ours", line)
        if d.get("activeInto"):
            self.violation("delete-while-replicating", line)
        held = self.truth.get(arn, 0)
        # drain_timeout has passed: since the application saw the stage leave the open set, or
        # since the daemon's drain mark (the contract: the mark, stage:{arn}:draining).
        since = self.not_open_since.get(arn)
        drained_long = since is not None and time.monotonic() - since >= DRAIN_TIMEOUT - 1.0
        mark = self.drain_mark.get(arn)
        if mark is not None and time.time() * 1000 - mark >= DRAIN_TIMEOUT * 1000 - 500:
            drained_long = True
        if held > 0 and not drained_long:
            self.violation("delete-with-viewers", f"{held} viewers: {line}")

    def check_state(self, state):
        per_host = collections.Counter(r["participantId"] for r in state["replications"]
                                       if r["replicationState"] == "ACTIVE")
        for pid, n in per_host.items():
            if n > 5:
                self.violation("host-over-5", f"{pid}: {n} ACTIVE replications")

    def check_daemon(self):
        if self.daemon.proc is not None and self.daemon.proc.poll() is not None:
            rc = self.daemon.proc.returncode
            if not self.expect_exit:
                self.violation("daemon-exit", f"exit status {rc}")
            self.daemon.stop()
            self.start_daemon()

    def start_daemon(self):
        self.expect_exit = False
        self.daemon.start()

    # -- the chaos --
    def ev_audience(self):
        f = self.rng.choice(self.fleets)["name"]
        self.audience[f] = self.rng.choice((0, 30, 90, 160, 240, 330, 420, 520, 700))
        self.wake()
        self.figures["viewer changes"] += 1
        if self.rng.random() < 0.3:
            self.burst_kill_at = time.monotonic() + self.rng.uniform(0.05, 0.6)

    def ev_override(self):
        f = self.rng.choice(self.fleets)["name"]
        self.override[f] = self.rng.choice((None, None, 1, 3, 5, 6))
        self.figures["override changes"] += 1

    def ev_faults(self):
        on = self.rng.random() < 0.5
        self.sim.faults(failRate=0.3 if on else 0.0, hangSeconds=7,
                        dropAfterCommitRate=0.05 if on else 0.0)
        self.figures["fault toggles"] += 1

    def ev_throttle(self):
        self.sim.faults(tps=self.rng.choice((0, 0, 2, 5)))

    def ev_host(self):
        f = self.rng.choice(self.fleets)["name"]
        pid = self.rng.choice(self.hosts[f])
        origin = self.origins[f]
        st = self.host_state[pid]
        try:
            if st == "up":
                if self.rng.random() < 0.5:
                    self.sim.publish(origin, pid, False)
                    self.host_state[pid] = "unpublished"
                else:
                    self.sim.disconnect(origin, pid)
                    self.host_state[pid] = "disconnected"
                if self.rng.random() < 0.5:
                    self.sim.advance(RECONNECT_WINDOW + 1)
                    self.figures["clock moves"] += 1
            else:
                self.host_up(origin, pid)
        except OSError:
            pass
        self.figures["host changes"] += 1

    def host_up(self, origin, pid):
        st = self.host_state[pid]
        if st == "unpublished":
            self.sim.publish(origin, pid, True)
        elif st == "disconnected":
            self.sim.reconnect(origin, pid)
        self.host_state[pid] = "up"

    def ev_oob_delete(self):
        state = self.sim.state()
        mine = [a for f in self.fleets for a in self.owned(state, f["name"])]
        if mine:
            self.sim.delete_stage(self.rng.choice(mine))
            self.figures["out-of-band deletes"] += 1

    def ev_foreign(self):
        self.foreign_stages()

    def ev_redis_outage(self):
        keep = self.rng.random() < 0.5
        self.redis.stop(keep_data=keep)
        self.redis_up = False
        self.redis_back_at = time.monotonic() + self.rng.uniform(5, 20)
        self.redis_keep = keep
        self.figures["redis restarts"] += 1
        if not keep:
            self.figures["redis data losses"] += 1

    def redis_back(self):
        self.redis.start()
        self.redis_up = True
        self.redis_back_at = None
        if not self.redis_keep:
            # The application notices and writes its viewer sets again a little later.
            self.rewrite_at = time.monotonic() + self.rng.uniform(1, 4)
            self.app_blind = True

    def ev_kill(self):
        self.expect_exit = True
        self.daemon.kill()
        self.figures["kills"] += 1
        self.start_daemon()

    def ev_hup(self):
        if self.daemon.proc is not None and self.daemon.proc.poll() is None:
            self.daemon.proc.send_signal(signal.SIGHUP)
            self.figures["reloads"] += 1

    def ev_term(self):
        self.expect_exit = True
        rc = self.daemon.stop(signal.SIGTERM, timeout=30)
        if rc != 0:
            self.violation("daemon-exit", f"SIGTERM: exit status {rc}")
        self.figures["stops"] += 1
        self.start_daemon()

    # -- the run --
    def run(self):
        self.setup()
        rates = [  # events per minute
            (self.ev_audience, 30), (self.ev_override, 4), (self.ev_faults, 4),
            (self.ev_throttle, 4), (self.ev_host, 6), (self.ev_oob_delete, 2),
            (self.ev_foreign, 1), (self.ev_redis_outage, 1.5), (self.ev_kill, 3),
            (self.ev_hup, 1.5), (self.ev_term, 0.7)]
        start = time.monotonic()
        end = start + self.args.seconds
        nxt = {fn: start + self.rng.expovariate(rate / 60.0) for fn, rate in rates}
        # At least 30 kills per 10 minutes, whatever the draw: a kill every 20 s at the latest.
        last_kill = start
        self.burst_kill_at = None
        self.redis_back_at = None
        self.app_blind = False
        while time.monotonic() < end:
            now = time.monotonic()
            for fn, rate in rates:
                if now >= nxt[fn]:
                    if fn == self.ev_redis_outage and not self.redis_up:
                        nxt[fn] = now + 1
                        continue
                    fn()
                    nxt[fn] = time.monotonic() + self.rng.expovariate(rate / 60.0)
                    if fn == self.ev_kill:
                        last_kill = time.monotonic()
            if self.burst_kill_at is not None and now >= self.burst_kill_at:
                self.burst_kill_at = None
                self.ev_kill()
                self.figures["kills mid-burst"] += 1
                last_kill = time.monotonic()
            if now - last_kill >= 20:
                self.ev_kill()
                last_kill = time.monotonic()
            if self.redis_back_at is not None and now >= self.redis_back_at:
                self.redis_back()
            if self.rewrite_at is not None and now >= self.rewrite_at:
                self.rewrite_at = None
                self.app_blind = False
            self.tick()
            time.sleep(TICK)
        self.figures["seconds"] = round(time.monotonic() - start, 1)
        self.quiet()

    def tick(self):
        try:
            state = self.sim.state()
        except OSError:
            return
        self.check_log()
        self.check_state(state)
        self.check_daemon()
        if not self.app_blind:
            self.write_viewers(state)

    # -- the final quiet period and convergence --
    def quiet(self):
        say("quiet period: faults off, Redis up, hosts back, final audience")
        self.sim.faults(failRate=0.0, dropAfterCommitRate=0.0, tps=0)
        if not self.redis_up:
            self.redis_back()
        self.rewrite_at = None
        self.app_blind = False
        for f in self.fleets:
            name = f["name"]
            for pid in self.hosts[name]:
                try:
                    self.host_up(self.origins[name], pid)
                except OSError:
                    pass
        finals = {"alpha": 250, "beta": 450, "gamma": 150}
        for name in finals:
            self.audience[name] = finals[name]
            self.override[name] = None
        self.override["gamma"] = 4
        want = {n: 3 if n == "alpha" else 5 if n == "beta" else 4 for n in finals}
        self.check_daemon()
        self.wake()
        t0 = time.monotonic()
        converged = {}
        last_reason = {}
        while time.monotonic() - t0 < CONVERGE_LIMIT and len(converged) < len(self.fleets):
            state = self.sim.state()
            self.check_log()
            self.check_state(state)
            self.check_daemon()
            self.write_viewers(state)
            for f in self.fleets:
                name = f["name"]
                if name in converged:
                    continue
                reason = self.fleet_converged(state, name, want[name])
                last_reason[name] = reason
                if reason is None:
                    converged[name] = round(time.monotonic() - t0, 1)
            time.sleep(TICK)
        self.convergence = converged
        for f in self.fleets:
            name = f["name"]
            if name not in converged:
                reason = last_reason.get(name, "?")
                cat = "records-mismatch" if reason.startswith("redis") else "no-convergence"
                self.violation(cat, f"{name}: {reason}")

    def fleet_converged(self, state, name, want_stages):
        """None when converged, else what is missing."""
        origin = self.origins[name]
        owned = sorted(self.owned(state, name))
        if len(owned) != want_stages - 1:
            return f"{len(owned)} replica stages, want {want_stages - 1}"
        for pid in self.hosts[name]:
            fed = sorted(r["destinationStageArn"] for r in state["replications"]
                         if r["sourceStageArn"] == origin and r["participantId"] == pid
                         and r["replicationState"] == "ACTIVE")
            if fed != owned:
                return f"host {pid} feeds {len(fed)} of {len(owned)}"
        zset = sorted(self.rcmd("ZRANGE", f"{PREFIX}autoscaler:fleet:{name}:stages", 0, -1) or [])
        if zset != sorted(owned + [origin]):
            return f"redis: open-stages set {len(zset)} entries, want {len(owned) + 1}"
        for arn in owned:
            for key in (f"stage:{arn}", f"replication:{arn}"):
                if not self.rcmd("EXISTS", PREFIX + key):
                    return f"redis: {key} missing"
            if self.rcmd("EXISTS", f"{PREFIX}stage:{arn}:draining"):
                return f"redis: {arn} still marked draining"
        return self.stale_records(state, name)

    def stale_records(self, state, name):
        """Records (stage:, replication:, draining markers) of this fleet's stages that IVS does
        not list any more."""
        live = {s["arn"] for s in state["stages"]}
        cursor = "0"
        while True:
            reply = self.rcmd("SCAN", cursor, "MATCH", PREFIX + "*", "COUNT", 500)
            if reply is None:
                return "redis: SCAN failed"
            cursor, keys = reply
            for k in keys:
                rest = k[len(PREFIX):]
                for head in ("stage:", "replication:"):
                    if not rest.startswith(head) or rest.endswith(":viewers"):
                        continue
                    arn = rest[len(head):]
                    for tail in (":draining", ":drained_by"):
                        if arn.endswith(tail):
                            arn = arn[:-len(tail)]
                    if arn in live:
                        continue
                    raw = self.rcmd("GET", k) if not rest.endswith(("draining", "drained_by")) else None
                    parent = None
                    if raw:
                        try:
                            rec = json.loads(raw)
                            parent = rec.get("parentStage") or rec.get("sourceStageArn")
                        except ValueError:
                            pass
                    if parent in (None, self.origins[name]):
                        return f"redis: {k} of a stage IVS does not list"
            if cursor == "0":
                return None

    # -- the end --
    def finish(self):
        self.expect_exit = True
        rc = self.daemon.stop(signal.SIGTERM, timeout=30)
        if rc not in (0, None):
            self.violation("daemon-exit", f"final SIGTERM: exit status {rc}")
        logs = [self.daemon.stderr_path, self.sim.log,
                os.path.join(self.tmpdir, "sim.stderr")]
        for path in logs:
            try:
                with open(path, "rb") as fh:
                    text = fh.read().decode(errors="replace")
            except FileNotFoundError:
                continue
            for secret in (harness.SECRET_KEY, SESSION_TOKEN, REDIS_PASSWORD):
                if secret in text:
                    self.violation("secret-in-log", f"{os.path.basename(path)} holds a secret")
            if path == self.daemon.stderr_path:
                for mark in SANITIZER_MARKS:
                    if mark in text:
                        self.violation("sanitizer", mark)
        counters = self.sim.counters()["operations"]
        self.sim.stop()
        self.redis.stop(keep_data=False)
        return counters

    def report(self, counters):
        fig = self.figures
        faults = sum(n for c in counters.values() for k, n in c["errors"].items() if k in FAULT_ERRORS)
        print()
        print(f"soak figures (seed {self.args.seed}, {platform.node()}, {platform.machine()}, "
              f"{os.cpu_count()} CPUs, python {platform.python_version()})")
        print(f"  seconds run          {fig['seconds']}")
        print(f"  daemon kills         {fig['kills']} (mid-burst {fig['kills mid-burst']}), "
              f"SIGTERM+restart {fig['stops']}, SIGHUP {fig['reloads']}")
        print(f"  redis restarts       {fig['redis restarts']} (data lost {fig['redis data losses']})")
        print(f"  IVS faults answered  {faults} (fault toggles {fig['fault toggles']})")
        print(f"  scale changes        {fig['creates']} stages created, {fig['deletes']} deleted")
        print(f"  world changes        viewers {fig['viewer changes']}, override {fig['override changes']}, "
              f"hosts {fig['host changes']}, clock moves {fig['clock moves']}, "
              f"out-of-band deletes {fig['out-of-band deletes']}")
        for f in self.fleets:
            t = self.convergence.get(f["name"])
            print(f"  convergence {f['name']:<8} {'%.1f s' % t if t is not None else 'NOT within 60 s'}")
        print("  calls per operation  " + ", ".join(
            f"{op} {c['calls']}" for op, c in sorted(counters.items())))
        total = sum(self.violations.values())
        print(f"  violations           {total}")
        for cat in CATEGORIES:
            if self.violations[cat]:
                allowed = " (known defect, allowed)" if cat in self.args.allow else ""
                print(f"    {cat:<26} {self.violations[cat]}{allowed}")
                print(f"      e.g. {self.examples[cat][:400]}")
        failing = [c for c in CATEGORIES if self.violations[c] and c not in self.args.allow]
        if failing:
            print("soak: FAILED: " + ", ".join(failing))
            return 1
        print("soak: ok" + (" (only allowed categories)" if total else ""))
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", 1)))
    ap.add_argument("--allow", default="", help="comma-separated violation categories that are "
                    "reported but do not fail the run")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    args = ap.parse_args()
    args.allow = {c for c in args.allow.split(",") if c}
    unknown = args.allow - set(CATEGORIES)
    if unknown:
        ap.error(f"unknown categories: {sorted(unknown)}")
    harness.BUILD = os.path.abspath(args.build)
    tmpdir = tempfile.mkdtemp(prefix="ivs-soak-")
    os.chmod(tmpdir, 0o755)
    soak = Soak(args, tmpdir)
    say(f"seed {args.seed}, {args.seconds:g} s, working directory {tmpdir}")
    rc = 1
    try:
        soak.run()
        counters = soak.finish()
        rc = soak.report(counters)
    finally:
        for stop in (lambda: soak.daemon and soak.daemon.proc and soak.daemon.kill(),
                     soak.sim.stop, lambda: soak.redis.stop(keep_data=False)):
            try:
                stop()
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        if not args.keep and rc == 0:
            shutil.rmtree(tmpdir, ignore_errors=True)
        elif not args.keep:
            say(f"logs kept in {tmpdir}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
