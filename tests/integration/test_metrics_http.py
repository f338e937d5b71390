"""The Prometheus scrape endpoint (metrics.listen) of the real daemon, over real HTTP.

What a scrape returns (checked by `promtool check metrics`), what else is refused (404/405), that
the admin socket keeps answering while 100 scrapers (and 100 idle connections) are at the
endpoint, that nothing listens when the key is absent, and the alert metrics the issue asked for.
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading

import pytest

from harness import BUILD, Daemon, free_port, wait_until

CTL = os.path.join(BUILD, "ivs-autoscalerctl")

pytestmark = pytest.mark.skipif(
    not (os.access(os.path.join(BUILD, "ivs-autoscaler"), os.X_OK) and os.access(CTL, os.X_OK)),
    reason=f"daemon or ctl not built in {BUILD} (run `make`)")

USED_OPERATIONS = {"ListStages", "CreateStage", "DeleteStage", "ListParticipants",
                   "ListParticipantReplicas", "StartParticipantReplication",
                   "StopParticipantReplication", "TagResource"}


@pytest.fixture(autouse=True)
def clean_exit(tmpdir_path, daemons):
    yield
    for d in daemons:
        rc = d.stop()
        log = d.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert bad not in log, log[-4000:]
        assert rc in (0, None), f"daemon exited {rc}: {log[-2000:]}"


def fleet(sim, name="main"):
    arn = sim.create_stage(f"Origin{name.capitalize()}1", name=f"{name}-origin")
    return {"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
            "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s"}


def with_metrics(d, listen):
    with open(d.config, "a") as fh:
        fh.write(f'metrics:\n  listen: "{listen}"\n')
    return d


def start(tmpdir_path, redis, sim, daemons, listen=None, fleets=None):
    d = Daemon(tmpdir_path, redis, sim, fleets or [fleet(sim)])
    if listen is not None:
        with_metrics(d, listen)
    daemons.append(d)
    d.start()
    d.wait_ready()
    return d


def request(port, method="GET", path="/metrics", body=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read().decode()
    finally:
        c.close()


def samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def listening_inodes(pid):
    """Inodes of the TCP sockets the process holds in LISTEN state."""
    mine = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                f = line.split()
                if f[3] == "0A":
                    listening.add(f[9])
    return mine & listening


def test_scrape_is_valid_exposition(tmpdir_path, redis, sim, daemons):
    port = free_port()
    d = start(tmpdir_path, redis, sim, daemons, listen=f"127.0.0.1:{port}")
    assert f"metrics endpoint listening on http://127.0.0.1:{port}/metrics" in d.log()
    d.wait_passes(1)
    status, headers, text = request(port)
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    s = samples(text)
    assert s['ivs_autoscaler_reconcile_total{result="success"}'] >= 1
    assert s["ivs_autoscaler_redis_up"] == 1
    assert s["ivs_autoscaler_last_pass_success_timestamp_seconds"] > 1.6e9
    # static keys from the environment do not expire
    assert s["ivs_autoscaler_aws_credentials_expiry_timestamp_seconds"] == 0
    assert s["ivs_autoscaler_config_reload_failures_total"] == 0
    assert s['ivs_autoscaler_origin_missing{fleet="main"}'] == 0
    assert s['ivs_autoscaler_override_invalid{fleet="main"}'] == 0
    ops = {k.split('operation="')[1].split('"')[0] for k in s if 'operation="' in k}
    assert ops == USED_OPERATIONS
    # the same registry as the admin command
    rc, out, err = d.ctl("metrics")
    assert rc == 0, err
    assert set(samples(out)) == set(s)

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; `make deps`)")
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_other_paths_and_methods_are_refused(tmpdir_path, redis, sim, daemons):
    port = free_port()
    start(tmpdir_path, redis, sim, daemons, listen=f"127.0.0.1:{port}")
    for path in ("/", "/metrics/", "/debug", "/metricsx", "/Metrics"):
        status, _, _ = request(port, path=path)
        assert status == 404, path
    for method in ("POST", "PUT", "DELETE", "HEAD", "PATCH"):
        status, headers, _ = request(port, method=method, body=b"x" if method != "HEAD" else None)
        assert status == 405, method
        assert headers.get("allow") == "GET"
    # still serving after all that
    assert request(port)[0] == 200


def test_status_answers_while_100_scrapes_run(tmpdir_path, redis, sim, daemons):
    port = free_port()
    d = start(tmpdir_path, redis, sim, daemons, listen=f"127.0.0.1:{port}")

    # 100 idle connections that never finish their request hold every connection slot
    idle = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        idle.append(s)
    rc, out, err = d.ctl("status")
    assert rc == 0 and out.startswith("ivs-autoscaler "), err
    for s in idle:
        s.close()

    # 100 concurrent complete scrapes; status is asked while they are in flight
    results = []
    lock = threading.Lock()
    go = threading.Event()

    def scrape():
        go.wait()
        try:
            status, _, text = request(port, timeout=60)
            res = (status, text.endswith("\n"))
        except OSError as e:
            res = (repr(e), False)
        with lock:
            results.append(res)

    threads = [threading.Thread(target=scrape) for _ in range(100)]
    for t in threads:
        t.start()
    go.set()
    answered_during = 0
    while any(t.is_alive() for t in threads):
        rc, out, err = d.ctl("status")
        assert rc == 0 and out.startswith("ivs-autoscaler "), err
        answered_during += 1
    for t in threads:
        t.join()
    assert answered_during >= 1
    assert results.count((200, True)) == 100, [r for r in results if r != (200, True)][:5]


def test_endpoint_absent_when_not_configured(tmpdir_path, redis, sim, daemons):
    d = start(tmpdir_path, redis, sim, daemons)
    assert "metrics endpoint" not in d.log()
    assert listening_inodes(d.proc.pid) == set()


def test_endpoint_listens_when_configured(tmpdir_path, redis, sim, daemons):
    port = free_port()
    d = start(tmpdir_path, redis, sim, daemons, listen=f"127.0.0.1:{port}")
    assert len(listening_inodes(d.proc.pid)) == 1


def test_port_in_use_fails_start(tmpdir_path, redis, sim, daemons):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        d = with_metrics(Daemon(tmpdir_path, redis, sim, [fleet(sim)]), f"127.0.0.1:{port}")
        rc, log = d.run(timeout=60)
    assert rc == 1
    assert f"metrics endpoint: cannot listen on 127.0.0.1:{port}: Address already in use" in log


def test_reload_failure_and_override_and_origin_metrics(tmpdir_path, redis, sim, daemons):
    port = free_port()
    f = fleet(sim)
    gone = sim.create_stage("OriginGone1", name="gone-origin")
    d = start(tmpdir_path, redis, sim, daemons, listen=f"127.0.0.1:{port}",
              fleets=[f, {"name": "gone", "origin_stage_arn": gone, "viewers_per_stage": 100,
                              "keys": {"publisher": "gone:publisher",
                                       "desired_stages": "gone:desired",
                                       "open_stages": "gone:stages"}}])
    d.wait_passes(1)
    sim.delete_stage(gone)
    redis.cmd("SET", f"{d.prefix}desired_stages", "many")
    with open(d.config) as fh:
        good = fh.read()
    with open(d.config, "w") as fh:
        fh.write(good + "bogus_key: 1\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: samples(request(port)[2])["ivs_autoscaler_config_reload_failures_total"] == 1,
               20, what="the failed reload counted")
    d.reconcile_now()

    def flags():
        s = samples(request(port)[2])
        return (s['ivs_autoscaler_origin_missing{fleet="gone"}'] == 1 and
                s['ivs_autoscaler_origin_missing{fleet="main"}'] == 0 and
                s['ivs_autoscaler_override_invalid{fleet="main"}'] == 1)
    wait_until(flags, 30, what="origin_missing and override_invalid set")
