"""Fidelity: a real botocore ivs-realtime client (saved model from ../shared) against the simulator."""
import os

import pytest

from conftest import AK, SHARED, SK, Sim

MODELS = os.path.join(SHARED, "aws", "models")

try:
    import botocore.session
    from botocore.config import Config
    HAVE_BOTOCORE = True
except ImportError:
    HAVE_BOTOCORE = False

pytestmark = [
    pytest.mark.skipif(not HAVE_BOTOCORE, reason="python3-botocore is not installed (make deps installs it)"),
    pytest.mark.skipif(not os.path.isdir(os.path.join(MODELS, "ivs-realtime")),
                       reason=f"saved ivs-realtime model not present under {MODELS}"),
]


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DATA_PATH", MODELS)
    sim = Sim(tmp_path, "--tps", "0")
    session = botocore.session.get_session()
    c = session.create_client("ivs-realtime", region_name="us-east-1",
                              endpoint_url=f"http://127.0.0.1:{sim.port}",
                              aws_access_key_id=AK, aws_secret_access_key=SK,
                              config=Config(retries={"max_attempts": 1}))
    c.sim = sim
    yield c
    assert sim.stop() == 0


def test_stage_flow(client):
    st = client.create_stage(name="bc", tags={"ivs-autoscaler:managed": "true"})["stage"]
    arn = st["arn"]
    assert client.get_stage(arn=arn)["stage"]["tags"] == {"ivs-autoscaler:managed": "true"}
    client.create_stage()
    first = client.list_stages(maxResults=1)
    second = client.list_stages(maxResults=1, nextToken=first["nextToken"])
    assert len(first["stages"]) == 1 and len(second["stages"]) == 1 and "nextToken" not in second
    client.tag_resource(resourceArn=arn, tags={"a": "b"})
    client.untag_resource(resourceArn=arn, tagKeys=["ivs-autoscaler:managed"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "b"}
    client.update_stage(arn=arn, name="bc2")
    tok = client.create_participant_token(stageArn=arn)["participantToken"]
    assert tok["expirationTime"].year >= 2024
    client.delete_stage(arn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_stage(arn=arn)


def test_replication_flow_and_errors(client):
    src = client.create_stage()["stage"]["arn"]
    dst = client.create_stage()["stage"]["arn"]
    j = client.sim.ctl("participants", {"stageArn": src})
    pid = j["participantId"]
    sessions = client.list_stage_sessions(stageArn=src)["stageSessions"]
    assert sessions[0]["sessionId"] == j["sessionId"] and sessions[0]["startTime"].year >= 2024
    client.get_stage_session(stageArn=src, sessionId=j["sessionId"])
    parts = client.list_participants(stageArn=src, sessionId=j["sessionId"], filterByPublished=True)
    assert parts["participants"][0]["participantId"] == pid
    client.start_participant_replication(sourceStageArn=src, destinationStageArn=dst,
                                         participantId=pid, reconnectWindowSeconds=10)
    reps = client.list_participant_replicas(sourceStageArn=src, participantId=pid)["replicas"]
    assert reps[0]["replicationState"] == "ACTIVE"
    dsid = reps[0]["destinationSessionId"]
    p = client.get_participant(stageArn=dst, sessionId=dsid, participantId=pid)["participant"]
    assert p["replicationType"] == "REPLICA" and p["firstJoinTime"].year >= 2024
    with pytest.raises(client.exceptions.ConflictException) as e:
        client.start_participant_replication(sourceStageArn=src, destinationStageArn=dst, participantId=pid)
    assert "already replicating" in e.value.response["exceptionMessage"]  # modelled member
    others = [client.create_stage()["stage"]["arn"] for _ in range(5)]
    for d in others[:4]:
        client.start_participant_replication(sourceStageArn=src, destinationStageArn=d, participantId=pid)
    with pytest.raises(client.exceptions.ServiceQuotaExceededException):
        client.start_participant_replication(sourceStageArn=src, destinationStageArn=others[4],
                                             participantId=pid)
    client.stop_participant_replication(sourceStageArn=src, destinationStageArn=dst, participantId=pid)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.stop_participant_replication(sourceStageArn=src, destinationStageArn=dst, participantId=pid)
    with pytest.raises(client.exceptions.ValidationException):
        client.list_stages(maxResults=500)
    client.disconnect_participant(stageArn=src, participantId=pid)


def test_auth_and_throttle_errors(client, tmp_path):
    from botocore.exceptions import ClientError
    bad = botocore.session.get_session().create_client(
        "ivs-realtime", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{client.sim.port}",
        aws_access_key_id=AK, aws_secret_access_key="wrong", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        bad.list_stages()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    client.sim.ctl("faults", {"tps": 1})
    client.list_stages()
    with pytest.raises(ClientError) as e:
        for _ in range(5):
            client.list_stages()
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
