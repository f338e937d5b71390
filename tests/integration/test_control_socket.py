"""Admin socket and ivs-autoscalerctl, driven through tests/tools/control-harness.

The harness runs the real socket server (controller/control.c) with fake commands; the real
ivs-autoscalerctl binary talks to it. The build directory is $IVS_BUILD (default "build").
"""
import grp
import json
import os
import pwd
import select
import shutil
import socket
import stat
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("IVS_BUILD", "build"))
HARNESS = os.path.join(BUILD, "tests", "control-harness")
CTL = os.path.join(BUILD, "ivs-autoscalerctl")
DEADLINE = 10.0

pytestmark = pytest.mark.skipif(
    not (os.access(HARNESS, os.X_OK) and os.access(CTL, os.X_OK)),
    reason=f"{HARNESS} or {CTL} not built (run `make tests`)")


# ---- fixtures and helpers (kept local to this module) -----------------------------------

@pytest.fixture
def sockdir():
    # A short path under /tmp: AF_UNIX paths are limited to 107 bytes.
    d = tempfile.mkdtemp(prefix="ivsctl-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Harness:
    def __init__(self, path, *args):
        self.path = path
        self.proc = subprocess.Popen([HARNESS, "-s", path, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.log = None

    def wait_ready(self):
        """Wait for "ready" on stdout; returns False when the harness exited instead."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            r, _, _ = select.select([self.proc.stdout], [], [], end - time.monotonic())
            if r:
                line = self.proc.stdout.readline()
                if line == b"ready\n":
                    return True
                if line == b"":
                    self.proc.wait(timeout=DEADLINE)
                    return False
        raise AssertionError("harness did not become ready in time")

    def stop(self):
        """Stop the harness (idempotent) and return what it logged on stderr."""
        if self.log is not None:
            return self.log
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.log = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        return self.log


@pytest.fixture
def harness_factory():
    started = []

    def start(path, *args, expect_ready=True):
        h = Harness(path, *args)
        started.append(h)
        ready = h.wait_ready()
        assert ready == expect_ready, h.stop()
        return h

    yield start
    # A harness that started must also stop cleanly: exit 0 on SIGTERM, and under ASan/UBSan
    # (IVS_BUILD=build/asan) no leak or error report, which would change the exit status.
    for h in started:
        was_running = h.proc.poll() is None
        log = h.stop()
        if was_running or h.proc.returncode != 1:
            assert h.proc.returncode == 0, log
        assert "Sanitizer" not in log and "runtime error" not in log, log


@pytest.fixture
def harness(harness_factory, sockdir):
    return harness_factory(os.path.join(sockdir, "control.sock"), "-c", "256")


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # A blocking connect waits for room in the listen backlog; a non-blocking one would fail
    # with EAGAIN when many clients connect at once.
    s.connect(path)
    s.settimeout(DEADLINE)
    return s


def read_reply(s, json_mode=False, buf=None):
    """Read one reply: a line for JSON, up to the empty line for text. Returns (reply, rest)."""
    data = buf or b""
    end = time.monotonic() + DEADLINE
    while True:
        if json_mode and b"\n" in data:
            i = data.index(b"\n") + 1
            return data[:i], data[i:]
        if not json_mode:
            if data.startswith(b"\n"):
                return data[:1], data[1:]
            if b"\n\n" in data:
                i = data.index(b"\n\n") + 2
                return data[:i], data[i:]
        assert time.monotonic() < end, f"no complete reply, got {data[:200]!r}"
        chunk = s.recv(65536)
        if not chunk:
            return data, b""
        data += chunk


def ask(path, line, json_mode=None):
    if json_mode is None:
        json_mode = line.startswith("json ")
    with connect(path) as s:
        s.sendall(line.encode() + b"\n")
        reply, _ = read_reply(s, json_mode)
    return reply.decode()


def assert_text_reply(reply):
    assert reply.endswith("\n\n"), reply
    body = reply[:-2]
    assert "" not in body.split("\n"), f"empty line inside a reply: {reply!r}"
    return body.split("\n")


def ctl(path, *args, user=None, env=None):
    argv = [CTL, "-s", path, *args] if path is not None else [CTL, *args]
    if user is not None:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", *user, "--"] + argv
    full_env = dict(os.environ)
    full_env.pop("IVS_AUTOSCALER_SOCKET", None)
    full_env.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=full_env)


def need_root_and_setpriv():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running a client as nobody needs root and setpriv")
    try:
        pwd.getpwnam("nobody")
        grp.getgrnam("nogroup")
    except KeyError:
        pytest.skip("user nobody / group nogroup missing")


# ---- framing -------------------------------------------------------------------------------

def test_text_reply_ends_with_one_empty_line(harness):
    lines = assert_text_reply(ask(harness.path, "status"))
    assert lines[0] == "version  harness"


def test_text_reply_never_contains_empty_lines(harness):
    # The fake renderer emits empty lines; the server must drop them.
    assert ask(harness.path, "blank-lines") == "first\nsecond\n\n"


def test_text_error_framing(harness):
    assert ask(harness.path, "fail") == "error: the fake command failed\n\n"


@pytest.mark.parametrize("line,ok", [
    ("json status", True), ("json fleets", True), ("json fail", False),
    ("json nope", False), ("json", False), ("json replication start a", False),
    ("json blank-lines", True),
])
def test_json_reply_is_one_line(harness, line, ok):
    with connect(harness.path) as s:
        s.sendall(line.encode() + b"\n")
        reply, rest = read_reply(s, json_mode=True)
        assert rest == b""
    assert reply.count(b"\n") == 1 and reply.endswith(b"\n")
    obj = json.loads(reply)
    assert obj["ok"] is ok
    if ok:
        assert set(obj) == {"ok", "data"}
    else:
        assert set(obj) == {"ok", "error"} and obj["error"]


def test_json_data_shapes(harness):
    assert json.loads(ask(harness.path, "json fleets")) == {"ok": True, "data": ["main", "eu"]}
    obj = json.loads(ask(harness.path, "json echo a b"))
    assert obj["data"] == ["a", "b"]
    assert json.loads(ask(harness.path, "json blank-lines"))["data"] == "first\n\n\nsecond\n\n"


def test_several_commands_per_connection_answered_in_order(harness):
    with connect(harness.path) as s:
        s.sendall(b"echo one\njson echo two\n\n   \nfail\r\necho three\n")
        r1, rest = read_reply(s)
        r2, rest = read_reply(s, True, rest)
        r3, rest = read_reply(s, False, rest)
        r4, rest = read_reply(s, False, rest)
    assert r1 == b"one\n\n"
    assert json.loads(r2)["data"] == ["two"]
    assert r3 == b"error: the fake command failed\n\n"
    assert r4 == b"three\n\n"


def test_two_word_commands_longest_match(harness):
    obj = json.loads(ask(harness.path, "json replication status arn:aws:ivs:stage/x"))
    assert obj["data"]["args"] == ["arn:aws:ivs:stage/x"]
    assert ask(harness.path, "replication start a b") == \
        "error: usage: replication start SRC DST PARTICIPANT\n\n"
    assert ask(harness.path, "status extra") == "error: usage: status\n\n"


def test_unknown_command_gets_usage(harness):
    lines = assert_text_reply(ask(harness.path, "frobnicate now"))
    assert lines[0] == 'error: unknown command "frobnicate"'
    assert lines[1] == "usage:"
    assert "  replication start SRC DST PARTICIPANT  (admin)" in lines
    assert "  status" in lines
    obj = json.loads(ask(harness.path, "json frobnicate"))
    assert obj["ok"] is False and "usage:" in obj["error"] and "replication stop" in obj["error"]


# ---- hostile input -------------------------------------------------------------------------

@pytest.mark.parametrize("garbage", [
    b"sta\x00tus", b"\x01\x02\x03", b"status\x1b[2J", b"\xff\xfe", b"st\xc3(tus",
    b"\xed\xa0\x80", b"\xc0\xaf", b"status \x7f", b"json \xff",
])
def test_garbage_gets_error_and_connection_survives(harness, garbage):
    with connect(harness.path) as s:
        s.sendall(garbage + b"\nstatus\n")
        json_mode = garbage.startswith(b"json ")
        r1, rest = read_reply(s, json_mode)
        r2, _ = read_reply(s, False, rest)
    if json_mode:
        assert json.loads(r1) == {"ok": False, "error":
                                  "invalid command line: control characters or invalid UTF-8"}
    else:
        assert r1 == b"error: invalid command line: control characters or invalid UTF-8\n\n"
    assert r2.startswith(b"version  harness\n")


def test_utf8_arguments_are_accepted(harness):
    assert ask(harness.path, "echo flöte 日本") == "flöte\n日本\n\n"


def test_one_mebibyte_line_is_refused_and_closed(harness):
    with connect(harness.path) as s:
        try:
            s.sendall(b"x" * (1 << 20) + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass    # the server closed after reading the first 4 KiB; its reply is queued
        reply, _ = read_reply(s)
        assert reply == b"error: line too long\n\n"
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass    # closed with our unread bytes still queued: also a close
    assert_text_reply(ask(harness.path, "status"))


def test_long_json_line_gets_json_error(harness):
    with connect(harness.path) as s:
        try:
            s.sendall(b"json echo " + b"z" * 5000 + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply, _ = read_reply(s, True)
    assert json.loads(reply) == {"ok": False, "error": "line too long"}


def test_line_cap_boundary(harness):
    # 4095 bytes + newline is the largest line accepted.
    arg = "a" * (4096 - len("echo ") - 1)
    assert ask(harness.path, "echo " + arg) == arg + "\n\n"
    assert ask(harness.path, "echo " + arg + "b") == "error: line too long\n\n"


def test_too_many_words(harness):
    assert ask(harness.path, "echo" + " w" * 40) == \
        "error: too many words in the command line\n\n"


# ---- many, slow and stuck clients ----------------------------------------------------------

def test_two_hundred_concurrent_clients(harness):
    socks = [connect(harness.path) for _ in range(200)]
    try:
        for i, s in enumerate(socks):
            s.sendall(f"json echo {i}\n".encode())
        for i, s in enumerate(socks):
            reply, _ = read_reply(s, True)
            assert json.loads(reply)["data"] == [str(i)]
        status = json.loads(ask(harness.path, "json status"))
        assert status["data"]["clients"] == 201
    finally:
        for s in socks:
            s.close()


def test_too_many_clients(harness_factory, sockdir):
    h = harness_factory(os.path.join(sockdir, "c.sock"), "-c", "2")
    a, b = connect(h.path), connect(h.path)
    try:
        # Make sure both are accepted before the third arrives.
        for s in (a, b):
            s.sendall(b"fleets\n")
            read_reply(s)
        with connect(h.path) as c:
            reply, _ = read_reply(c)
            assert reply == b"error: too many clients\n\n"
        r = ctl(h.path, "status")
        assert r.returncode == 1 and r.stderr == "error: too many clients\n"
        r = ctl(h.path, "-j", "status")
        assert r.returncode == 1 and r.stderr == "error: too many clients\n"
    finally:
        a.close()
        b.close()


def test_client_that_never_reads_does_not_stall_others(harness):
    with connect(harness.path) as stuck:
        # ~1 MB reply, far more than the socket buffer: the server must keep it pending.
        stuck.sendall(b"big 1000000\n")
        for _ in range(3):
            assert_text_reply(ask(harness.path, "status"))
        # More input from the stuck client is not read while its reply is pending.
        stuck.sendall(b"status\n")
        assert_text_reply(ask(harness.path, "status"))
        # Once it reads, it gets its whole reply and then the next one.
        reply, rest = read_reply(stuck)
        # The text ends with a newline already, so exactly one more ends the reply.
        assert len(reply) == 1000001 and reply.index(b"\n\n") == 999999
        r2, _ = read_reply(stuck, False, rest)
        assert r2.startswith(b"version  harness\n")


def test_out_of_descriptors_pauses_accepting_and_recovers(harness_factory, sockdir):
    # With 16 descriptors the harness can hold only a few clients; the rest wait in the
    # backlog while accept() fails with EMFILE, and are served as earlier clients leave.
    h = harness_factory(os.path.join(sockdir, "fd.sock"), "-n", "16", "-c", "256")
    socks = {connect(h.path): i for i in range(30)}
    for s, i in socks.items():
        s.sendall(f"json echo {i}\n".encode())
    pending = dict(socks)
    end = time.monotonic() + DEADLINE
    while pending:
        assert time.monotonic() < end, f"{len(pending)} clients never answered"
        ready, _, _ = select.select(list(pending), [], [], end - time.monotonic())
        for s in ready:
            reply, _ = read_reply(s, True)
            assert json.loads(reply)["data"] == [str(pending.pop(s))]
            s.close()
    assert "out of file descriptors" in h.stop()


def test_reply_larger_than_output_cap(harness):
    assert ask(harness.path, "big 2000000") == "error: reply too large\n\n"


def test_dripping_client_does_not_stall_others(harness):
    with connect(harness.path) as drip:
        for b in b"stat":
            drip.sendall(bytes([b]))
            assert_text_reply(ask(harness.path, "status"))
        drip.sendall(b"us\n")
        reply, _ = read_reply(drip)
        assert reply.startswith(b"version  harness\n")


def test_client_disconnecting_mid_reply(harness):
    for _ in range(5):
        s = connect(harness.path)
        s.sendall(b"big 900000\n")
        s.recv(10)
        s.close()
    assert_text_reply(ask(harness.path, "status"))


def test_idle_client_is_closed(harness_factory, sockdir):
    h = harness_factory(os.path.join(sockdir, "i.sock"), "-i", "200")
    with connect(h.path) as s:
        s.sendall(b"sta")           # an unfinished line does not keep it alive forever
        assert s.recv(10) == b""    # EOF within the socket timeout (DEADLINE)


# ---- socket bring-up -----------------------------------------------------------------------

def test_socket_mode_is_0660(harness):
    st = os.lstat(harness.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_socket_removed_on_exit(harness_factory, sockdir):
    path = os.path.join(sockdir, "gone.sock")
    h = harness_factory(path)
    assert os.path.exists(path)
    h.stop()
    assert not os.path.exists(path)


def test_refuses_to_start_when_live_instance_answers(harness, harness_factory):
    second = harness_factory(harness.path, expect_ready=False)
    assert second.proc.returncode == 1
    assert "another ivs-autoscaler answers on " + harness.path in second.stop()
    # The first one still works: its socket was not stolen.
    assert_text_reply(ask(harness.path, "status"))


def test_socket_from_systemd_is_used_and_left_in_place(sockdir):
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate not installed")
    path = os.path.join(sockdir, "activated.sock")
    # systemd-socket-activate binds path and execs the harness (same pid) on the first
    # connection, passing the listening socket as fd 3. -s names a path that must stay unused.
    unused = os.path.join(sockdir, "unused.sock")
    proc = subprocess.Popen([activate, "-l", path, HARNESS, "-a", "-s", unused],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + DEADLINE
        while not os.path.exists(path):
            assert time.monotonic() < end and proc.poll() is None, "socket never appeared"
            select.select([], [], [], 0.01)
        assert ask(path, "echo activated") == "activated\n\n"
        assert ask(path, "json fleets") == '{"ok":true,"data":["main","eu"]}\n'
        assert not os.path.exists(unused)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert "using the admin socket passed by systemd" in err.decode()
    assert os.path.exists(path), "the socket from systemd must never be unlinked"


def test_stale_socket_is_replaced(harness_factory, sockdir):
    path = os.path.join(sockdir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                       # leaves the node behind with nobody listening
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    h = harness_factory(path)
    assert_text_reply(ask(h.path, "status"))


def test_refuses_non_socket_file(harness_factory, sockdir):
    path = os.path.join(sockdir, "file")
    with open(path, "w") as f:
        f.write("keep me\n")
    h = harness_factory(path, expect_ready=False)
    assert h.proc.returncode == 1
    assert "is not a socket" in h.stop()
    with open(path) as f:
        assert f.read() == "keep me\n"


# ---- authorisation -------------------------------------------------------------------------

MUTATING = [["pause"], ["pause", "main"], ["reconcile"],
            ["replication", "start", "a", "b", "c"], ["replication", "stop", "a", "b", "c"]]
READ_ONLY = [["status"], ["fleets"], ["replication", "status", "arn"], ["metrics"]]


@pytest.fixture
def open_harness(harness_factory, sockdir):
    return harness_factory(os.path.join(sockdir, "open.sock"), "-m", "666", "-v")


@pytest.mark.parametrize("argv", MUTATING)
def test_non_admin_is_denied_mutating_commands(open_harness, argv):
    need_root_and_setpriv()
    r = ctl(open_harness.path, *argv, user=["--clear-groups"])
    assert r.returncode == 1, r
    assert r.stderr == "error: permission denied\n"
    r = ctl(open_harness.path, "-j", *argv, user=["--clear-groups"])
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"ok": False, "error": "permission denied"}


@pytest.mark.parametrize("argv", READ_ONLY)
def test_non_admin_gets_read_only_commands(open_harness, argv):
    need_root_and_setpriv()
    r = ctl(open_harness.path, *argv, user=["--clear-groups"])
    assert r.returncode == 0, r
    assert r.stdout


def test_mutating_commands_are_logged_allowed_or_denied(open_harness):
    need_root_and_setpriv()
    assert ctl(open_harness.path, "pause", "main").returncode == 0
    assert ctl(open_harness.path, "pause", "eu", user=["--clear-groups"]).returncode == 1
    assert ctl(open_harness.path, "status").returncode == 0
    log = open_harness.stop()
    allowed = [l for l in log.splitlines() if 'admin command "pause main"' in l]
    denied = [l for l in log.splitlines() if 'admin command "pause eu"' in l]
    assert len(allowed) == 1 and "ADMIN_UID=0 " in allowed[0] and "ADMIN_RESULT=succeeded" in allowed[0]
    assert "MESSAGE_ID=b587123efcfe42e980c4ee6999e01969" in allowed[0]
    assert len(denied) == 1 and "ADMIN_UID=65534" in denied[0] and "ADMIN_RESULT=denied" in denied[0]
    assert "ADMIN_PID=" in denied[0]
    assert "status" not in "".join(l for l in log.splitlines() if "admin command" in l)


def test_admin_group_member_may_mutate(harness_factory, sockdir):
    need_root_and_setpriv()
    try:
        group = grp.getgrnam("users")
    except KeyError:
        pytest.skip("group users missing")
    h = harness_factory(os.path.join(sockdir, "g.sock"), "-m", "666", "-g", "users")
    assert os.stat(h.path).st_gid == group.gr_gid     # the socket belongs to the admin group
    r = ctl(h.path, "pause", user=[f"--groups={group.gr_gid}"])
    assert r.returncode == 0, r
    r = ctl(h.path, "pause", user=["--clear-groups"])
    assert r.returncode == 1 and "permission denied" in r.stderr


def test_missing_admin_group_warns_and_admits_nobody_extra(harness_factory, sockdir):
    need_root_and_setpriv()
    h = harness_factory(os.path.join(sockdir, "n.sock"), "-m", "666", "-g", "no-such-group-xyz")
    r = ctl(h.path, "pause", user=["--clear-groups"])
    assert r.returncode == 1 and "permission denied" in r.stderr
    assert 'admin group "no-such-group-xyz" does not exist' in h.stop()


# ---- ivs-autoscalerctl ---------------------------------------------------------------------

def test_ctl_ok_text_and_json(harness):
    r = ctl(harness.path, "status")
    assert r.returncode == 0 and r.stdout == "version  harness\nclients  1\n"
    r = ctl(harness.path, "--json", "fleets")
    assert r.returncode == 0 and r.stdout == '{"ok":true,"data":["main","eu"]}\n'
    r = ctl(None, "-j", "replication", "status", "arn:x",
            env={"IVS_AUTOSCALER_SOCKET": harness.path})
    assert r.returncode == 0 and json.loads(r.stdout)["data"]["args"] == ["arn:x"]
    r = ctl(None, "--socket", harness.path, "echo", "a", "b")
    assert r.returncode == 0 and r.stdout == "a\nb\n"


def test_ctl_daemon_error_exit_1(harness):
    r = ctl(harness.path, "fail")
    assert r.returncode == 1 and r.stderr == "error: the fake command failed\n" and r.stdout == ""
    r = ctl(harness.path, "nope")
    assert r.returncode == 1 and r.stderr.startswith('error: unknown command "nope"\nusage:\n')
    r = ctl(harness.path, "-j", "nope")
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False


@pytest.mark.parametrize("args", [[], ["-x", "status"], ["echo", "two words"], ["echo", ""],
                                  ["echo", "a\nb"], ["-t", "0", "status"],
                                  ["echo", "y" * 5000]])
def test_ctl_usage_errors_exit_2(harness, args):
    r = ctl(harness.path, *args)
    assert r.returncode == 2, r
    assert r.stderr


def test_ctl_help_and_version():
    r = ctl(None, "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: ivs-autoscalerctl")
    r = ctl(None, "--version")
    assert r.returncode == 0 and r.stdout.startswith("ivs-autoscalerctl ")


def test_ctl_cannot_connect_missing_socket(sockdir):
    path = os.path.join(sockdir, "missing.sock")
    r = ctl(path, "status")
    assert r.returncode == 3
    assert path in r.stderr and "is ivs-autoscaler running?" in r.stderr


def test_ctl_cannot_connect_stale_socket(sockdir):
    path = os.path.join(sockdir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    r = ctl(path, "status")
    assert r.returncode == 3
    assert path in r.stderr and "not running (stale socket)" in r.stderr


def test_ctl_cannot_connect_permission(harness):
    need_root_and_setpriv()
    r = ctl(harness.path, "status", user=["--clear-groups"])   # socket is 0660 root:root
    assert r.returncode == 3
    assert harness.path in r.stderr and "are you in the admin group?" in r.stderr


def test_ctl_reply_timeout(sockdir):
    path = os.path.join(sockdir, "silent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)       # accepts (in the backlog) but never answers
    try:
        r = ctl(path, "-t", "1", "status")
        assert r.returncode == 3
        assert "no reply from " + path in r.stderr
    finally:
        srv.close()


def test_ctl_connection_closed_early(sockdir):
    path = os.path.join(sockdir, "rude.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        p = subprocess.Popen([CTL, "-s", path, "status"], stderr=subprocess.PIPE, text=True)
        conn, _ = srv.accept()
        conn.sendall(b"half a rep")
        conn.close()
        _, err = p.communicate(timeout=30)
        assert p.returncode == 3 and "closed the connection" in err
    finally:
        srv.close()


# ---- metrics -------------------------------------------------------------------------------

def test_metrics_pass_promtool(harness):
    r = ctl(harness.path, "metrics")
    assert r.returncode == 0
    assert "# TYPE ivs_autoscaler_reconcile_duration_seconds histogram\n" in r.stdout
    assert 'ivs_autoscaler_desired_stages{fleet="eu \\"west\\""} 0\n' in r.stdout
    assert r.stdout.endswith("\n")
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; `make deps`)")
    check = subprocess.run([promtool, "check", "metrics"], input=r.stdout, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
