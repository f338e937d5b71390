"""The simulator's STS: a real botocore STS client (Debian's model) against it, SigV4 and form
checks, role chains, web identity, and the IVS side accepting only the credentials it issued."""
import http.client
import time

import pytest

from conftest import AK, SK, Sim
import sts as sts_mod

try:
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError
    HAVE_BOTOCORE = True
except ImportError:
    HAVE_BOTOCORE = False

pytestmark = pytest.mark.skipif(not HAVE_BOTOCORE or sts_mod.model_path() is None,
                                reason="python3-botocore (with the STS model) is not installed "
                                       "(make deps installs it)")

ROLE_A = "arn:aws:iam::111111111111:role/A"
ROLE_B = "arn:aws:iam::222222222222:role/B"


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path, "--tps", "0")
    yield s
    assert s.stop() == 0


def sts_client(sim, akid=AK, secret=SK, token=None):
    return botocore.session.get_session().create_client(
        "sts", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{sim.port}",
        aws_access_key_id=akid, aws_secret_access_key=secret, aws_session_token=token,
        config=Config(retries={"max_attempts": 1}))


def test_assume_role_then_ivs_with_the_issued_credentials(sim):
    sim.ctl("sts", {"ivsRequiresSts": True})
    # The simulator's own key is refused by IVS now.
    assert sim.api("ListStages", {}).error_type == "UnrecognizedClientException"
    c = sts_client(sim).assume_role(RoleArn=ROLE_A, RoleSessionName="s1", ExternalId="ext-1",
                                    DurationSeconds=900)["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA")
    r = sim.api("ListStages", {}, access_key=c["AccessKeyId"], secret=c["SecretAccessKey"],
                token=c["SessionToken"])
    assert r.status == 200, r.json
    # The session token is required with them.
    r = sim.api("ListStages", {}, access_key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=None)
    assert r.error_type == "UnrecognizedClientException"
    state = sim.ctl("sts")
    call = state["calls"][-1]
    assert (call["action"], call["roleArn"], call["externalId"], call["durationSeconds"],
            call["sourceAccessKey"], call["signed"]) == ("AssumeRole", ROLE_A, "ext-1", 900, AK, True)
    assert state["ivsKeys"][c["AccessKeyId"]] >= 1


def test_role_chain_signed_with_issued_credentials(sim):
    b = sts_client(sim).assume_role(RoleArn=ROLE_B, RoleSessionName="bb")["Credentials"]
    a = sts_client(sim, b["AccessKeyId"], b["SecretAccessKey"], b["SessionToken"]).assume_role(
        RoleArn=ROLE_A, RoleSessionName="aa")["Credentials"]
    assert sim.ctl("sts")["calls"][-1]["sourceAccessKey"] == b["AccessKeyId"]
    assert a["AccessKeyId"] != b["AccessKeyId"]


def test_signature_and_denial_errors(sim):
    with pytest.raises(ClientError) as e:
        sts_client(sim, AK, "wrong").assume_role(RoleArn=ROLE_A, RoleSessionName="ss")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    sim.ctl("sts", {"denyRoles": [ROLE_A]})
    with pytest.raises(ClientError) as e:
        sts_client(sim).assume_role(RoleArn=ROLE_A, RoleSessionName="ss")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert ROLE_A in e.value.response["Error"]["Message"]
    assert sim.ctl("counters")["operations"]["AssumeRole"]["errors"] == {
        "SignatureDoesNotMatch": 1, "AccessDenied": 1}


def test_form_checked_against_the_model(sim):
    def post(form, signed=True):
        body = form.encode()
        headers = [("Host", sim.host), ("Content-Type", "application/x-www-form-urlencoded")]
        if signed:
            import datetime
            import sigv4
            amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            added, _, _, _ = sigv4.sign("POST", "/", headers, body, AK, SK, "us-east-1", "sts", amz, None)
            headers += added
        conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
        try:
            conn.request("POST", "/", body=body, headers=dict(headers))
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    status, raw = post("Action=AssumeRole&Version=2011-06-15&RoleArn=" + ROLE_A + "&RoleSessionName=a%20b")
    assert status == 400 and b"<Code>ValidationError</Code>" in raw and b"roleSessionName" in raw
    status, raw = post("Action=AssumeRole&Version=2011-06-15&RoleArn=" + ROLE_A + "&RoleSessionName=ok"
             "&DurationSeconds=899")
    assert status == 400 and b"durationSeconds" in raw
    status, raw = post("Action=AssumeRole&Version=2011-06-15&RoleSessionName=ok")
    assert status == 400 and b"<Code>MissingParameter</Code>" in raw
    status, raw = post("Action=AssumeRole&Version=2011-06-15&RoleArn=" + ROLE_A + "&RoleSessionName=ok&Bogus=1")
    assert status == 400 and b"Unknown parameter Bogus" in raw
    status, raw = post("Action=AssumeRole&Version=2010-01-01&RoleArn=" + ROLE_A + "&RoleSessionName=ok")
    assert status == 400 and b"Version must be 2011-06-15" in raw
    status, raw = post("Action=AssumeRole&Version=2011-06-15&RoleArn=" + ROLE_A + "&RoleSessionName=ok", signed=False)
    assert status == 403 and b"MissingAuthenticationToken" in raw


def test_web_identity_unsigned(sim):
    sim.ctl("sts", {"webIdentityTokens": ["jwt-1"], "durationSeconds": 60})
    s = botocore.session.get_session()
    c = s.create_client("sts", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{sim.port}",
                        aws_access_key_id="x", aws_secret_access_key="y")
    out = c.assume_role_with_web_identity(RoleArn=ROLE_A, RoleSessionName="pod",
                                          WebIdentityToken="jwt-1")
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    # The shortened duration the simulator grants (60 s instead of the default hour).
    left = out["Credentials"]["Expiration"].timestamp() - time.time()
    assert 0 < left <= 61
    call = sim.ctl("sts")["calls"][-1]
    assert (call["signed"], call["webIdentityToken"]) == (False, "jwt-1")
    with pytest.raises(ClientError) as e:
        c.assume_role_with_web_identity(RoleArn=ROLE_A, RoleSessionName="pod", WebIdentityToken="nope")
    assert e.value.response["Error"]["Code"] == "InvalidIdentityToken"
