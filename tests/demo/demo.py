#!/usr/bin/env python3
"""make demo: the daemon's main job, live, against the local IVS simulator and a private Redis.

Starts a private redis-server and the simulator on free loopback ports, writes a config derived
from etc/demo.yaml with the real ports, starts the daemon, creates the origin stage with one
publishing host, then plays an audience: viewers ramp 0 -> 25,000 -> 0 while the fleet grows and
drains back to the origin alone.

How far it grows: 25,000 / (10,000 x 0.8) = 3.1 asks for 4 stages from scratch, but a gradual ramp
reaches 3 stages first, and 25,000 viewers on 3 stages is 0.83 utilisation, inside the policy's
+-10 % band around 0.8 (0.72..0.88), so the daemon rightly keeps 3. `--peak 27000` (0.9 on 3
stages) shows the fourth stage.

Viewers are written the way the application would: the audience is spread over the stages in
the fleet's open-stages ZSET (draining stages take no new viewers and lose theirs over time), and
each stage's count is a STRING integer in its viewers key.

Ctrl-C (or the end) stops everything this script started and removes its temp files.
"""
import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

DEFAULT_PEAK = 25000
ORIGIN_ID = "DemoOrigin1"
EVENT_IDS = {
    "2a4a6e061370454fbc9e0050446a8862": "stage created",
    "61178881a26e4f039e6e4b1a4f39d59a": "stage deleted",
    "79b3c88a74604fb7ac1d6d4509dda56f": "replication started",
    "17cc1937973c4d22a64a66c1b6d7e8e3": "replication stopped",
    "5e0ebdf858dc42cbbd3c64d6d8c5ea3e": "stage draining",
    "66651f9225b443d8bf8952371e4824a5": "scale decision",
    "6e56f458e5af48018f45d9d8c5ac8d2a": "quota capped",
}
MSGID = re.compile(r" MESSAGE_ID=([0-9a-f]{32})")
FIELD = re.compile(r' (IVS_[A-Z_]+)=("(?:[^"\\]|\\.)*"|\S+)')


class Stop(Exception):
    """SIGTERM/SIGINT: unwind through the finally blocks that stop what we started."""


def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Stop(signal.Signals(signum).name)


def demo_config(path, endpoint, redis_url, socket_path, scale):
    """etc/demo.yaml with the real endpoint, Redis URL and socket; durations scaled for --duration."""
    with open(path) as fh:
        text = fh.read()
    subs = {
        "endpoint": json.dumps(endpoint),
        "url": json.dumps(redis_url),
        "socket": json.dumps(socket_path),
        "resync_interval": f"{max(1, round(5 * scale))}s",
        "scale_down_delay": f"{max(2, round(30 * scale))}s",
        "drain_timeout": f"{max(4, round(60 * scale))}s",
        "drain_min": f"{max(1, round(10 * scale))}s",
    }
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\s*)(endpoint|url|socket|resync_interval|scale_down_delay|drain_timeout|drain_min):", line)
        if m:
            line = f"{m.group(1)}{m.group(2)}: {subs[m.group(2)]}"
        out.append(line)
    return "\n".join(out) + "\n"


def viewers_at(t, duration, peak):
    """Audience over time: up for 40 % of the run, hold 20 %, down 40 %, then zero."""
    x = t / duration
    if x < 0.4:
        return int(peak * x / 0.4)
    if x < 0.6:
        return peak
    if x < 1.0:
        return int(peak * (1.0 - x) / 0.4)
    return 0


class Audience:
    """Writes per-stage viewer counts as the application would."""

    def __init__(self, redis, prefix, fleet, origin):
        self.redis = redis
        self.prefix = prefix
        self.zset = f"{prefix}autoscaler:fleet:{fleet}:stages"
        self.origin = origin
        self.counts = {}          # arn -> viewers we last wrote

    def key(self, arn):
        return f"{self.prefix}stage:{arn}:viewers"

    def update(self, total, known_stages):
        open_stages = self.redis.cmd("ZRANGE", self.zset, 0, -1) or [self.origin]
        # Stages that left the open set drain: their viewers leave over a few seconds.
        for arn in list(self.counts):
            if arn not in open_stages:
                if arn in known_stages:
                    self.counts[arn] = self.counts[arn] // 2
                else:
                    del self.counts[arn]
                    self.redis.cmd("DEL", self.key(arn))
        draining = sum(v for a, v in self.counts.items() if a not in open_stages)
        share = max(0, total - draining)
        per, extra = divmod(share, len(open_stages))
        for i, arn in enumerate(sorted(open_stages)):
            self.counts[arn] = per + (1 if i < extra else 0)
        for arn, n in self.counts.items():
            self.redis.cmd("SET", self.key(arn), str(n))
        return open_stages


class EventTail:
    """New daemon log lines that carry one of the MESSAGE_IDs operators filter on."""

    def __init__(self, path, t0):
        self.tail = harness.LineTail(path)
        self.t0 = t0
        self.events = []

    def poll(self):
        new = []
        for raw in self.tail.new_lines():
            m = MSGID.search(raw)
            if not m or m.group(1) not in EVENT_IDS:
                continue
            fields = FIELD.findall(raw[m.end():])
            detail = " ".join(f"{k[4:].lower()}={short(v.strip(chr(34)))}" for k, v in fields)
            if m.group(1) == "66651f9225b443d8bf8952371e4824a5":     # the decision says why
                detail = raw[raw.find(">") + 1:m.start()][:90]
            ev = f"+{time.monotonic() - self.t0:5.1f}s  {EVENT_IDS[m.group(1)]:<19} {detail}"
            new.append(ev)
        self.events += new
        return new


def short(v):
    return v.rsplit("/", 1)[-1] if v.startswith("arn:") else v


def render(t, duration, total, status, stages, events):
    f = (status.get("fleets") or [{}])[0]
    lines = [
        f"ivs-autoscaler demo  t={t:5.1f}s / {duration:.0f}s   audience={total:,} viewers   "
        f"passes={status.get('passes', '?')}",
        f"fleet {f.get('name', '?')}: desired={f.get('desired', '?')} serving={f.get('serving', '?')} "
        f"draining={f.get('draining', '?')} hosts={f.get('hosts', '?')} "
        f"replications={f.get('replications_active', '?')}/{f.get('replications_expected', '?')} "
        f"decision={f.get('decision', '')}",
        "",
        f"  {'stage':<14} {'role':<8} {'viewers':>8}  {'draining':<8}  replication",
    ]
    for s in stages:
        reps = ",".join(r["state"] for r in s.get("replication", [])) or "-"
        v = s.get("viewers")
        lines.append(f"  {short(s['arn']):<14} {s['role']:<8} {('?' if v is None else v):>8}  "
                     f"{('yes' if s.get('draining') else ''):<8}  {reps}")
    lines += ["", "actions (daemon log, newest last):"]
    lines += ["  " + e for e in events[-10:]] or ["  (none yet)"]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build directory with ivs-autoscaler")
    ap.add_argument("--duration", type=float, default=120.0,
                    help="seconds for the 0 -> 25,000 -> 0 ramp (default 120)")
    ap.add_argument("--peak", type=int, default=DEFAULT_PEAK,
                    help="audience at the top of the ramp (default 25,000)")
    ap.add_argument("--quiet", action="store_true",
                    help="no live table: print the actions and one line per fleet change")
    args = ap.parse_args()
    if args.duration < 10:
        ap.error("--duration must be at least 10 seconds")
    harness.BUILD = os.path.abspath(args.build)
    for binary in ("ivs-autoscaler", "ivs-autoscalerctl"):
        if not os.access(os.path.join(harness.BUILD, binary), os.X_OK):
            print(f"demo: {harness.BUILD}/{binary} not found; run make first", file=sys.stderr)
            return 2
    if shutil.which("redis-server") is None:
        print("demo: redis-server is not installed (make deps)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tty = sys.stdout.isatty() and not args.quiet
    scale = min(1.0, args.duration / 120.0)

    tmp = tempfile.mkdtemp(prefix="ivs-demo-")
    redis = sim = daemon = None
    peak = 0
    final = None
    rc = 1
    try:
        redis = harness.Redis(tmp)
        sim = harness.Sim(tmp, tps=5)
        origin = sim.create_stage(ORIGIN_ID, name="demo-origin")
        host = sim.add_host(origin, user_id="demo-host")
        prefix = "ivs:demo:"
        redis.cmd("SET", f"{prefix}publisher:info", json.dumps(
            {"participantId": host["participantId"], "stageArn": origin, "userId": "demo-host",
             "joinedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        daemon = harness.Daemon(tmp, redis, sim, [{"name": "main", "origin_stage_arn": origin}],
                                prefix=prefix)
        with open(daemon.config, "w") as fh:
            fh.write(demo_config(os.path.join(ROOT, "etc", "demo.yaml"), sim.endpoint, redis.url,
                                 daemon.socket, scale))
        daemon.start()
        daemon.wait_ready()
        print(f"demo: redis {redis.url}, simulator {sim.endpoint}, daemon pid {daemon.proc.pid}, "
              f"config {daemon.config}", flush=True)
        print(f"demo: host {host['participantId']} publishing in {short(origin)}; "
              f"ramp 0 -> {args.peak:,} -> 0 over {args.duration:.0f}s", flush=True)

        audience = Audience(redis, prefix, "main", origin)
        t0 = time.monotonic()
        tail = EventTail(daemon.stderr_path, t0)
        # After the ramp, wait for the drain to finish: scale_down_delay + drain per stage.
        deadline = args.duration + max(60.0, args.duration)
        last_summary = None
        last_snapshot = -10.0
        while True:
            t = time.monotonic() - t0
            if daemon.proc.poll() is not None:
                print(f"demo: the daemon exited with status {daemon.proc.returncode}", flush=True)
                break
            total = viewers_at(t, args.duration, args.peak)
            st = daemon.status()
            stages = daemon.ctl_json("stages")["data"]
            n = len(stages)
            audience.update(total, {s["arn"] for s in stages})
            peak = max(peak, n)
            new = tail.poll()
            if tty:
                sys.stdout.write("\033[H\033[2J" + render(t, args.duration, total, st, stages, tail.events)
                                 + "\n")
                sys.stdout.flush()
            elif args.quiet:
                for e in new:
                    print(e, flush=True)
                f = (st.get("fleets") or [{}])[0]
                summary = (n, f.get("draining"), f.get("replications_active"))
                if summary != last_summary:
                    print(f"+{t:5.1f}s  fleet: stages={n} draining={f.get('draining')} "
                          f"replications_active={f.get('replications_active')} audience={total}",
                          flush=True)
                    last_summary = summary
            elif t - last_snapshot >= 2.0:
                print(render(t, args.duration, total, st, stages, tail.events) + "\n", flush=True)
                last_snapshot = t
            if t >= args.duration and n == 1 and peak > 1:
                final = n
                rc = 0
                break
            if t >= deadline:
                final = n
                print(f"demo: the fleet did not drain back to 1 stage within {deadline:.0f}s", flush=True)
                break
            time.sleep(0.5)     # the refresh period of the display, not a synchronisation
    except Stop as e:
        print(f"\ndemo: {e}, stopping", flush=True)
        rc = 130
    finally:
        if daemon is not None and daemon.proc is not None:
            drc = daemon.stop()
            if drc not in (0, None):
                print(f"demo: daemon exit status {drc}", flush=True)
                rc = rc or 1
        if sim is not None:
            sim.stop()
        if redis is not None:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"DEMO RESULT peak_stages={peak} final_stages={final} status={'ok' if rc == 0 else 'failed'}",
          flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
