"""Structured journald fields in a real journal (issue 7).

The daemon runs with stderr connected to journald's stream socket exactly as systemd connects a
service (the stream protocol header, then JOURNAL_STREAM=dev:ino of that socket), so log.c sends
every event with sd_journal_send(). The entries are read back with `journalctl -o json` and
checked for MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, MESSAGE_ID and the IVS_* fields, and the
operator recipes (`journalctl MESSAGE_ID=...`, `IVS_FLEET=...`) are run as written.

Where no journal socket exists (a container without systemd) and the test runs as root, it
starts /lib/systemd/systemd-journald itself — journald runs without systemd as PID 1 and creates
/run/systemd/journal/ and a runtime journal under /run/log/journal/ — and stops it at the end,
removing what it created. It skips, saying why, only when journald cannot be had."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from harness import ROOT, Daemon, wait_until

JOURNALD = "/lib/systemd/systemd-journald"
JOURNAL_DIR = "/run/systemd/journal"
JOURNAL_SOCKET = JOURNAL_DIR + "/socket"
STDOUT_SOCKET = JOURNAL_DIR + "/stdout"
RUNTIME_JOURNAL = "/run/log/journal"
PREFIX = "ivs:test:"


def message_ids():
    """MESSAGE_IDs as log.h defines them, so the test follows the header."""
    with open(os.path.join(ROOT, "common", "log.h")) as fh:
        return dict(re.findall(r'#define MSGID_(\w+)\s+"([0-9a-f]{32})"', fh.read()))


MSGID = message_ids()


def _journald_answers():
    if not os.path.exists(JOURNAL_SOCKET) or not os.path.exists(STDOUT_SOCKET):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(STDOUT_SOCKET)
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def journald(tmp_path_factory):
    """A journald to log to: the host's, or one started here (and stopped again)."""
    if _journald_answers():
        yield None
        return
    if os.geteuid() != 0:
        pytest.skip(f"no journald at {JOURNAL_SOCKET} and not root, so none can be started")
    if not os.access(JOURNALD, os.X_OK) or shutil.which("journalctl") is None:
        pytest.skip(f"{JOURNALD} or journalctl is not installed")
    created = [p for p in (JOURNAL_DIR, RUNTIME_JOURNAL) if not os.path.exists(p)]
    log_path = tmp_path_factory.mktemp("journald") / "journald.log"
    log = open(log_path, "wb")
    env = dict(os.environ, SYSTEMD_LOG_TARGET="console", SYSTEMD_LOG_LEVEL="info")
    proc = subprocess.Popen([JOURNALD], stdout=log, stderr=log, env=env,
                            stdin=subprocess.DEVNULL)

    def cleanup():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        for p in created:
            shutil.rmtree(p, ignore_errors=True)

    try:
        wait_until(lambda: proc.poll() is not None or _journald_answers(), 15,
                   what="systemd-journald to open its sockets")
    except AssertionError:
        cleanup()
        raise
    if proc.poll() is not None:
        cleanup()
        pytest.skip(f"systemd-journald exited with {proc.returncode}: "
                    + log_path.read_text(errors="replace")[-500:])
    yield proc
    cleanup()


def journal_stream(identifier):
    """A stream connection to journald as systemd gives a service for stderr: the header is
    identifier, unit, priority, level_prefix, forward to syslog, kmsg, console."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(STDOUT_SOCKET)
    s.sendall(f"{identifier}\n\n6\n1\n0\n0\n0\n".encode())
    s.shutdown(socket.SHUT_RD)
    st = os.fstat(s.fileno())
    return s, f"{st.st_dev}:{st.st_ino}"


def journal(*matches):
    p = subprocess.run(["journalctl", "--no-pager", "-o", "json", *matches],
                       capture_output=True, timeout=30)
    assert p.returncode in (0, 1), p.stderr.decode(errors="replace")
    return [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]


def by_id(entries, name):
    return [e for e in entries if e.get("MESSAGE_ID") == MSGID[name]]


def test_events_carry_structured_fields_in_the_journal(journald, tmpdir_path, redis, sim, daemons):
    origin = sim.create_stage("OriginJournal1", name="journal-origin")
    host = sim.add_host(origin)
    redis.cmd("SET", f"{PREFIX}stage:{origin}:viewers", 150)     # 2 stages' worth: 1 replica
    d = Daemon(tmpdir_path, redis, sim, [{
        "name": "main", "origin_stage_arn": origin, "viewers_per_stage": 100,
        "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s", "drain_min": "0s",
        "reconnect_window": "10s"}], prefix=PREFIX)
    stream, dev_ino = journal_stream("ivs-autoscaler")
    d.env["JOURNAL_STREAM"] = dev_ino
    d.stderr = open(d.stderr_path, "ab")            # Daemon.stop() closes it
    try:
        d.proc = subprocess.Popen(d.argv(), env=d.env, stdout=subprocess.DEVNULL,
                                  stderr=stream.fileno())
    finally:
        stream.close()                              # the daemon holds its own copy
    daemons.append(d)
    d.wait_ready()
    pid = str(d.proc.pid)

    def mine():
        return journal(f"_PID={pid}")

    wait_until(lambda: by_id(mine(), "REPLICATION_STARTED"), 30,
               what="a replication-started entry in the journal")
    entries = mine()
    assert entries, "nothing from the daemon in the journal"
    for e in entries:
        # Native protocol (sd_journal_send), not text lines on the stream.
        assert e["_TRANSPORT"] == "journal", e
        assert e["SYSLOG_IDENTIFIER"] == "ivs-autoscaler", e
        assert e["MESSAGE"] and not e["MESSAGE"].startswith("<"), e
        assert e["PRIORITY"] in "01234567" and len(e["PRIORITY"]) == 1, e

    (started,) = by_id(entries, "STARTED")
    assert started["PRIORITY"] == "5"
    assert started["MESSAGE"].startswith("ivs-autoscaler ") and "1 fleets" in started["MESSAGE"]

    replicas = [s["arn"] for s in sim.stages()
                if s.get("tags", {}).get("ivs-autoscaler:fleet") == "main"]
    assert len(replicas) == 1
    (created,) = by_id(entries, "STAGE_CREATED")
    assert created["PRIORITY"] == "5"
    assert created["IVS_FLEET"] == "main"
    assert created["IVS_STAGE_ARN"] == replicas[0]
    assert created["IVS_OPERATION"] == "CreateStage"
    assert replicas[0] in created["MESSAGE"]

    (repl,) = by_id(entries, "REPLICATION_STARTED")
    assert repl["PRIORITY"] == "6"
    assert repl["IVS_FLEET"] == "main"
    assert repl["IVS_STAGE_ARN"] == replicas[0]
    assert repl["IVS_PARTICIPANT_ID"] == host["participantId"]
    assert repl["IVS_OPERATION"] == "StartParticipantReplication"

    (decision,) = by_id(entries, "SCALE_DECISION")[:1]
    assert decision["IVS_FLEET"] == "main"

    # The operator recipes from the docs, as written.
    got = journal(f"_PID={pid}", f"MESSAGE_ID={MSGID['STAGE_CREATED']}")
    assert [e["IVS_STAGE_ARN"] for e in got] == replicas
    got = journal(f"_PID={pid}", "IVS_FLEET=main")
    assert {e["MESSAGE_ID"] for e in got} >= {MSGID["STAGE_CREATED"],
                                              MSGID["REPLICATION_STARTED"]}
    assert journal(f"_PID={pid}", "IVS_FLEET=other") == []

    # The audit trail: one entry per mutating command, saying how it ended.
    assert d.ctl("pause", "main")[0] == 0
    bogus = "arn:aws:ivs:us-east-1:123456789012:stage/NotOurs1"
    rc, _, err = d.ctl("drain", bogus)
    assert rc == 1 and err.startswith("error: "), err
    assert d.ctl("resume", "main")[0] == 0
    wait_until(lambda: len(by_id(mine(), "ADMIN_COMMAND")) >= 3, 10, what="three audit entries")
    audit = {e["ADMIN_COMMAND"]: e for e in by_id(mine(), "ADMIN_COMMAND")}
    for line in ("pause main", "resume main"):
        assert audit[line]["ADMIN_RESULT"] == "succeeded", audit[line]
        assert audit[line]["PRIORITY"] == "5"
        assert "ADMIN_ERROR" not in audit[line]
        assert audit[line]["ADMIN_UID"] == str(os.geteuid())
    failed = audit[f"drain {bogus}"]
    assert failed["ADMIN_RESULT"] == "failed" and failed["PRIORITY"] == "4", failed
    assert failed["ADMIN_ERROR"] == err[len("error: "):].strip()
    got = journal(f"_PID={pid}", f"MESSAGE_ID={MSGID['ADMIN_COMMAND']}", "ADMIN_RESULT=failed")
    assert [e["ADMIN_COMMAND"] for e in got] == [f"drain {bogus}"]

    # A reload is an event too; the stop is logged before exit 0.
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: by_id(mine(), "CONFIG_RELOADED"), 20, what="a config-reloaded entry")
    assert d.stop() == 0
    wait_until(lambda: any(e["MESSAGE"] == "stopping (SIGTERM)" and e["PRIORITY"] == "6"
                           for e in mine()), 10, what="the stop in the journal")
    # Nothing went to the plain stderr stream (that would mean a lost structured entry).
    assert journal(f"_PID={pid}", "_TRANSPORT=stdout") == []
