"""Every API operation, its semantics and its error paths."""
import re

import pytest

from conftest import ACCOUNT

ARN_RE = re.compile(r"arn:aws:ivs:us-east-1:%s:stage/[a-zA-Z0-9]{12}" % ACCOUNT)
SESSION_RE = re.compile(r"st-[a-zA-Z0-9]{13}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def make_stage(sim, **kw):
    return sim.ok("CreateStage", kw)["stage"]["arn"]


def host(sim, arn, publish=True):
    return sim.ctl("participants", {"stageArn": arn, "publish": publish})


def test_stage_lifecycle(sim):
    out = sim.ok("CreateStage", {"name": "s-1", "tags": {"k": "v"},
                                 "participantTokenConfigurations": [{"userId": "u", "duration": 5}]})
    st = out["stage"]
    assert ARN_RE.fullmatch(st["arn"]) and st["name"] == "s-1" and st["tags"] == {"k": "v"}
    assert st["activeSessionId"] == "" and "whip" in st["endpoints"]
    tok = out["participantTokens"][0]
    assert tok["userId"] == "u" and tok["duration"] == 5 and TIME_RE.fullmatch(tok["expirationTime"])
    assert sim.ok("GetStage", {"arn": st["arn"]})["stage"]["name"] == "s-1"
    assert sim.ok("UpdateStage", {"arn": st["arn"], "name": "renamed"})["stage"]["name"] == "renamed"
    assert sim.ok("DeleteStage", {"arn": st["arn"]}) == {}
    r = sim.api("GetStage", {"arn": st["arn"]})
    assert r.status == 404 and r.error_type == "ResourceNotFoundException"
    assert "exceptionMessage" in r.json and r.headers.get("x-amzn-requestid")
    assert sim.api("DeleteStage", {"arn": st["arn"]}).status == 404
    assert sim.api("UpdateStage", {"arn": st["arn"]}).status == 404


def test_list_stages_pagination_250(sim):
    made = {make_stage(sim) for _ in range(250)}
    seen, pages, token = [], 0, None
    while True:
        req = {"maxResults": 100}
        if token:
            req["nextToken"] = token
        out = sim.ok("ListStages", req)
        pages += 1
        seen += [s["arn"] for s in out["stages"]]
        token = out.get("nextToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 250 and set(seen) == made
    assert len(sim.ok("ListStages")["stages"]) == 50          # the model's default
    r = sim.api("ListStages", {"nextToken": "bm90LWEtdG9rZW4="})
    assert r.status == 400 and r.error_type == "ValidationException"


@pytest.mark.parametrize("op,payload,needle", [
    ("GetStage", {}, "must not be null"),
    ("GetStage", {"arn": "arn:aws:ivs:us-east-1:1:channel/x"}, "regular expression"),
    ("GetStage", {"arn": 5}, "be a string"),
    ("GetStage", {"arn": "x" * 200}, "length less than"),
    ("ListStages", {"maxResults": 0}, "greater than or equal to 1"),
    ("ListStages", {"maxResults": 101}, "less than or equal to 100"),
    ("ListStages", {"maxResults": True}, "be an integer"),
    ("ListStages", {"bogus": 1}, "Unknown member 'bogus'"),
    ("ListParticipantReplicas", {"sourceStageArn": "arn:aws:ivs:us-east-1:1:stage/a",
                                 "participantId": "p", "maxResults": 51}, "less than or equal to 50"),
    ("ListParticipants", {"stageArn": "arn:aws:ivs:us-east-1:1:stage/a", "sessionId": "st-short"},
     "length greater than"),
    ("ListParticipants", {"stageArn": "arn:aws:ivs:us-east-1:1:stage/a", "sessionId": "st-aaaaaaaaaaaaa",
                          "filterByState": "GONE"}, "enum"),
    ("ListParticipants", {"stageArn": "arn:aws:ivs:us-east-1:1:stage/a", "sessionId": "st-aaaaaaaaaaaaa",
                          "filterByState": "CONNECTED", "filterByPublished": True}, "Only one of"),
    ("CreateStage", {"tags": {str(i): "v" for i in range(51)}}, "less than or equal to 50"),
    ("CreateStage", {"name": "bad name!"}, "regular expression"),
    ("CreateStage", {"participantTokenConfigurations": [{}] * 13}, "less than or equal to 12"),
    ("CreateStage", {"autoParticipantRecordingConfiguration": {}}, "storageConfigurationArn"),
    ("CreateParticipantToken", {"stageArn": "arn:aws:ivs:us-east-1:1:stage/a", "duration": 20161},
     "less than or equal to 20160"),
    ("CreateParticipantToken", {"stageArn": "arn:aws:ivs:us-east-1:1:stage/a",
                                "attributes": {"a": "x" * 1100}}, "1024 bytes"),
    ("StartParticipantReplication", {"sourceStageArn": "arn:aws:ivs:us-east-1:1:stage/a",
                                     "destinationStageArn": "arn:aws:ivs:us-east-1:1:stage/b",
                                     "participantId": "p", "reconnectWindowSeconds": 301},
     "less than or equal to 300"),
])
def test_validation(sim, op, payload, needle):
    r = sim.api(op, payload)
    assert r.status == 400 and r.error_type == "ValidationException", (r.status, r.json)
    assert needle in r.json["exceptionMessage"]


def test_malformed_json(sim):
    from conftest import Sim  # noqa: F401
    body = b"{not json"
    r = sim.raw("POST", "/GetStage", body, sim.signed_headers("POST", "/GetStage", body))
    assert r.status == 400 and r.error_type == "SerializationException"
    body = b"[1]"
    r = sim.raw("POST", "/GetStage", body, sim.signed_headers("POST", "/GetStage", body))
    assert r.status == 400


def test_unknown_operation(sim):
    r = sim.api("ListCompositions")
    assert r.status == 404 and r.error_type == "UnknownOperationException"


def test_sessions_and_participants(sim):
    arn = make_stage(sim)
    assert sim.ok("ListStageSessions", {"stageArn": arn}) == {"stageSessions": []}
    a = host(sim, arn)
    b = host(sim, arn, publish=False)
    sid = a["sessionId"]
    assert SESSION_RE.fullmatch(sid) and len(sid) == 16 and b["sessionId"] == sid
    assert sim.ok("GetStage", {"arn": arn})["stage"]["activeSessionId"] == sid
    sess = sim.ok("GetStageSession", {"stageArn": arn, "sessionId": sid})["stageSession"]
    assert sess["sessionId"] == sid and TIME_RE.fullmatch(sess["startTime"]) and "endTime" not in sess
    parts = sim.ok("ListParticipants", {"stageArn": arn, "sessionId": sid})["participants"]
    assert {p["participantId"] for p in parts} == {a["participantId"], b["participantId"]}
    pub = sim.ok("ListParticipants", {"stageArn": arn, "sessionId": sid, "filterByPublished": True})
    assert [p["participantId"] for p in pub["participants"]] == [a["participantId"]]
    page = sim.ok("ListParticipants", {"stageArn": arn, "sessionId": sid, "maxResults": 1})
    assert len(page["participants"]) == 1 and page["nextToken"]
    p = sim.ok("GetParticipant", {"stageArn": arn, "sessionId": sid,
                                  "participantId": a["participantId"]})["participant"]
    assert p["state"] == "CONNECTED" and p["published"] is True and p["replicationType"] == "NONE"
    assert sim.api("GetParticipant", {"stageArn": arn, "sessionId": sid,
                                      "participantId": "nobody"}).status == 404
    # Disconnecting everyone ends the session.
    sim.ok("DisconnectParticipant", {"stageArn": arn, "participantId": a["participantId"]})
    assert sim.api("DisconnectParticipant", {"stageArn": arn, "participantId": a["participantId"]}).status == 404
    st = sim.ok("ListParticipants", {"stageArn": arn, "sessionId": sid, "filterByState": "DISCONNECTED"})
    assert [x["participantId"] for x in st["participants"]] == [a["participantId"]]
    sim.ctl("participants/disconnect", {"stageArn": arn, "participantId": b["participantId"]})
    assert sim.ok("GetStage", {"arn": arn})["stage"]["activeSessionId"] == ""
    sessions = sim.ok("ListStageSessions", {"stageArn": arn})["stageSessions"]
    assert sessions[0]["sessionId"] == sid and "endTime" in sessions[0]
    assert sim.api("GetStageSession", {"stageArn": arn, "sessionId": "st-0000000000000"}).status == 404
    # Unknown stage in a list operation: empty list, as no 404 is modelled there.
    other = "arn:aws:ivs:us-east-1:%s:stage/nonexistent1" % ACCOUNT
    assert sim.ok("ListParticipants", {"stageArn": other, "sessionId": sid}) == {"participants": []}


def test_participant_token(sim):
    arn = make_stage(sim)
    tok = sim.ok("CreateParticipantToken", {"stageArn": arn, "userId": "me",
                                            "capabilities": ["SUBSCRIBE"]})["participantToken"]
    assert tok["capabilities"] == ["SUBSCRIBE"] and tok["duration"] == 720 and tok["token"]
    r = sim.api("CreateParticipantToken", {"stageArn": arn[:-1] + ("Z" if arn[-1] != "Z" else "Y")})
    assert r.status == 404


def test_tags(sim):
    arn = make_stage(sim, tags={"a": "1"})
    assert sim.tags("POST", arn, {"tags": {"b": "2"}}).status == 200
    r = sim.tags("GET", arn)
    assert r.status == 200 and r.json == {"tags": {"a": "1", "b": "2"}}
    assert sim.tags("DELETE", arn, query="tagKeys=a&tagKeys=zz").status == 200
    assert sim.tags("GET", arn).json == {"tags": {"b": "2"}}
    assert sim.ok("ListStages")["stages"][0]["tags"] == {"b": "2"}
    r = sim.tags("GET", arn + "x")
    assert r.status == 404 and r.error_type == "ResourceNotFoundException"
    r = sim.tags("POST", arn, {})
    assert r.status == 400 and "tags" in r.json["exceptionMessage"]
    r = sim.tags("GET", "not-an-arn")
    assert r.status == 400


def test_replication(sim):
    src, d1 = make_stage(sim), make_stage(sim)
    h = host(sim, src)
    pid = h["participantId"]
    req = {"sourceStageArn": src, "destinationStageArn": d1, "participantId": pid,
           "reconnectWindowSeconds": 30, "attributes": {"origin": "autoscaler"}}
    assert sim.ok("StartParticipantReplication", req) == {}
    r = sim.api("StartParticipantReplication", req)
    assert r.status == 409 and r.error_type == "ConflictException" and "already replicating" in r.json["exceptionMessage"]
    reps = sim.ok("ListParticipantReplicas", {"sourceStageArn": src, "participantId": pid})["replicas"]
    assert len(reps) == 1 and reps[0]["replicationState"] == "ACTIVE"
    assert reps[0]["destinationStageArn"] == d1 and reps[0]["sourceSessionId"] == h["sessionId"]
    dsid = sim.ok("GetStage", {"arn": d1})["stage"]["activeSessionId"]
    assert dsid == reps[0]["destinationSessionId"]
    rp = sim.ok("GetParticipant", {"stageArn": d1, "sessionId": dsid, "participantId": pid})["participant"]
    assert rp["replicationType"] == "REPLICA" and rp["replicationState"] == "ACTIVE"
    assert rp["sourceStageArn"] == src and rp["sourceSessionId"] == h["sessionId"]
    assert rp["attributes"] == {"origin": "autoscaler"}
    sp = sim.ok("GetParticipant", {"stageArn": src, "sessionId": h["sessionId"], "participantId": pid})
    assert sp["participant"]["replicationType"] == "SOURCE"
    assert sim.ok("StopParticipantReplication", {k: req[k] for k in
                                                 ("sourceStageArn", "destinationStageArn", "participantId")}) == {}
    assert sim.ok("GetStage", {"arn": d1})["stage"]["activeSessionId"] == ""
    r = sim.api("StopParticipantReplication", {"sourceStageArn": src, "destinationStageArn": d1,
                                               "participantId": pid})
    assert r.status == 404 and r.error_type == "ResourceNotFoundException"
    assert sim.ok("ListParticipantReplicas", {"sourceStageArn": src, "participantId": pid}) == {"replicas": []}


def test_replication_errors(sim):
    src, dst = make_stage(sim), make_stage(sim)
    quiet = host(sim, src, publish=False)["participantId"]
    req = {"sourceStageArn": src, "destinationStageArn": dst, "participantId": quiet}
    r = sim.api("StartParticipantReplication", req)
    assert r.status == 409 and "is not publishing" in r.json["exceptionMessage"]
    r = sim.api("StartParticipantReplication", dict(req, participantId="ghost"))
    assert r.status == 409 and "is not publishing" in r.json["exceptionMessage"]
    missing = dst[:-1] + ("Q" if dst[-1] != "Q" else "R")   # an ARN no stage has
    r = sim.api("StartParticipantReplication", dict(req, destinationStageArn=missing))
    assert r.status == 404
    r = sim.api("StartParticipantReplication", dict(req, destinationStageArn=src))
    assert r.status == 400
    # 5 concurrent replications per participant.
    pid = host(sim, src)["participantId"]
    dests = [make_stage(sim) for _ in range(6)]
    for d in dests[:5]:
        sim.ok("StartParticipantReplication", {"sourceStageArn": src, "destinationStageArn": d,
                                               "participantId": pid})
    r = sim.api("StartParticipantReplication", {"sourceStageArn": src, "destinationStageArn": dests[5],
                                                "participantId": pid})
    assert r.status == 402 and r.error_type == "ServiceQuotaExceededException"
    # 12 publishers per stage, replicas included.
    full = make_stage(sim)
    for _ in range(12):
        host(sim, full)
    r = sim.raw("POST", "/_sim/participants", b'{"stageArn": "%s"}' % full.encode())
    assert r.status == 402
    r = sim.api("StartParticipantReplication", {"sourceStageArn": src, "destinationStageArn": full,
                                                "participantId": quiet})
    assert r.status == 409
    other = make_stage(sim)
    p2 = host(sim, other)["participantId"]
    r = sim.api("StartParticipantReplication", {"sourceStageArn": other, "destinationStageArn": full,
                                                "participantId": p2})
    assert r.status == 402 and "12 publishers" in r.json["exceptionMessage"]


def test_stage_quota(make_sim):
    s = make_sim("--tps", "0", "--stage-quota", "2")
    s.ok("CreateStage")
    s.ctl("stages", {"id": "Origin"})
    r = s.api("CreateStage")
    assert r.status == 402 and r.error_type == "ServiceQuotaExceededException"


def test_delete_stage_stops_replications(sim):
    src, dst, dst2 = make_stage(sim), make_stage(sim), make_stage(sim)
    pid = host(sim, src)["participantId"]
    for d in (dst, dst2):
        sim.ok("StartParticipantReplication", {"sourceStageArn": src, "destinationStageArn": d,
                                               "participantId": pid})
    sim.ok("DeleteStage", {"arn": dst})
    reps = sim.ok("ListParticipantReplicas", {"sourceStageArn": src, "participantId": pid})["replicas"]
    assert [r["destinationStageArn"] for r in reps] == [dst2]
    sim.ok("DeleteStage", {"arn": src})
    assert sim.ok("GetStage", {"arn": dst2})["stage"]["activeSessionId"] == ""
    state = sim.ctl("state")
    assert state["replications"] == []


def test_reconnect_window_and_clock(sim):
    src, dst = make_stage(sim), make_stage(sim)
    h = host(sim, src)
    pid = h["participantId"]
    sim.ok("StartParticipantReplication", {"sourceStageArn": src, "destinationStageArn": dst,
                                           "participantId": pid, "reconnectWindowSeconds": 60})
    lst = {"sourceStageArn": src, "participantId": pid}
    sim.ctl("participants/disconnect", {"stageArn": src, "participantId": pid})
    sim.ctl("clock", {"advanceSeconds": 30})
    assert sim.ok("ListParticipantReplicas", lst)["replicas"][0]["replicationState"] == "ACTIVE"
    sim.ctl("participants/reconnect", {"stageArn": src, "participantId": pid})
    sim.ctl("clock", {"advanceSeconds": 120})
    assert sim.ok("ListParticipantReplicas", lst)["replicas"][0]["replicationState"] == "ACTIVE"
    # Now leave for longer than the window: STOPPED, and the replica leaves.
    sim.ctl("participants/disconnect", {"stageArn": src, "participantId": pid})
    sim.ctl("clock", {"advanceSeconds": 61})
    assert sim.ok("ListParticipantReplicas", lst)["replicas"][0]["replicationState"] == "STOPPED"
    assert sim.ok("GetStage", {"arn": dst})["stage"]["activeSessionId"] == ""
    # A fresh start is allowed once the host publishes again.
    sim.ctl("participants/reconnect", {"stageArn": src, "participantId": pid})
    sim.ok("StartParticipantReplication", {"sourceStageArn": src, "destinationStageArn": dst,
                                           "participantId": pid})
    sim.ctl("participants/publish", {"stageArn": src, "participantId": pid, "published": False})
    assert sim.ok("ListParticipantReplicas", lst)["replicas"][0]["replicationState"] == "STOPPED"
