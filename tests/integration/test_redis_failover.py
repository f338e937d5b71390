"""Redis failover (issue: Redis in production), against real redis-server processes:

4. Sentinel: a master, a replica and three sentinels (plain, and all TLS-only with rediss://);
   SENTINEL FAILOVER during a scale-up: the daemon writes to the new master within 5 s, the keys
   it wrote are there, and nothing was drained or deleted while it reconnected;
5. the master is turned into a replica (REPLICAOF): the daemon sees -READONLY, reconnects and
   goes on once it can write again;
and a cluster-mode endpoint (-MOVED) is refused with an error that says what to use instead.
"""
import socket
import threading
import time

import pytest

from harness import wait_until
from redis_servers import Certs, PlainRedis, SentinelSet
# servers and sanitizer_clean (autouse) are test_redis_tls's fixtures, shared by importing them.
from test_redis_tls import (PREFIX, active_replications, converge, fleet_with_host,  # noqa: F401
                            new_daemon, owned, sanitizer_clean, servers)


def viewers_key(arn):
    return f"{PREFIX}stage:{arn}:viewers"


def open_stages(server):
    return sorted(server.cmd("ZRANGE", f"{PREFIX}autoscaler:fleet:main:stages", 0, -1) or [])


def stage_keys_present(server, arns):
    return all(server.cmd("EXISTS", f"{PREFIX}stage:{arn}") == 1 for arn in arns)


@pytest.mark.parametrize("tls", [False, True], ids=["redis", "rediss"])
def test_sentinel_failover_during_scale_up(tls, tmpdir_path, servers, sim, daemons):
    # With TLS, the data nodes and the sentinels are TLS-only; the sentinels report the
    # master as 127.0.0.1, which the server certificate carries as an IP SAN.
    certs = Certs(tmpdir_path) if tls else None
    ss = SentinelSet(tmpdir_path, certs)
    servers.append(ss)
    fleet, origin, pid = fleet_with_host(sim)
    # Keyspace events on both (CONFIG SET is not replicated): the SET on the new master below
    # can only wake the daemon if its subscriber link followed the master.
    for server in (ss.master, ss.replica):
        server.cmd("CONFIG", "SET", "notify-keyspace-events", "K$s")
    ss.master.cmd("SET", viewers_key(origin), "150")
    lines = ["sentinel:", f"  master_name: {ss.MASTER_NAME}",
             "  addresses: [" + ", ".join(f'"{a}"' for a in ss.addresses) + "]"]
    url = "redis://127.0.0.1:1/0"    # host:port unused with sentinels (nothing listens there)
    if tls:
        url = "rediss://127.0.0.1:1/0"
        lines += ["tls:", f"  ca_file: {certs.path('ca.crt')}"]
    d = new_daemon(tmpdir_path, url, sim, [fleet], lines, resync="600s")
    daemons.append(d)
    d.start()
    d.wait_ready()
    converge(d, lambda: len(owned(sim)) == 1 and active_replications(sim, origin) == owned(sim),
             what="one fed replica through the sentinels' master")
    assert f"redis command link up: 127.0.0.1:{ss.master.port}{' (TLS)' if tls else ''}" in d.log()
    # A scale-up begins, and the master fails over in the middle of it.
    ss.master.cmd("SET", viewers_key(origin), "350")   # 4 stages: 3 replicas
    assert ss.master.cmd("WAIT", "1", "5000") == 1          # the replica has it too
    d.reconcile_now()
    ss.sentinel_cmd(0, "SENTINEL", "FAILOVER", ss.MASTER_NAME)
    wait_until(lambda: ss.master_port() == ss.replica.port and ss.replica.role() == "master",
               30, what="the sentinels to promote the replica")
    new = ss.replica
    # More demand, written on the new master: only its keyspace event can start the pass (the
    # resync is far away), and the daemon must write the new stage there.
    new.cmd("SET", viewers_key(origin), "450")   # 5 stages: 4 replicas
    switched = time.monotonic()
    wait_until(lambda: len(owned(sim)) == 4 and stage_keys_present(new, owned(sim))
               and open_stages(new) == sorted([origin, *owned(sim)]),
               5, interval=0.05, what="the daemon's writes on the new master within 5 s")
    assert time.monotonic() - switched < 5
    assert f"redis command link up: 127.0.0.1:{new.port}{' (TLS)' if tls else ''}" in d.log()
    # Nothing drained or deleted while it reconnected.
    assert sim.calls("DeleteStage") == 0 and sim.calls("StopParticipantReplication") == 0
    assert all(new.cmd("EXISTS", f"{PREFIX}stage:{arn}:draining") == 0 for arn in owned(sim))
    assert d.status()["redis_connected"] is True


def test_replicaof_gives_readonly_and_a_reconnect(tmpdir_path, servers, sim, daemons):
    a = PlainRedis(tmpdir_path, "a")
    b = PlainRedis(tmpdir_path, "b")
    servers.extend([a, b])
    fleet, origin, pid = fleet_with_host(sim)
    a.cmd("SET", viewers_key(origin), "150")
    d = new_daemon(tmpdir_path, a.url, sim, [fleet], [])
    daemons.append(d)
    d.start()
    d.wait_ready()
    converge(d, lambda: len(owned(sim)) == 1, what="one replica")
    # a becomes a replica of b, whose data (more demand) it takes over.
    b.cmd("SET", viewers_key(origin), "250")
    a.cmd("REPLICAOF", "127.0.0.1", str(b.port))
    wait_until(lambda: a.role() == "slave" and a.cmd("GET", viewers_key(origin)) == "250", 20,
               what="a to replicate b")
    ups_before = d.log().count("redis command link up")
    d.reconcile_now()   # the scale-up writes to a: -READONLY
    wait_until(lambda: "answered READONLY: it is a replica now; reconnecting" in d.log(), 20,
               what="the READONLY reply noticed")
    wait_until(lambda: d.log().count("redis command link up") > ups_before, 20,
               what="a reconnect after READONLY")
    assert d.proc.poll() is None
    # a is writable again (as the endpoint's new primary would be): the daemon goes on.
    a.cmd("REPLICAOF", "NO", "ONE")
    converge(d, lambda: len(owned(sim)) == 2 and stage_keys_present(a, owned(sim)),
             what="the scale-up written once the server accepts writes")
    assert sim.calls("DeleteStage") == 0


class FakeClusterNode:
    """A stand-in for a cluster-mode-enabled node: the handshake and subscriptions succeed,
    every data command is answered with -MOVED (as a node that does not own the slot)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.data_commands = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line.startswith(b"*"):
                    return
                args = []
                for _ in range(int(line[1:])):
                    n = int(f.readline()[1:])
                    args.append(f.read(n + 2)[:-2].decode())
                cmd = args[0].upper()
                if cmd in ("AUTH", "SELECT", "PING"):
                    conn.sendall(b"+OK\r\n")
                elif cmd in ("SUBSCRIBE", "PSUBSCRIBE"):
                    kind, ch = cmd.lower().encode(), args[1].encode()
                    conn.sendall(b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:1\r\n"
                                 % (len(kind), kind, len(ch), ch))
                else:
                    self.data_commands += 1
                    conn.sendall(b"-MOVED 3999 127.0.0.1:7001\r\n")
        except (OSError, ValueError):
            return
        finally:
            conn.close()

    def stop(self):
        self.sock.close()


def test_cluster_mode_endpoint_is_refused_clearly(tmpdir_path, servers, sim, daemons):
    node = FakeClusterNode()
    servers.append(node)
    fleet, origin, pid = fleet_with_host(sim)
    d = new_daemon(tmpdir_path, f"redis://127.0.0.1:{node.port}/0", sim, [fleet], [])
    daemons.append(d)
    d.start()
    d.wait_ready()
    expected = "cluster mode is not supported: use a cluster-mode-disabled endpoint"
    wait_until(lambda: any(ln.startswith("<3>") and expected in ln for ln in d.log().splitlines()),
               20, what="the cluster-mode error line")
    assert node.data_commands >= 1
    assert d.proc.poll() is None
    assert sim.calls("CreateStage") == 0 and sim.calls("DeleteStage") == 0
