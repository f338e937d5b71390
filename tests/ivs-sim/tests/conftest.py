import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SIM_DIR = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(SIM_DIR))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
sys.path.insert(0, SIM_DIR)
sys.path.insert(0, HERE)

import datetime
import http.client
import json
import signal
import subprocess
import urllib.parse

import pytest

import sigv4

SIM = os.path.join(SIM_DIR, "ivs-sim")
REGION, ACCOUNT, AK, SK = "us-east-1", "123456789012", "AK", "SK"


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body
        self.json = json.loads(body) if body else None

    @property
    def error_type(self):
        return self.headers.get("x-amzn-errortype")


class Sim:
    """One simulator process on a free loopback port, with a small SigV4 client."""

    def __init__(self, tmp_path, *extra, token=None):
        self.token = token
        argv = [SIM, "--listen", "127.0.0.1:0", "--region", REGION, "--account", ACCOUNT,
                "--access-key", AK, "--secret-key", SK] + list(extra)
        if token:
            argv += ["--session-token", token]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:"), (line, self.proc.stderr.read())
        self.port = int(line.rsplit(":", 1)[1])
        self.host = f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode

    def raw(self, method, target, body=b"", headers=(), timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=dict(headers))
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def signed_headers(self, method, target, body, secret=SK, token="default", amz_date=None,
                       access_key=AK, region=REGION):
        token = self.token if token == "default" else token
        amz_date = amz_date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        base = [("Host", self.host), ("Content-Type", "application/json")]
        added, _, _, _ = sigv4.sign(method, target, base, body, access_key, secret, region, "ivs",
                                    amz_date, token)
        return base + added

    def api(self, op, payload=None, timeout=10, **kw):
        body = json.dumps(payload or {}).encode()
        target = "/" + op
        return self.raw("POST", target, body, self.signed_headers("POST", target, body, **kw),
                        timeout=timeout)

    def tags(self, method, arn, payload=None, query=""):
        target = "/tags/" + urllib.parse.quote(arn, safe="-._~") + (("?" + query) if query else "")
        body = json.dumps(payload).encode() if payload is not None else b""
        return self.raw(method, target, body, self.signed_headers(method, target, body))

    def ctl(self, path, payload=None):
        if payload is None:
            r = self.raw("GET", "/_sim/" + path)
        else:
            r = self.raw("POST", "/_sim/" + path, json.dumps(payload).encode(),
                         [("Content-Type", "application/json")])
        assert r.status == 200, (path, r.status, r.json)
        return r.json

    def ok(self, op, payload=None):
        r = self.api(op, payload)
        assert r.status == 200, (op, r.status, r.json, r.error_type)
        return r.json


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path, "--tps", "0")
    yield s
    assert s.stop() == 0


@pytest.fixture
def make_sim(tmp_path):
    started = []

    def make(*extra, token=None):
        s = Sim(tmp_path, *extra, token=token)
        started.append(s)
        return s
    yield make
    for s in started:
        s.stop()
