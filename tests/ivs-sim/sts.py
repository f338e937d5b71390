"""STS for the simulator: AssumeRole and AssumeRoleWithWebIdentity over the query protocol
(API version 2011-06-15), answering in AWS's XML shape.

AssumeRole must be SigV4-signed (service "sts", the simulator's region) with the simulator's
own key or with credentials this STS issued earlier (role chains); AssumeRoleWithWebIdentity
is accepted unsigned with a token from the configured list. Every request form is checked
against Debian's STS service model (python3-botocore), read at start-up; without it STS
answers 500 with a message naming the missing file.

The credentials issued are then accepted by the IVS side, with their session token, until
they expire (403 ExpiredTokenException after). With "ivsRequiresSts" the IVS side accepts
only issued credentials.

Control plane: POST /_sim/sts {"denyRoles"?, "durationSeconds"?, "webIdentityTokens"?,
"ivsRequiresSts"?} changes the settings and returns them; GET /_sim/sts returns the settings,
every STS call ({"action","roleArn","roleSessionName","durationSeconds","externalId",
"sourceAccessKey","signed","webIdentityToken","status","code","issuedAccessKey"}) and the
access keys the IVS side saw ({"ivsKeys": {key: calls}}).
"""
import datetime
import importlib.util
import json
import os
import re
import secrets
import string
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

import sigv4

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
DEBIAN_MODEL = "/usr/lib/python3/dist-packages/botocore/data/sts/2011-06-15/service-2.json"
CLOCK_SKEW = 300
ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)")


def model_path():
    if os.path.exists(DEBIAN_MODEL):
        return DEBIAN_MODEL
    spec = importlib.util.find_spec("botocore")
    if spec and spec.origin:
        p = os.path.join(os.path.dirname(spec.origin), "data", "sts", "2011-06-15", "service-2.json")
        if os.path.exists(p):
            return p
    return None


def _pattern(p):
    # The model writes astral code points as \uXXXXX; Python wants \UXXXXXXXX.
    return re.compile(re.sub(r"\\u([0-9A-Fa-f]{5,6})", lambda m: "\\U%08X" % int(m.group(1), 16), p))


class Model:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        self.version = doc["metadata"]["apiVersion"]
        self.protocol = doc["metadata"]["protocol"]
        self.operations = doc["operations"]
        self.shapes = doc["shapes"]

    def validate(self, action, params):
        """None, or (code, message) as STS would answer."""
        op = self.operations.get(action)
        if op is None:
            return ("InvalidAction", f"Could not find operation {action} for version {self.version}")
        shape = self.shapes[op["input"]["shape"]]
        members = shape.get("members", {})
        problems = []
        for name in params:
            if name not in members:
                return ("ValidationError", f"Unknown parameter {name} for {action}")
        for name in shape.get("required", []):
            if name not in params:
                return ("MissingParameter", f"The request must contain the parameter {name}")
        for name, value in params.items():
            ms = self.shapes[members[name]["shape"]]
            path = name[0].lower() + name[1:]
            if ms["type"] == "string":
                if "min" in ms and len(value) < ms["min"]:
                    problems.append(f"Value at '{path}' failed to satisfy constraint: Member must "
                                    f"have length greater than or equal to {ms['min']}")
                if "max" in ms and len(value) > ms["max"]:
                    problems.append(f"Value at '{path}' failed to satisfy constraint: Member must "
                                    f"have length less than or equal to {ms['max']}")
                if "pattern" in ms and not _pattern(ms["pattern"]).fullmatch(value):
                    problems.append(f"Value at '{path}' failed to satisfy constraint: Member must "
                                    f"satisfy regular expression pattern: {ms['pattern']}")
            elif ms["type"] == "integer":
                if not re.fullmatch(r"-?\d+", value):
                    problems.append(f"Value '{value}' at '{path}' is not an integer")
                    continue
                v = int(value)
                if "min" in ms and v < ms["min"] or "max" in ms and v > ms["max"]:
                    problems.append(f"Value '{v}' at '{path}' failed to satisfy constraint: Member "
                                    f"must have value between {ms.get('min')} and {ms.get('max')}")
            else:
                problems.append(f"'{path}' ({ms['type']}) is not supported by the simulator")
        if problems:
            n = len(problems)
            return ("ValidationError", f"{n} validation error{'s' if n > 1 else ''} detected: "
                    + "; ".join(problems))
        return None


def _iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Sts:
    def __init__(self, sim):
        self.sim = sim
        self.lock = threading.Lock()
        path = model_path()
        self.model = Model(path) if path else None
        self.issued = {}
        self.calls = []
        self.ivs_keys = {}
        self.settings = {"denyRoles": [], "durationSeconds": None, "webIdentityTokens": [],
                         "ivsRequiresSts": False}

    # ---- the IVS side: which credentials it accepts ------------------------------------------
    def ivs_credentials(self, access_key):
        """(secret, session_token, None), or (None, None, (code, message))."""
        a = self.sim.args
        with self.lock:
            self.ivs_keys[access_key] = self.ivs_keys.get(access_key, 0) + 1
            cred = self.issued.get(access_key)
            requires = self.settings["ivsRequiresSts"]
        if cred is not None:
            if time.time() >= cred["expires"]:
                return None, None, ("ExpiredTokenException",
                                    "The security token included in the request is expired")
            return cred["secret"], cred["token"], None
        if access_key == a.access_key and not requires:
            return a.secret_key, a.session_token, None
        return None, None, ("UnrecognizedClientException",
                            "The security token included in the request is invalid.")

    # ---- SigV4 for AssumeRole ------------------------------------------------------------------
    def _verify(self, handler, headers, body):
        """(source access key, None) or (None, (status, code, message))."""
        auth = headers.get("authorization")
        if not auth:
            return None, (403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        parsed = sigv4.parse_authorization(auth)
        if parsed is None:
            return None, (400, "IncompleteSignature", "Authorization header is malformed")
        a = self.sim.args
        akid = parsed["access_key"]
        with self.lock:
            cred = self.issued.get(akid)
        if cred is not None:
            if time.time() >= cred["expires"]:
                return None, (400, "ExpiredToken", "The security token included in the request is expired")
            secret, token = cred["secret"], cred["token"]
        elif akid == a.access_key:
            secret, token = a.secret_key, a.session_token
        else:
            return None, (403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if (headers.get("x-amz-security-token") or None) != (token or None):
            return None, (403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if parsed["service"] != "sts" or parsed["region"] != a.region:
            return None, (403, "SignatureDoesNotMatch",
                          f"Credential should be scoped to a valid region and service 'sts' in '{a.region}'")
        need = {"host", "x-amz-date"} | ({"x-amz-security-token"} if token else set())
        if not need.issubset(parsed["signed"]):
            return None, (403, "SignatureDoesNotMatch", "Signed headers must include " + ", ".join(sorted(need)))
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            return None, (400, "IncompleteSignature", "x-amz-date is missing or malformed")
        if abs(when - time.time()) > CLOCK_SKEW or parsed["date8"] != amz_date[:8]:
            return None, (403, "SignatureDoesNotMatch", "Signature expired or dated wrongly")
        path, query = sigv4.split_target(handler.path)
        try:
            creq = sigv4.canonical_request(handler.command, path, query, headers.items_all,
                                           parsed["signed"], sigv4.sha256_hex(body))
        except KeyError as missing:
            return None, (403, "SignatureDoesNotMatch", f"Signed header {missing} is not present")
        sts = sigv4.string_to_sign(amz_date, sigv4.scope(parsed["date8"], a.region, "sts"), creq)
        if sigv4.signature(secret, parsed["date8"], a.region, "sts", sts) != parsed["signature"]:
            return None, (403, "SignatureDoesNotMatch", "The request signature we calculated does "
                          "not match the signature you provided.")
        return akid, None

    # ---- answers -------------------------------------------------------------------------------
    @staticmethod
    def _send(handler, status, xml):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        handler.end_headers()
        handler.wfile.write(body)

    def _error(self, handler, action, record, status, code, message):
        rid = str(uuid.uuid4())
        # Recorded before the answer goes out: a client that has its answer finds the record.
        self._record(action, record, status, code)
        self._send(handler, status,
                   f'<ErrorResponse xmlns="{NS}">\n  <Error>\n    <Type>'
                   f'{"Receiver" if status >= 500 else "Sender"}</Type>\n    <Code>{escape(code)}'
                   f'</Code>\n    <Message>{escape(message)}</Message>\n  </Error>\n  <RequestId>'
                   f'{rid}</RequestId>\n</ErrorResponse>\n')

    def _record(self, action, record, status, code):
        record.update(status=status, code=code)
        with self.lock:
            self.calls.append(record)
        with self.sim.lock:
            self.sim.count(action or "Unknown", code)

    def handle(self, handler, body):
        headers = handler_headers(handler)
        record = {"action": None, "roleArn": None, "roleSessionName": None, "durationSeconds": None,
                  "externalId": None, "sourceAccessKey": None, "signed": bool(headers.get("authorization")),
                  "webIdentityToken": None, "issuedAccessKey": None}
        if self.model is None:
            return self._error(handler, None, record, 500, "InternalFailure",
                               f"the simulator needs the STS model at {DEBIAN_MODEL} (python3-botocore)")
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._error(handler, None, record, 400, "InvalidParameterValue",
                               "Content-Type must be application/x-www-form-urlencoded")
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                           strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return self._error(handler, None, record, 400, "MalformedQueryString", "malformed form body")
        params = {}
        for k, v in pairs:
            if k in params:
                return self._error(handler, None, record, 400, "MalformedQueryString", f"{k} appears twice")
            params[k] = v
        action = params.pop("Action", None)
        version = params.pop("Version", None)
        record["action"] = action
        if action is None:
            return self._error(handler, None, record, 400, "MissingAction", "Action is missing")
        if version != self.model.version:
            return self._error(handler, action, record, 400, "InvalidParameterValue",
                               f"Version must be {self.model.version}, not {version!r}")
        bad = self.model.validate(action, params)
        if bad is not None:
            return self._error(handler, action, record, 400, *bad)
        record.update(roleArn=params.get("RoleArn"), roleSessionName=params.get("RoleSessionName"),
                      durationSeconds=int(params["DurationSeconds"]) if "DurationSeconds" in params else None,
                      externalId=params.get("ExternalId"), webIdentityToken=params.get("WebIdentityToken"))
        if action == "AssumeRole":
            source, problem = self._verify(handler, headers, body)
            if problem is not None:
                return self._error(handler, action, record, *problem)
            record["sourceAccessKey"] = source
        elif action == "AssumeRoleWithWebIdentity":
            with self.lock:
                tokens = list(self.settings["webIdentityTokens"])
            if params["WebIdentityToken"] not in tokens:
                return self._error(handler, action, record, 400, "InvalidIdentityToken",
                                   "The web identity token that was passed could not be validated by AWS.")
        else:
            return self._error(handler, action, record, 400, "InvalidAction",
                               f"{action} is not served by this simulator")
        m = ROLE_ARN.fullmatch(params["RoleArn"])
        if m is None:
            return self._error(handler, action, record, 400, "ValidationError",
                               f"{params['RoleArn']} is invalid")
        with self.lock:
            denied = params["RoleArn"] in self.settings["denyRoles"]
            cap = self.settings["durationSeconds"]
        if denied:
            who = record["sourceAccessKey"] or "the web identity"
            return self._error(handler, action, record, 403, "AccessDenied",
                               f"User: {who} is not authorized to perform: sts:{action} on "
                               f"resource: {params['RoleArn']}")
        duration = int(params.get("DurationSeconds", 3600))
        if cap:
            duration = min(duration, int(cap))
        expires = time.time() + duration
        alnum = string.ascii_uppercase + string.digits
        akid = "ASIA" + "".join(secrets.choice(alnum) for _ in range(16))
        cred = {"secret": secrets.token_urlsafe(30)[:40], "token": "IQoJ" + secrets.token_urlsafe(96),
                "expires": expires, "roleArn": params["RoleArn"]}
        with self.lock:
            self.issued[akid] = cred
        record["issuedAccessKey"] = akid
        session = params["RoleSessionName"]
        account, role_name = m.group(1), m.group(2)
        user = (f"    <AssumedRoleUser>\n      <AssumedRoleId>AROA{account}EXAMPLE:{escape(session)}"
                f"</AssumedRoleId>\n      <Arn>arn:aws:sts::{account}:assumed-role/{escape(role_name)}/"
                f"{escape(session)}</Arn>\n    </AssumedRoleUser>\n")
        creds = (f"    <Credentials>\n      <AccessKeyId>{akid}</AccessKeyId>\n      <SecretAccessKey>"
                 f"{escape(cred['secret'])}</SecretAccessKey>\n      <SessionToken>{escape(cred['token'])}"
                 f"</SessionToken>\n      <Expiration>{_iso(expires)}</Expiration>\n    </Credentials>\n")
        extra = ("    <PackedPolicySize>6</PackedPolicySize>\n" if action == "AssumeRole" else
                 "    <SubjectFromWebIdentityToken>system:serviceaccount:default:ivs-autoscaler"
                 "</SubjectFromWebIdentityToken>\n    <Audience>sts.amazonaws.com</Audience>\n"
                 "    <Provider>oidc.example</Provider>\n")
        self._record(action, record, 200, None)
        self._send(handler, 200,
                   f'<{action}Response xmlns="{NS}">\n  <{action}Result>\n{user}{creds}{extra}'
                   f'  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{uuid.uuid4()}'
                   f'</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n')

    # ---- control plane -------------------------------------------------------------------------
    def control(self, method, req):
        """(status, object)."""
        if method == "POST":
            for key, kind in (("denyRoles", list), ("webIdentityTokens", list),
                              ("ivsRequiresSts", bool), ("durationSeconds", (int, type(None)))):
                if key in req:
                    if not isinstance(req[key], kind) or (kind is list and not all(
                            isinstance(x, str) for x in req[key])):
                        return 400, {"error": f"{key} has the wrong type"}
            unknown = set(req) - {"denyRoles", "webIdentityTokens", "ivsRequiresSts", "durationSeconds"}
            if unknown:
                return 400, {"error": f"unknown settings {sorted(unknown)}"}
            with self.lock:
                self.settings.update(req)
        elif method != "GET":
            return 405, {"error": "GET or POST"}
        with self.lock:
            return 200, {"settings": dict(self.settings), "calls": list(self.calls),
                         "ivsKeys": dict(self.ivs_keys), "model": self.model is not None}


def handler_headers(handler):
    import server  # the Headers view lives there; imported late to avoid a cycle
    return server.Headers(handler.headers)
