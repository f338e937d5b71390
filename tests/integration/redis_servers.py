"""Redis servers beyond the plain one in harness.py: certificates made with the `openssl` CLI, a
TLS-only redis-server (optionally with ACL users and client certificates), and a Sentinel set
(a master, a replica, three sentinels). Everything listens on free loopback ports and is stopped
by whoever started it. Used by test_redis_tls.py, test_redis_failover.py and the benchmark."""
import os
import socket
import ssl
import subprocess

from harness import RedisProcess, _read_resp, free_port, wait_until

USER = "autoscaler"
PASSWORD = "s3cret-acl-password"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def resp_call(port, certs, args):
    """One command to 127.0.0.1:port (over TLS, verified against certs' CA, when certs)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        s = raw
        if certs is not None:
            s = ssl.create_default_context(cafile=certs.path("ca.crt")).wrap_socket(
                raw, server_hostname="127.0.0.1")
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        return _read_resp(s.makefile("rb"))


class Certs:
    """A test CA, another CA nobody trusts, a server certificate for localhost and 127.0.0.1,
    an expired one for the same names, and a client certificate; all PEM files in dir."""

    def __init__(self, tmpdir):
        self.dir = os.path.join(tmpdir, "pki")
        os.makedirs(self.dir, exist_ok=True)
        self._ca("ca")
        self._ca("other-ca")
        self._leaf("server", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        self._leaf("client", "extendedKeyUsage=clientAuth")
        self._expired("expired", "DNS:localhost,IP:127.0.0.1")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key_req(self, name, cn, *extra):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-subj", f"/CN={cn}", *extra, cwd=self.dir)

    def _ca(self, name):
        self._key_req(name, f"test {name}", "-x509", "-days", "2", "-out", f"{name}.crt",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _leaf(self, name, ext):
        self._key_req(name, name, "-out", f"{name}.csr")
        with open(self.path(f"{name}.ext"), "w") as fh:
            fh.write(f"basicConstraints=CA:FALSE\n{ext}\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile",
                 f"{name}.ext", cwd=self.dir)

    def _expired(self, name, san):
        """`openssl x509` cannot back-date; `openssl ca` takes explicit start and end dates."""
        self._key_req(name, name, "-out", f"{name}.csr")
        db = os.path.join(self.dir, "ca-db")
        os.makedirs(db, exist_ok=True)
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w") as fh:
            fh.write("1000\n")
        with open(self.path("ca.cnf"), "w") as fh:
            fh.write(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {db}/index.txt\n"
                     f"new_certs_dir = {db}\nserial = {db}/serial\ndefault_md = sha256\n"
                     "policy = p\n[p]\ncommonName = supplied\n"
                     f"[ext]\nbasicConstraints = CA:FALSE\nsubjectAltName = {san}\n")
        _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key",
                 "-in", f"{name}.csr", "-out", f"{name}.crt", "-notext", "-extensions", "ext",
                 "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=self.dir)


class TlsRedis(RedisProcess):
    """A TLS-only redis-server (--port 0): an ACL user with a password, the default user off.
    cert picks the server certificate ("server" or "expired"); client_auth asks for client
    certificates. cmd() talks to it over TLS as the ACL user (with the client certificate)."""

    def __init__(self, tmpdir, certs, cert="server", client_auth=False, acl=True):
        self.dir = tmpdir
        self.certs = certs
        self.cert = cert
        self.client_auth = client_auth
        self.acl = acl
        self.port = free_port()
        self.proc = None
        self.start()

    def argv(self):
        c = self.certs
        argv = ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--tls-cert-file", c.path(f"{self.cert}.crt"),
                "--tls-key-file", c.path(f"{self.cert}.key"),
                "--tls-ca-cert-file", c.path("ca.crt"),
                "--tls-auth-clients", "yes" if self.client_auth else "no"]
        if self.acl:
            argv += ["--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all",
                     "--user", "default", "off"]
        return argv

    def start(self):
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(self._ping, 10, what="the TLS redis-server to answer PING")

    @property
    def url(self):
        return f"rediss://{USER}@localhost:{self.port}/0" if self.acl else \
            f"rediss://localhost:{self.port}/0"

    def _context(self):
        ctx = ssl.create_default_context(cafile=self.certs.path("ca.crt"))
        if self.client_auth:
            ctx.load_cert_chain(self.certs.path("client.crt"), self.certs.path("client.key"))
        if self.cert == "expired":
            # Only the test's own admin link to the deliberately expired server.
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def cmd(self, *args):
        ctx = self._context()
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            f = s.makefile("rwb")
            cmds = ([("AUTH", USER, PASSWORD)] if self.acl else []) + [args]
            for c in cmds:
                out = b"*%d\r\n" % len(c)
                for a in c:
                    a = a if isinstance(a, bytes) else str(a).encode()
                    out += b"$%d\r\n%s\r\n" % (len(a), a)
                f.write(out)
            f.flush()
            if self.acl:
                _read_resp(f)
            return _read_resp(f)

    def connections_received(self):
        info = self.cmd("INFO", "stats")
        for line in info.splitlines():
            if line.startswith("total_connections_received:"):
                return int(line.split(":")[1])
        return 0


def tls_args(certs):
    """redis-server / sentinel options for TLS-only service and TLS replication."""
    return ["--tls-cert-file", certs.path("server.crt"), "--tls-key-file", certs.path("server.key"),
            "--tls-ca-cert-file", certs.path("ca.crt"), "--tls-auth-clients", "no",
            "--tls-replication", "yes"]


class PlainRedis(RedisProcess):
    """A redis-server on a free port, optionally a replica of another (for the Sentinel set
    and for REPLICAOF scenarios). Same cmd() shape as harness.Redis. With certs it is TLS-only
    (and replicates over TLS); cmd() then speaks TLS."""

    def __init__(self, tmpdir, name, replica_of=None, certs=None):
        self.dir = os.path.join(tmpdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.certs = certs
        if certs is None:
            argv = ["redis-server", "--port", str(self.port)]
        else:
            argv = ["redis-server", "--port", "0", "--tls-port", str(self.port), *tls_args(certs)]
        argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir]
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of.port)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._ping, 10, what=f"redis-server {name} to answer PING")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def cmd(self, *args):
        return resp_call(self.port, self.certs, args)

    def role(self):
        return self.cmd("ROLE")[0]


class SentinelSet:
    """A master, a replica and three sentinels watching them as MASTER_NAME."""

    MASTER_NAME = "autoscaler-master"

    def __init__(self, tmpdir, certs=None):
        self.certs = certs
        self.master = PlainRedis(tmpdir, "master", certs=certs)
        self.replica = PlainRedis(tmpdir, "replica", replica_of=self.master, certs=certs)
        self.sentinels = []
        for i in range(3):
            d = os.path.join(tmpdir, f"sentinel{i}")
            os.makedirs(d, exist_ok=True)
            port = free_port()
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as fh:
                if certs is None:
                    fh.write(f"port {port}\n")
                else:
                    args = tls_args(certs)
                    fh.write(f"port 0\ntls-port {port}\n" + "".join(
                        f"{args[i][2:]} {args[i + 1]}\n" for i in range(0, len(args), 2)))
                fh.write(f"bind 127.0.0.1\ndir {d}\n"
                         f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                         f"sentinel down-after-milliseconds {self.MASTER_NAME} 2000\n"
                         f"sentinel failover-timeout {self.MASTER_NAME} 10000\n")
            proc = subprocess.Popen(["redis-server", conf, "--sentinel"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.sentinels.append((port, proc))
        wait_until(self._ready, 30, what="the sentinels to see the replica and each other")

    def sentinel_cmd(self, i, *args):
        return resp_call(self.sentinels[i][0], self.certs, args)

    def _ready(self):
        try:
            for i in range(3):
                replicas = self.sentinel_cmd(i, "SENTINEL", "REPLICAS", self.MASTER_NAME)
                others = self.sentinel_cmd(i, "SENTINEL", "SENTINELS", self.MASTER_NAME)
                if len(replicas) != 1 or len(others) != 2:
                    return False
                flags = dict(zip(replicas[0][::2], replicas[0][1::2])).get("flags", "")
                if flags != "slave":
                    return False
            info = self.master.cmd("INFO", "replication")
            return "state=online" in info
        except (OSError, RuntimeError):
            return False

    @property
    def addresses(self):
        return [f"127.0.0.1:{p}" for p, _ in self.sentinels]

    def master_port(self, i=0):
        return int(self.sentinel_cmd(i, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.MASTER_NAME)[1])

    def current_master(self):
        port = self.master_port()
        return self.master if port == self.master.port else self.replica

    def stop(self):
        for _, proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.replica.stop()
        self.master.stop()
