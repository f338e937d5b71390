"""Shared machinery for the integration tests: a real redis-server, the local IVS simulator and
the real daemon and CLI binaries, each on loopback ports chosen at run time.

Everything started here is stopped by the fixture that started it, even when a test fails.
Waiting is always "until a condition holds, within a deadline" (wait_until), never a fixed sleep.
"""
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("IVS_BUILD", os.path.join(ROOT, "build"))
SIM = os.path.join(ROOT, "tests", "ivs-sim", "ivs-sim")
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else "python3"
ACCESS_KEY = "AKIDSIMULATOR"
SECRET_KEY = "simulator-secret-key"
ACCOUNT = "123456789012"
REGION = "us-east-1"


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def stop_and_check_sanitizers(daemons):
    """Stop every daemon, then fail on any sanitizer report in its log (ASan builds)."""
    for d in daemons:
        d.stop()
    for d in daemons:
        text = d.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, f"sanitizer report in {d.stderr_path}:\n{text[-4000:]}"


def wait_until(predicate, timeout=20.0, interval=0.02, what="condition"):
    """Poll predicate() until it returns a truthy value; return that value or raise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    """What every test redis-server shares: PING until it answers, stop. A subclass sets
    self.proc and defines cmd() (plain or TLS; ssl.SSLError is an OSError)."""

    def _ping(self):
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Redis(RedisProcess):
    """A private redis-server on a free loopback port; restartable on the same port."""

    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._ping(), 10, what="redis-server to answer PING")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def cmd(self, *args):
        """One command over RESP; returns str / int / list / None; raises on -ERR."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _read_resp(f)


def _read_resp(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(f) for _ in range(n)]
    raise OSError(f"bad RESP line {line!r}")


class Sim:
    """The local IVS Real-time simulator (tests/ivs-sim/ivs-sim) on a free loopback port."""

    def __init__(self, tmpdir, tps=50, extra=()):
        self.log = os.path.join(tmpdir, "sim-requests.jsonl")
        self.proc = subprocess.Popen(
            [PYTHON, SIM, "--listen", "127.0.0.1:0", "--region", REGION, "--account", ACCOUNT,
             "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--tps", str(tps),
             "--log", self.log, *extra],
            stdout=subprocess.PIPE, stderr=open(os.path.join(tmpdir, "sim.stderr"), "wb"))
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.endpoint = line[len("listening on "):]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def call(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return json.loads(raw) if raw else {}

    # control plane shortcuts
    def create_stage(self, stage_id=None, name=None, tags=None):
        body = {}
        if stage_id:
            body["id"] = stage_id
        if name:
            body["name"] = name
        if tags is not None:
            body["tags"] = tags
        return self.call("POST", "/_sim/stages", body)["arn"]

    def add_host(self, stage_arn, publish=True, user_id="broadcaster-1"):
        return self.call("POST", "/_sim/participants",
                         {"stageArn": stage_arn, "userId": user_id, "publish": publish})

    def publish(self, stage_arn, pid, published=True):
        self.call("POST", "/_sim/participants/publish",
                  {"stageArn": stage_arn, "participantId": pid, "published": published})

    def disconnect(self, stage_arn, pid):
        self.call("POST", "/_sim/participants/disconnect", {"stageArn": stage_arn, "participantId": pid})

    def reconnect(self, stage_arn, pid):
        self.call("POST", "/_sim/participants/reconnect", {"stageArn": stage_arn, "participantId": pid})

    def advance(self, seconds):
        return self.call("POST", "/_sim/clock", {"advanceSeconds": seconds})

    def faults(self, **kw):
        return self.call("POST", "/_sim/faults", kw)

    def state(self):
        return self.call("GET", "/_sim/state")

    def counters(self):
        return self.call("GET", "/_sim/counters")

    def calls(self, op):
        return self.counters().get("operations", {}).get(op, {}).get("calls", 0)

    def delete_stage(self, arn):
        self.call("POST", "/_sim/stages/delete", {"arn": arn})

    def stages(self):
        return self.state().get("stages", [])


def yaml_quote(v):
    return json.dumps(v)


class Daemon:
    """The real ivs-autoscaler binary with a generated config."""

    def __init__(self, tmpdir, redis, sim, fleets, prefix="ivs:test:", resync="2s", extra_args=(),
                 env=None, reconcile_extra=None, control_extra=None, redis_extra=()):
        self.tmpdir = tmpdir
        self.socket = os.path.join(tmpdir, "control.sock")
        self.config = os.path.join(tmpdir, "config.yaml")
        self.prefix = prefix
        self.stderr_path = os.path.join(tmpdir, f"daemon-{time.monotonic_ns()}.log")
        lines = [
            "aws:",
            f"  region: {REGION}",
            f"  endpoint: {yaml_quote(sim.endpoint)}",
            "  max_tps: 20",
            "  timeout: 5s",
            "redis:",
            f"  url: {yaml_quote(redis.url)}",
            f"  key_prefix: {yaml_quote(prefix)}",
            *[f"  {line}" for line in redis_extra],   # raw YAML lines under redis:
            "control:",
            f"  socket: {yaml_quote(self.socket)}",
        ]
        for k, v in (control_extra or {}).items():
            lines.append(f"  {k}: {yaml_quote(v)}")
        lines += ["reconcile:", f"  resync_interval: {resync}", "  backoff_initial: 200ms",
                  "  backoff_max: 2s", "  stop_timeout: 5s"]
        for k, v in (reconcile_extra or {}).items():
            lines.append(f"  {k}: {yaml_quote(v)}")
        lines.append("fleets:")
        for f in fleets:
            lines.append(f"  - name: {f['name']}")
            for k, v in f.items():
                if k == "name":
                    continue
                if isinstance(v, dict):
                    lines.append(f"    {k}:")
                    for kk, vv in v.items():
                        lines.append(f"      {kk}: {yaml_quote(vv)}")
                else:
                    lines.append(f"    {k}: {yaml_quote(v) if isinstance(v, str) else v}")
        with open(self.config, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("AWS_") or k in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS"):
                del self.env[k]
        self.env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                         "AWS_EC2_METADATA_DISABLED": "true", "HOME": tmpdir})
        self.env.update(env or {})
        self.extra_args = list(extra_args)
        self.proc = None

    def argv(self, *more):
        # IVS_DAEMON_WRAPPER (e.g. "valgrind --tool=massif") runs the daemon under a tool.
        wrapper = shlex.split(os.environ.get("IVS_DAEMON_WRAPPER", ""))
        return [*wrapper, os.path.join(BUILD, "ivs-autoscaler"), "-c", self.config,
                *self.extra_args, *more]

    def start(self, *more):
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.argv(*more), env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr)
        return self

    def run(self, *more, timeout=60):
        """Run to completion (e.g. --once, --dry-run); return (exit code, log text)."""
        with open(self.stderr_path, "ab") as err:
            rc = subprocess.call(self.argv(*more), env=self.env, stdout=err, stderr=err, timeout=timeout)
        return rc, self.log()

    def wait_ready(self, timeout=20):
        wait_until(lambda: self.proc.poll() is None and self.ctl_ok("status"), timeout,
                   what="daemon admin socket")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.stderr.close()
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        with open(self.stderr_path, "rb") as fh:
            return fh.read().decode(errors="replace")

    def ctl(self, *args, json_mode=False, user=None, timeout=15):
        argv = [os.path.join(BUILD, "ivs-autoscalerctl"), "-s", self.socket]
        if json_mode:
            argv.append("-j")
        argv += list(args)
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user if user != 'nobody' else 'nogroup'}",
                    "--clear-groups"] + argv
        p = subprocess.run(argv, capture_output=True, timeout=timeout, env=self.env)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def ctl_ok(self, *args):
        try:
            return self.ctl(*args)[0] == 0
        except subprocess.TimeoutExpired:
            return False

    def ctl_json(self, *args):
        rc, out, err = self.ctl(*args, json_mode=True)
        if not out.strip():
            raise AssertionError(f"no JSON reply from ctl {args}: rc={rc} stderr={err}")
        return json.loads(out)

    def status(self):
        return self.ctl_json("status")["data"]

    def passes(self):
        """Completed reconcile passes so far (from the status command)."""
        try:
            return self.status().get("passes", 0)
        except (AssertionError, ValueError, subprocess.TimeoutExpired):
            return -1

    def wait_passes(self, n_more=1, timeout=30):
        start = self.passes()
        return wait_until(lambda: self.passes() >= start + n_more, timeout,
                          what=f"{n_more} more reconcile pass(es)")

    def reconcile_now(self):
        rc, out, err = self.ctl("reconcile")
        assert rc == 0, out + err


def make_tmpdir():
    return tempfile.mkdtemp(prefix="ivs-it-")


class LineTail:
    """The complete lines appended to a file since the previous call (a partial last line waits
    for its newline). Used to follow the simulator's request log and the daemon's log."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def new_lines(self):
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return data[:end].decode(errors="replace").splitlines()


# ---- helpers shared by the scenario tests ----------------------------------------------------

def start_daemon(daemons, tmpdir, redis, sim, fleets, prefix="ivs:test:", aws_timeout=None, **kw):
    """A daemon for fleets, registered in daemons (stopped by the fixture), READY. aws_timeout
    replaces the configuration's aws timeout; the other keywords go to Daemon."""
    d = Daemon(tmpdir, redis, sim, fleets, prefix=prefix, **kw)
    if aws_timeout is not None:
        with open(d.config) as fh:
            text = fh.read()
        assert "  timeout: 5s\n" in text
        with open(d.config, "w") as fh:
            fh.write(text.replace("  timeout: 5s\n", f"  timeout: {aws_timeout}\n", 1))
    daemons.append(d)
    d.start()
    d.wait_ready()
    return d


def viewers_key(arn, prefix="ivs:test:"):
    return f"{prefix}stage:{arn}:viewers"


def set_viewers(redis, arn, n, prefix="ivs:test:"):
    """The viewer count of stage arn as the application keeps it (no key: nobody watches)."""
    redis.cmd("DEL", viewers_key(arn, prefix))
    if n:
        redis.cmd("SET", viewers_key(arn, prefix), n)


def owned_stages(sim, fleet=None):
    """The stages carrying our tags (of fleet, when given), in the simulator's order."""
    return [s for s in sim.stages()
            if s.get("tags", {}).get("ivs-autoscaler:managed") == "true"
            and (fleet is None or s.get("tags", {}).get("ivs-autoscaler:fleet") == fleet)]


def owned(sim, fleet=None):
    """The ARNs of owned_stages(sim, fleet)."""
    return [s["arn"] for s in owned_stages(sim, fleet)]
