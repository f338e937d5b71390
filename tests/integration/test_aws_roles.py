"""AWS credentials from roles, with the real daemon and the simulator's STS (issue 14).

The simulator's IVS side is told to accept only credentials its STS issued (with their session
token), so a passing pass proves every IVS call carried the assumed key. STS itself checks the
SigV4 signature with the source credentials and every form against Debian's STS model."""
import http.server
import json
import os
import signal
import threading
import time

import pytest

from harness import ACCESS_KEY, SECRET_KEY, Daemon, Sim, wait_until

PREFIX = "ivs:test:"
ROLE_A = "arn:aws:iam::111111111111:role/ivs-media-A"
ROLE_B = "arn:aws:iam::222222222222:role/ivs-hop-B"
IVS_OPS = ("ListStages", "ListParticipants", "ListParticipantReplicas", "GetStage", "CreateStage",
           "TagResource", "StartParticipantReplication", "ListTagsForResource")


def fleet(sim, name, stage_id):
    arn = sim.create_stage(stage_id, name=f"{name}-origin")
    return {"name": name, "origin_stage_arn": arn, "viewers_per_stage": 100,
            "target_utilization": 1.0, "scale_down_delay": "1s", "drain_timeout": "60s",
            "reconnect_window": "10s"}


def sts(sim, **settings):
    state = sim.call("POST", "/_sim/sts", settings) if settings else sim.call("GET", "/_sim/sts")
    if not state["model"]:
        pytest.skip("the simulator's STS needs python3-botocore's STS model (make deps installs it)")
    return state


def role_daemon(tmpdir, redis, sim, aws_config=None, env=None, stage="OriginRoles1"):
    """A daemon with no static keys in its environment, STS pointed at the simulator."""
    path = os.path.join(tmpdir, "aws-config")
    if aws_config is not None:
        with open(path, "w") as fh:
            fh.write(aws_config)
    d = Daemon(tmpdir, redis, sim, [fleet(sim, "main", stage)], prefix=PREFIX,
               env={"AWS_CONFIG_FILE": path,
                    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmpdir, "no-credentials"),
                    "AWS_ENDPOINT_URL_STS": sim.endpoint, **(env or {})})
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        d.env.pop(k, None)
    return d


def ivs_errors(sim):
    ops = sim.counters().get("operations", {})
    return {op: c["errors"] for op, c in ops.items()
            if c["errors"] and op not in ("AssumeRole", "AssumeRoleWithWebIdentity")}


def assert_only_issued_keys(sim):
    state = sts(sim)
    issued = {c["issuedAccessKey"] for c in state["calls"] if c["issuedAccessKey"]}
    assert state["ivsKeys"], "no IVS call reached the simulator"
    assert set(state["ivsKeys"]) <= issued, (state["ivsKeys"], issued)
    assert ivs_errors(sim) == {}
    return state


STATIC_BASE = (f"[profile base]\naws_access_key_id = {ACCESS_KEY}\n"
               f"aws_secret_access_key = {SECRET_KEY}\n")


def test_assume_role_with_source_profile_static_keys(tmpdir_path, redis, sim, daemons):
    sts(sim, ivsRequiresSts=True)
    d = role_daemon(tmpdir_path, redis, sim,
                    f"[profile media]\nrole_arn = {ROLE_A}\nsource_profile = base\n"
                    f"external_id = ivs-ext-1\nrole_session_name = it-session\n" + STATIC_BASE,
                    env={"AWS_PROFILE": "media"})
    daemons.append(d)
    d.start()
    d.wait_ready()
    d.wait_passes(2)
    state = assert_only_issued_keys(sim)
    calls = [c for c in state["calls"] if c["action"] == "AssumeRole"]
    assert calls and all(c["status"] == 200 for c in calls)
    assert (calls[0]["roleArn"], calls[0]["sourceAccessKey"], calls[0]["externalId"],
            calls[0]["roleSessionName"], calls[0]["durationSeconds"]) == (
        ROLE_A, ACCESS_KEY, "ivs-ext-1", "it-session", 3600)
    log = d.log()
    assert f"AWS credentials from assume-role (role {ROLE_A} (profile \"media\") via shared-files" in log
    assert SECRET_KEY not in log


def test_role_chain_a_through_b(tmpdir_path, redis, sim, daemons):
    sts(sim, ivsRequiresSts=True)
    d = role_daemon(tmpdir_path, redis, sim,
                    f"[profile a]\nrole_arn = {ROLE_A}\nsource_profile = b\n"
                    f"[profile b]\nrole_arn = {ROLE_B}\nsource_profile = base\n" + STATIC_BASE,
                    env={"AWS_PROFILE": "a"})
    daemons.append(d)
    d.start()
    d.wait_ready()
    d.wait_passes(2)
    state = assert_only_issued_keys(sim)
    calls = [c for c in state["calls"] if c["action"] == "AssumeRole"]
    # (the simulator records a call once its answer is written, so A's record may come first)
    b = next(c for c in calls if c["roleArn"] == ROLE_B)
    a = next(c for c in calls if c["roleArn"] == ROLE_A)
    assert b["sourceAccessKey"] == ACCESS_KEY
    assert a["sourceAccessKey"] == b["issuedAccessKey"]
    # IVS saw only the key of the last role in the chain.
    assert set(state["ivsKeys"]) == {c["issuedAccessKey"] for c in calls if c["roleArn"] == ROLE_A}
    assert f"via role {ROLE_B} via shared-files" in d.log()


def test_access_denied_names_the_role_and_retries(tmpdir_path, redis, sim, daemons):
    sts(sim, ivsRequiresSts=True, denyRoles=[ROLE_A])
    d = role_daemon(tmpdir_path, redis, sim,
                    f"[profile media]\nrole_arn = {ROLE_A}\nsource_profile = base\n" + STATIC_BASE,
                    env={"AWS_PROFILE": "media"})
    daemons.append(d)
    d.start()
    d.wait_ready()
    wait_until(lambda: f"STS AssumeRole for role {ROLE_A}" in d.log() and "AccessDenied" in d.log(),
               20, what="an AccessDenied error naming the role")
    # Stays up, and keeps asking.
    wait_until(lambda: sim.counters()["operations"].get("AssumeRole", {}).get("calls", 0) >= 3, 30,
               what="STS retried")
    assert d.proc.poll() is None
    assert d.ctl("status")[0] == 0
    assert sts(sim)["ivsKeys"] == {}
    # Once the trust policy is fixed, the next retry gets credentials and IVS calls succeed.
    sts(sim, denyRoles=[])
    wait_until(lambda: sts(sim)["ivsKeys"], 90, what="IVS calls with the assumed role")
    d.wait_passes(1)
    assert_only_issued_keys(sim)


def test_short_lived_credentials_are_refreshed_before_they_lapse(tmpdir_path, redis, sim, daemons):
    # STS grants 20 s instead of the hour asked for; the daemon refreshes inside the last half.
    sts(sim, ivsRequiresSts=True, durationSeconds=20)
    d = role_daemon(tmpdir_path, redis, sim,
                    f"[profile media]\nrole_arn = {ROLE_A}\nsource_profile = base\n" + STATIC_BASE,
                    env={"AWS_PROFILE": "media"})
    daemons.append(d)
    d.start()
    d.wait_ready()
    wait_until(lambda: len([c for c in sts(sim)["calls"] if c["status"] == 200]) >= 4, 90,
               what="four AssumeRole answers (three refreshes)")
    d.wait_passes(2)
    state = assert_only_issued_keys(sim)
    assert len(state["ivsKeys"]) >= 3, state["ivsKeys"]
    assert "ExpiredTokenException" not in json.dumps(sim.counters())


def test_web_identity_from_the_environment(tmpdir_path, redis, sim, daemons):
    token_file = os.path.join(tmpdir_path, "token")
    with open(token_file, "w") as fh:
        fh.write("eyJ.first-token\n")
    sts(sim, ivsRequiresSts=True, webIdentityTokens=["eyJ.first-token", "eyJ.second-token"],
        durationSeconds=20)
    d = role_daemon(tmpdir_path, redis, sim, env={"AWS_WEB_IDENTITY_TOKEN_FILE": token_file,
                                                  "AWS_ROLE_ARN": ROLE_A,
                                                  "AWS_ROLE_SESSION_NAME": "pod-1"})
    daemons.append(d)
    d.start()
    d.wait_ready()
    d.wait_passes(1)
    first = sts(sim)["calls"][0]
    assert (first["action"], first["signed"], first["webIdentityToken"], first["roleSessionName"]) == (
        "AssumeRoleWithWebIdentity", False, "eyJ.first-token", "pod-1")
    # The token file is read again at every refresh (EKS rotates it).
    with open(token_file, "w") as fh:
        fh.write("eyJ.second-token\n")
    wait_until(lambda: any(c["webIdentityToken"] == "eyJ.second-token" and c["status"] == 200
                           for c in sts(sim)["calls"]), 60, what="a refresh with the rotated token")
    d.wait_passes(1)
    assert_only_issued_keys(sim)
    assert "AWS credentials from web-identity (role " + ROLE_A in d.log()


class FakeImds:
    """IMDSv2 on loopback: a session token, one role, the simulator's static keys."""

    def __init__(self, token, role="ec2-host-role"):
        outer = self
        self.requests = []
        self.token = token

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                outer.requests.append(("PUT", self.path))
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self.reply(200, "imds-token")
                self.reply(403, "")

            def do_GET(self):
                outer.requests.append(("GET", self.path))
                if self.headers.get("X-aws-ec2-metadata-token") != "imds-token":
                    return self.reply(401, "")
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    return self.reply(200, role + "\n")
                if self.path == base + role:
                    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
                    return self.reply(200, json.dumps({
                        "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": ACCESS_KEY,
                        "SecretAccessKey": SECRET_KEY, "Token": outer.token, "Expiration": exp}))
                self.reply(404, "")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_credential_source_ec2_instance_metadata(tmpdir_path, redis, daemons):
    # Instance-role credentials always carry a session token: the simulator's key gets one.
    sim = Sim(tmpdir_path, extra=("--session-token", "instance-role-token"))
    imds = FakeImds("instance-role-token")
    try:
        sts(sim, ivsRequiresSts=True)
        d = role_daemon(tmpdir_path, redis, sim,
                        f"[default]\nrole_arn = {ROLE_A}\ncredential_source = Ec2InstanceMetadata\n",
                        env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint})
        d.env.pop("AWS_EC2_METADATA_DISABLED", None)
        daemons.append(d)
        d.start()
        d.wait_ready()
        d.wait_passes(2)
        assert_only_issued_keys(sim)
        first = [c for c in sts(sim)["calls"] if c["action"] == "AssumeRole"][0]
        assert first["sourceAccessKey"] == ACCESS_KEY
        assert ("PUT", "/latest/api/token") in imds.requests
        assert f"role {ROLE_A} (profile \"default\") via imds" in d.log()
    finally:
        imds.stop()
        sim.stop()


def test_credential_process_that_hangs_is_stopped_with_sigterm(tmpdir_path, redis, sim):
    pid_file = os.path.join(tmpdir_path, "helper.pid")
    sig_file = os.path.join(tmpdir_path, "helper.signals")
    helper = os.path.join(tmpdir_path, "hang-helper")
    with open(helper, "w") as fh:
        fh.write("#!/bin/sh\n"
                 f"echo $$ > '{pid_file}'\n"
                 # builtins only: a forked grep would read the shell's mask while the shell
                 # has every signal blocked around its own fork (dash does so around vfork)
                 "while read -r line; do case $line in SigBlk:*|SigIgn:*) echo \"$line\";; "
                 f"esac; done < /proc/$$/status > '{sig_file}'\n"
                 "exec sleep 600\n")
    os.chmod(helper, 0o755)
    d = role_daemon(tmpdir_path, redis, sim, f"[default]\ncredential_process = {helper}\n")
    rc, log = d.run(timeout=60)
    assert rc != 0
    assert "credential_process: timed out after 10 s; stopped with SIGTERM" in log, log
    pid = int(open(pid_file).read())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # The helper started with nothing blocked and SIGPIPE/SIGTERM at their defaults, although
    # the daemon blocks SIGTERM/SIGINT/SIGHUP and ignores SIGPIPE.
    sigs = dict(line.split(":") for line in open(sig_file).read().split("\n") if line)
    assert int(sigs["SigBlk"], 16) == 0, sigs
    ignored = int(sigs["SigIgn"], 16)
    for s in (signal.SIGPIPE, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        assert not ignored & (1 << (s - 1)), sigs
