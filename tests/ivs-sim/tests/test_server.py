"""Authentication, throttling, faults, pause/resume, control plane, request log, state file."""
import datetime
import http.client
import json
import os
import socket
import threading
import time

import pytest

from conftest import AK, Sim

TOKEN = "FQoGZXIvYXdzE//tok+en="


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("condition not met before the deadline")


def test_missing_authorization(sim):
    r = sim.raw("POST", "/ListStages", b"{}", [("Content-Type", "application/json")])
    assert r.status == 403 and r.error_type == "MissingAuthenticationTokenException"
    assert "message" in r.json


@pytest.mark.parametrize("kw,code", [
    ({"secret": "wrong"}, "InvalidSignatureException"),
    ({"access_key": "AKOTHER"}, "UnrecognizedClientException"),
    ({"region": "eu-west-1"}, "InvalidSignatureException"),
    ({"amz_date": (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6))
      .strftime("%Y%m%dT%H%M%SZ")}, "InvalidSignatureException"),
    ({"token": "unexpected"}, "UnrecognizedClientException"),
])
def test_signature_failures(sim, kw, code):
    r = sim.api("ListStages", {}, **kw)
    assert r.status == 403 and r.error_type == code, (r.status, r.json)


def test_tampered_body(sim):
    body = b'{"maxResults": 5}'
    headers = sim.signed_headers("POST", "/ListStages", body)
    r = sim.raw("POST", "/ListStages", b'{"maxResults": 6}', headers)
    assert r.status == 403 and r.error_type == "InvalidSignatureException"


def test_malformed_authorization(sim):
    r = sim.raw("POST", "/ListStages", b"{}", [("Authorization", "AWS4-HMAC-SHA256 garbage")])
    assert r.status == 400 and r.error_type == "IncompleteSignatureException"


def test_session_token(make_sim):
    s = make_sim("--tps", "0", token=TOKEN)
    assert s.api("ListStages").status == 200
    assert s.api("ListStages", token=None).error_type == "UnrecognizedClientException"
    assert s.api("ListStages", token="other").error_type == "UnrecognizedClientException"


def test_tag_path_double_encoding(sim):
    arn = sim.ok("CreateStage")["stage"]["arn"]
    assert sim.tags("GET", arn).status == 200      # canonical URI re-encodes %3A to %253A


def test_keep_alive_and_connection_close(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    for _ in range(3):
        body = b"{}"
        conn.request("POST", "/ListStages", body=body,
                     headers=dict(sim.signed_headers("POST", "/ListStages", body)))
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Length")
        r.read()
    conn.request("GET", "/_sim/health", headers={"Connection": "close"})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read()) == {"ok": True}
    conn.close()


def test_throttling(make_sim):
    s = make_sim("--tps", "2")
    statuses = [s.api("ListStages").status for _ in range(6)]
    assert statuses[:2] == [200, 200] and 429 in statuses
    r = s.api("ListStages")
    if r.status == 429:
        assert r.error_type == "ThrottlingException" and r.json == {"message": "Rate exceeded"}
    assert s.api("CreateStage").status == 200        # buckets are per operation
    counters = s.ctl("counters")
    assert counters["operations"]["ListStages"]["errors"]["ThrottlingException"] >= 1
    s.ctl("faults", {"tps": 0})
    assert all(s.api("ListStages").status == 200 for _ in range(10))


def _fault_run(make_sim, tmp_path):
    s = make_sim("--tps", "0", "--fail-rate", "0.5", "--seed", "7")
    s.ctl("faults", {"hangSeconds": 0.2})
    outcomes = []
    for _ in range(30):
        try:
            r = s.api("ListStages", timeout=5)
            outcomes.append(r.status)
        except (http.client.HTTPException, ConnectionError, socket.timeout):
            outcomes.append("dropped")
    return s, outcomes


def test_faults_are_seeded_and_mixed(make_sim, tmp_path):
    s1, a = _fault_run(make_sim, tmp_path)
    _, b = _fault_run(make_sim, tmp_path)
    assert a == b
    assert {200, 500, 503, "dropped"} <= set(a)
    errors = s1.ctl("counters")["operations"]["ListStages"]["errors"]
    assert errors.get("InternalServerException") and errors.get("ServiceUnavailable")
    assert errors.get("ConnectionDropped", 0) + errors.get("Hung", 0) == a.count("dropped")


def test_faults_never_half_happen(make_sim):
    s = make_sim("--tps", "0", "--fail-rate", "1", "--seed", "3")
    s.ctl("faults", {"hangSeconds": 0.1})
    for _ in range(5):
        try:
            s.api("CreateStage", timeout=5)
        except (http.client.HTTPException, ConnectionError, socket.timeout):
            pass
    assert s.ctl("state")["stages"] == []
    s.ctl("faults", {"failRate": 0})
    assert s.api("CreateStage").status == 200


def test_fail_operations_fail_only_those(sim):
    assert sim.ctl("faults", {"failOperations": ["CreateStage"]})["failOperations"] == ["CreateStage"]
    r = sim.api("CreateStage")
    assert r.status == 500 and r.error_type == "InternalServerException"
    assert sim.ctl("state")["stages"] == []                 # failed before any state change
    assert sim.api("ListStages").status == 200
    bad = sim.raw("POST", "/_sim/faults", json.dumps({"failOperations": ["NoSuchOp"]}).encode(),
                  [("Content-Type", "application/json")])
    assert bad.status == 400
    sim.ctl("faults", {"failOperations": []})
    assert sim.api("CreateStage").status == 200


def test_drop_after_commit_performs_the_operation(sim):
    assert sim.ctl("faults", {"dropAfterCommit": ["CreateStage"]})["dropAfterCommit"] == ["CreateStage"]
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        sim.api("CreateStage", {"name": "lost-reply"})
    stages = sim.ctl("state")["stages"]
    assert [s["name"] for s in stages] == ["lost-reply"]     # created, answer never sent
    assert sim.api("ListStages").status == 200               # other operations answer
    errors = sim.ctl("counters")["operations"]["CreateStage"]["errors"]
    assert errors == {"DroppedAfterCommit": 1}
    bad = sim.raw("POST", "/_sim/faults", json.dumps({"dropAfterCommit": "CreateStage"}).encode(),
                  [("Content-Type", "application/json")])
    assert bad.status == 400
    sim.ctl("faults", {"dropAfterCommit": []})
    assert sim.api("CreateStage").status == 200
    assert len(sim.ctl("state")["stages"]) == 2


def test_drop_after_commit_rate_keeps_other_sequences(make_sim):
    s = make_sim("--tps", "0", "--seed", "5")
    s.ctl("faults", {"dropAfterCommitRate": 1.0})
    for i in range(3):
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            s.api("CreateStage", {"name": f"s{i}"})
    assert len(s.ctl("state")["stages"]) == 3
    assert s.ctl("faults", {"dropAfterCommitRate": 0})["dropAfterCommitRate"] == 0
    assert s.api("CreateStage").status == 200
    assert s.raw("POST", "/_sim/faults", json.dumps({"dropAfterCommitRate": -1}).encode(),
                 [("Content-Type", "application/json")]).status == 400


def test_pause_and_resume(sim):
    sim.ctl("pause", {"operation": "CreateStage", "afterCalls": 1})
    assert sim.ctl("pause") == {"armed": True, "paused": False, "held": 0}
    assert sim.api("CreateStage").status == 200
    assert sim.ctl("pause")["paused"] is True
    results = []
    t = threading.Thread(target=lambda: results.append(sim.api("ListStages").status))
    t.start()
    wait_for(lambda: sim.ctl("pause")["held"] == 1)
    assert results == []
    sim.ctl("resume", {})
    t.join(10)
    assert results == [200]
    assert sim.ctl("pause") == {"armed": False, "paused": False, "held": 0}


def test_control_plane(sim):
    arn = sim.ctl("stages", {"id": "DemoOrigin1", "tags": {"x": "y"}})["arn"]
    assert arn.endswith(":stage/DemoOrigin1")
    r = sim.raw("POST", "/_sim/stages", b'{"id": "DemoOrigin1"}')
    assert r.status == 409
    assert sim.raw("POST", "/_sim/stages", b'{"id": "bad id"}').status == 400
    assert sim.raw("POST", "/_sim/stages", b'not json').status == 400
    assert sim.raw("POST", "/_sim/participants", b'{}').status == 400
    j = sim.ctl("participants", {"stageArn": arn, "userId": "host1"})
    state = sim.ctl("state")
    stage = state["stages"][0]
    assert stage["tags"] == {"x": "y"} and stage["activeSessionId"] == j["sessionId"]
    assert stage["sessions"][0]["participants"][0]["userId"] == "host1"
    before = sim.ctl("clock", {"advanceSeconds": 0})["now"]
    after = sim.ctl("clock", {"advanceSeconds": 3600})["now"]
    assert after > before
    assert sim.ctl("faults", {"latencyMs": 1})["latencyMs"] == 1
    sim.ctl("stages/delete", {"arn": arn})
    assert sim.ctl("state")["stages"] == []
    sim.ok("CreateStage")
    assert sim.ctl("counters")["total"] >= 1
    assert sim.ctl("reset", {}) == {}
    assert sim.ctl("counters") == {"operations": {}, "total": 0}
    assert sim.ctl("state")["stages"] == []
    assert sim.raw("GET", "/_sim/nothing").status == 404


def test_request_log_and_state_file(tmp_path):
    log, state = tmp_path / "req.log", tmp_path / "state.json"
    s = Sim(tmp_path, "--tps", "0", "--log", str(log), "--state", str(state))
    arn = s.ok("CreateStage", {"name": "keep"})["stage"]["arn"]
    s.ctl("participants", {"stageArn": arn})
    s.api("GetStage", {}, secret="bad")
    assert s.stop() == 0
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines[0]["operation"] == "CreateStage" and lines[0]["status"] == 200
    assert lines[1]["signatureOk"] is False and lines[1]["errorType"] == "InvalidSignatureException"
    assert set(lines[0]) == {"time", "operation", "status", "errorType", "latencyMs", "signatureOk",
                             "detail", "stage", "accessKeyId"}
    assert lines[0]["detail"] == {"name": "keep", "arn": arn}
    assert lines[0]["stage"] == arn                 # the new stage of a CreateStage
    assert "detail" not in lines[1] and "stage" not in lines[1]   # refused
    assert lines[0]["accessKeyId"] == "AK"
    assert os.path.exists(state)
    s2 = Sim(tmp_path, "--tps", "0", "--state", str(state))
    try:
        st = s2.ok("GetStage", {"arn": arn})["stage"]
        assert st["name"] == "keep" and st["activeSessionId"]
        assert len(s2.ok("CreateStage")["stage"]["arn"]) > 0
    finally:
        assert s2.stop() == 0


def test_extra_credentials_are_told_apart(tmp_path):
    log = tmp_path / "req.log"
    s = Sim(tmp_path, "--tps", "0", "--log", str(log), "--extra-credential", "AK2:SK2")
    try:
        assert s.api("ListStages").status == 200
        assert s.api("ListStages", access_key="AK2", secret="SK2").status == 200
        # Each key signs with its own secret only.
        assert s.api("ListStages", access_key="AK2", secret="SK").error_type == "InvalidSignatureException"
        assert s.api("ListStages", access_key="AK3", secret="SK2").error_type == "UnrecognizedClientException"
    finally:
        assert s.stop() == 0
    keys = [json.loads(x)["accessKeyId"] for x in log.read_text().splitlines()]
    assert keys == ["AK", "AK2", "AK2", "AK3"]


def test_request_log_details_of_a_delete(tmp_path):
    """A DeleteStage line names the stage, its tags and the replications still ACTIVE into it:
    what a checker needs to tell a safe delete from an unsafe one."""
    log = tmp_path / "req.log"
    s = Sim(tmp_path, "--tps", "0", "--log", str(log))
    try:
        src = s.ok("CreateStage", {"name": "src"})["stage"]["arn"]
        dst = s.ok("CreateStage", {"name": "dst", "tags": {"k": "v"}})["stage"]["arn"]
        pid = s.ctl("participants", {"stageArn": src})["participantId"]
        s.ok("StartParticipantReplication", {"sourceStageArn": src, "destinationStageArn": dst,
                                             "participantId": pid})
        s.ok("DeleteStage", {"arn": dst})
        s.ok("DeleteStage", {"arn": src})
    finally:
        s.stop()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    start, d1, d2 = lines[2], lines[3], lines[4]
    assert start["detail"]["tags"] == {"k": "v"} and start["detail"]["participantId"] == pid
    assert d1["detail"] == {"arn": dst, "tags": {"k": "v"}, "activeInto": [[src, pid]]}
    assert d2["detail"] == {"arn": src, "tags": {}, "activeInto": []}


def test_cli_refuses_non_loopback(tmp_path):
    import subprocess
    from conftest import SIM
    r = subprocess.run([SIM, "--listen", "0.0.0.0:0", "--access-key", AK, "--secret-key", "x"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "loopback" in r.stderr
