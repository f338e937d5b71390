"""Redis over TLS with ACL users (issue: Redis in production), against real redis-server
processes with certificates made by `openssl` for each test:

1. a TLS-only server, an ACL user, the default user off: the daemon scales a fleet up and down
   through it; the wake channel and keyspace notifications work over TLS;
2. each misconfiguration gives its clear error line (once, however often the daemon retries),
   no crash, no mutating IVS call, Redis shown down; fixing the config and SIGHUP recovers;
3. mutual TLS works with cert_file/key_file, and without them the error says so.
"""
import os
import signal
import types

import pytest

from harness import Daemon, stop_and_check_sanitizers, wait_until
from redis_servers import PASSWORD, Certs, PlainRedis, TlsRedis

PREFIX = "ivs:tls:"
MUTATING = {"CreateStage", "DeleteStage", "UpdateStage", "StartParticipantReplication",
            "StopParticipantReplication", "TagResource", "UntagResource"}


@pytest.fixture
def certs(tmpdir_path):
    return Certs(tmpdir_path)


@pytest.fixture
def servers():
    started = []
    yield started
    for s in started:
        s.stop()


@pytest.fixture(autouse=True)
def sanitizer_clean(tmpdir_path, sim, servers, daemons):
    yield
    stop_and_check_sanitizers(daemons)


def redis_lines(tmpdir, certs, password=PASSWORD, ca="ca.crt", tls=True, extra=()):
    lines = []
    if password is not None:
        path = os.path.join(tmpdir, "redis-password")
        with open(path, "w") as fh:
            fh.write(password + "\n")
        lines.append(f"password_file: {path}")
    if tls:
        lines += ["tls:", f"  ca_file: {certs.path(ca)}", *[f"  {x}" for x in extra]]
    return lines


def new_daemon(tmpdir, url, sim, fleets, lines, resync="2s"):
    return Daemon(tmpdir, types.SimpleNamespace(url=url), sim, fleets, prefix=PREFIX,
                  resync=resync, redis_extra=lines)


def fleet_with_host(sim):
    origin = sim.create_stage("TlsOrigin1", name="tls-origin")
    pid = sim.add_host(origin)["participantId"]
    return {"name": "main", "origin_stage_arn": origin, "viewers_per_stage": 100,
            "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s", "drain_min": "1s",
            "reconnect_window": "10s"}, origin, pid


def owned(sim):
    return sorted(s["arn"] for s in sim.stages()
                  if s.get("tags", {}).get("ivs-autoscaler:managed") == "true")


def active_replications(sim, origin):
    return sorted(r["destinationStageArn"] for r in sim.state().get("replications", [])
                  if r["sourceStageArn"] == origin and r["replicationState"] == "ACTIVE")


def mutating_calls(sim):
    ops = sim.counters().get("operations", {})
    return {op: c["calls"] for op, c in ops.items() if op in MUTATING and c["calls"]}


def error_lines(d, text):
    return [ln for ln in d.log().splitlines() if ln.startswith("<3>") and text in ln]


def converge(d, predicate, timeout=30, what="condition"):
    def step():
        if predicate():
            return True
        d.reconcile_now()
        return predicate()
    return wait_until(step, timeout, interval=0.2, what=what)


# ---- 1. scale up and down over TLS with an ACL user ------------------------------------------

def test_tls_acl_user_scales_up_and_down(tmpdir_path, certs, servers, sim, daemons):
    server = TlsRedis(tmpdir_path, certs)
    servers.append(server)
    server.cmd("CONFIG", "SET", "notify-keyspace-events", "K$s")
    fleet, origin, pid = fleet_with_host(sim)
    # The periodic resync is far away: only a wake-up can explain a pass.
    d = new_daemon(tmpdir_path, server.url, sim, [fleet], redis_lines(tmpdir_path, certs),
                   resync="600s")
    daemons.append(d)
    d.start()
    d.wait_ready()
    wait_until(lambda: d.status()["redis_connected"], 20, what="redis connected over TLS")
    wait_until(lambda: d.passes() >= 1 and not d.status()["pass_running"], 20,
               what="the start-up pass")
    assert f"redis command link up: localhost:{server.port} (TLS)" in d.log()
    assert owned(sim) == []
    # A keyspace notification over TLS wakes the daemon: scale up to two fed replicas.
    server.cmd("SET", f"{PREFIX}stage:{origin}:viewers", "250")
    wait_until(lambda: len(owned(sim)) == 2 and active_replications(sim, origin) == owned(sim),
               20, what="a keyspace-woken scale-up")
    # Its writes went through the ACL user over TLS.
    wait_until(lambda: sorted(server.cmd("ZRANGE", f"{PREFIX}autoscaler:fleet:main:stages",
                                         0, -1) or []) == sorted([origin, *owned(sim)]),
               10, what="the open-stages set written")
    # The wake channel over TLS: the daemon is subscribed (PUBLISH reaches one client).
    before = d.passes()
    assert server.cmd("PUBLISH", f"{PREFIX}autoscaler:wake", "now") == 1
    wait_until(lambda: d.passes() > before, 10, what="a pass woken by the wake channel")
    # Scale down: the audience fits on the origin; replicas drain (no viewers) and go.
    server.cmd("SET", f"{PREFIX}stage:{origin}:viewers", "50")
    converge(d, lambda: owned(sim) == [], what="the replicas drained and deleted")
    assert error_lines(d, "redis") == []


# ---- 2. misconfigurations --------------------------------------------------------------------

CASES = {
    # name: (what the daemon is given, the error text expected)
    "wrong CA": ("wrong_ca", "the server certificate is signed by an unknown CA"),
    "expired certificate": ("expired", "the server certificate has expired"),
    "name mismatch": ("mismatch", "certificate is for localhost, 127.0.0.1, not redis.example"),
    "plain server behind rediss://": ("plain", "plain-text server behind rediss://"),
    "TLS server behind redis://": ("tls_as_plain", "a TLS server behind redis://"),
    "wrong password": ("wrong_password", "WRONGPASS"),
    "no password": ("no_password", "NOAUTH"),
    "connection refused": ("refused", "connect: Connection refused (errno 111)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_misconfiguration_is_reported_and_fixed_by_reload(case, tmpdir_path, certs, servers,
                                                          sim, daemons):
    kind, expected = CASES[case]
    good = TlsRedis(tmpdir_path, certs)
    servers.append(good)
    fleet, origin, pid = fleet_with_host(sim)
    good.cmd("SET", f"{PREFIX}stage:{origin}:viewers", "250")
    lines = redis_lines(tmpdir_path, certs)
    url = good.url
    attempts = good.connections_received
    if kind == "wrong_ca":
        lines = redis_lines(tmpdir_path, certs, ca="other-ca.crt")
    elif kind == "expired":
        bad = TlsRedis(tmpdir_path, certs, cert="expired")
        servers.append(bad)
        url, attempts = bad.url, bad.connections_received
    elif kind == "mismatch":
        lines = redis_lines(tmpdir_path, certs, extra=["server_name: redis.example"])
    elif kind == "plain":
        bad = PlainRedis(tmpdir_path, "plain")
        servers.append(bad)
        url = f"rediss://127.0.0.1:{bad.port}/0"
        lines = redis_lines(tmpdir_path, certs, password=None)

        def attempts():
            info = bad.cmd("INFO", "stats")
            return int(info.split("total_connections_received:")[1].split()[0])
    elif kind == "tls_as_plain":
        url = good.url.replace("rediss://", "redis://")
        lines = redis_lines(tmpdir_path, certs, tls=False)
    elif kind == "wrong_password":
        lines = redis_lines(tmpdir_path, certs, password="not-the-password")
    elif kind == "no_password":
        url = f"rediss://localhost:{good.port}/0"
        lines = redis_lines(tmpdir_path, certs, password=None)
    elif kind == "refused":
        closed = PlainRedis(tmpdir_path, "closed")
        closed.stop()
        url = f"rediss://localhost:{closed.port}/0"
        attempts = None
    d = new_daemon(tmpdir_path, url, sim, [fleet], lines)
    daemons.append(d)
    d.start()
    d.wait_ready()
    wait_until(lambda: error_lines(d, expected), 20, what=f"the error line {expected!r}")
    if attempts is not None:
        # However often it retries, the cause is logged once.
        seen = attempts()
        wait_until(lambda: attempts() >= seen + 3, 20, what="three more connection attempts")
    assert len(error_lines(d, expected)) == 1, error_lines(d, "redis")
    assert d.proc.poll() is None
    assert d.status()["redis_connected"] is False
    assert mutating_calls(sim) == {}
    assert PASSWORD not in d.log() and "not-the-password" not in d.log()
    # Fix the configuration, reload: it connects and scales.
    new_daemon(tmpdir_path, good.url, sim, [fleet], redis_lines(tmpdir_path, certs))
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.status()["redis_connected"], 20, what="redis connected after reload")
    converge(d, lambda: len(owned(sim)) == 2, what="the scale-up after the fix")


# ---- 3. mutual TLS ---------------------------------------------------------------------------

def test_mutual_tls_needs_the_client_certificate(tmpdir_path, certs, servers, sim, daemons):
    server = TlsRedis(tmpdir_path, certs, client_auth=True)
    servers.append(server)
    fleet, origin, pid = fleet_with_host(sim)
    d = new_daemon(tmpdir_path, server.url, sim, [fleet], redis_lines(tmpdir_path, certs))
    daemons.append(d)
    d.start()
    d.wait_ready()
    wait_until(lambda: error_lines(d, "the server requires a client certificate (set "
                                      "redis.tls.cert_file and redis.tls.key_file)"),
               20, what="the missing client certificate reported")
    assert d.status()["redis_connected"] is False
    with_cert = redis_lines(tmpdir_path, certs, extra=[f"cert_file: {certs.path('client.crt')}",
                                                       f"key_file: {certs.path('client.key')}"])
    new_daemon(tmpdir_path, server.url, sim, [fleet], with_cert)
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.status()["redis_connected"], 20, what="connected with the certificate")
    server.cmd("SET", f"{PREFIX}stage:{origin}:viewers", "150")
    converge(d, lambda: len(owned(sim)) == 1, what="a scale-up over mutual TLS")
