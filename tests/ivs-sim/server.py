"""HTTP front of the simulator: routing, SigV4 checks, throttling, faults, control plane, log."""
import datetime
import http.server
import json
import random
import socket
import threading
import time
import urllib.parse
import uuid

import model as model_mod
import shapes
import sigv4
import sts as sts_mod

ROUTES_POST = {op for op in shapes.INPUTS if op not in
               ("TagResource", "UntagResource", "ListTagsForResource")}
MAX_BODY = 1 << 20
# Operations whose request-log lines carry a "detail" (target, its tags, ACTIVE replications).
MUTATING = {"CreateStage", "DeleteStage", "StartParticipantReplication",
            "StopParticipantReplication"}
CLOCK_SKEW = 300


class Sim:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.model = model_mod.Model(args.region, args.account, args.stage_quota, args.seed)
        self.clock_offset = 0.0
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None
        self.log_lock = threading.Lock()
        self.stopping = threading.Event()
        self.pause_cv = threading.Condition()
        self.reset_runtime()
        self.faults.update(failRate=args.fail_rate, latencyMs=args.latency_ms, tps=args.tps)
        self.fault_rng = random.Random(args.seed)
        self.sts = sts_mod.Sts(self)

    def reset_runtime(self):
        self.faults = {"failRate": 0.0, "latencyMs": 0, "tps": self.args.tps,
                       "seed": self.args.seed, "hangSeconds": 60, "failOperations": [],
                       "dropAfterCommitRate": 0.0, "dropAfterCommit": []}
        self.fault_rng = random.Random(self.args.seed)
        self.buckets = {}
        self.counters = {}
        self.total = 0
        with self.pause_cv:
            self.pause = {"armed": False, "paused": False, "held": 0, "operation": None, "left": 0}
            self.pause_cv.notify_all()

    def now(self):
        return time.time() + self.clock_offset

    # ---- throttling: one token bucket per operation, burst = tps ---------------------------
    def take_token(self, op):
        tps = self.faults["tps"]
        if not tps or tps <= 0:
            return True
        t = time.monotonic()
        tokens, last = self.buckets.get(op, (float(tps), t))
        tokens = min(float(tps), tokens + (t - last) * tps)
        if tokens < 1.0:
            self.buckets[op] = (tokens, t)
            return False
        self.buckets[op] = (tokens - 1.0, t)
        return True

    def count(self, op, error):
        c = self.counters.setdefault(op, {"calls": 0, "ok": 0, "errors": {}})
        c["calls"] += 1
        self.total += 1
        if error is None:
            c["ok"] += 1
        else:
            c["errors"][error] = c["errors"].get(error, 0) + 1

    def log(self, op, status, error, started, sig_ok, detail=None, stage=None,
            access_key=None):
        if self.log_file is None:
            return
        entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                 "operation": op, "status": status, "errorType": error,
                 "latencyMs": round((time.monotonic() - started) * 1000, 3),
                 "signatureOk": sig_ok, "accessKeyId": access_key}
        if detail:
            entry["detail"] = detail
        if stage:
            entry["stage"] = stage
        line = json.dumps(entry)
        with self.log_lock:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    # ---- pause / resume ----------------------------------------------------------------
    def wait_if_paused(self):
        with self.pause_cv:
            if not self.pause["paused"]:
                return
            self.pause["held"] += 1
            while self.pause["paused"] and not self.stopping.is_set():
                self.pause_cv.wait(0.5)
            self.pause["held"] -= 1

    def answered_ok(self, op):
        with self.pause_cv:
            p = self.pause
            if p["armed"] and p["operation"] == op:
                p["left"] -= 1
                if p["left"] <= 0:
                    p["armed"], p["paused"] = False, True

    # ---- SigV4 -------------------------------------------------------------------------
    def check_auth(self, method, target, headers, body):
        """Returns None when the signature is valid, else (code, message)."""
        auth = headers.get("authorization")
        if not auth:
            return ("MissingAuthenticationTokenException", "Missing Authentication Token")
        parsed = sigv4.parse_authorization(auth)
        if parsed is None:
            return ("IncompleteSignatureException", "Authorization header requires 'Credential', "
                    "'SignedHeaders' and 'Signature' with the AWS4-HMAC-SHA256 algorithm")
        a = self.args
        # --extra-credential keys are plain long-term keys (no session token), told apart in the log.
        extra = dict(e.partition(":")[::2] for e in (a.extra_credential or ()))
        if parsed["access_key"] in extra:
            secret_key, session_token, bad = extra[parsed["access_key"]], None, None
        else:
            secret_key, session_token, bad = self.sts.ivs_credentials(parsed["access_key"])
        if bad is not None:
            return bad
        token = headers.get("x-amz-security-token")
        if session_token and token != session_token or not session_token and token:
            return ("UnrecognizedClientException", "The security token included in the request is invalid.")
        if parsed["service"] != "ivs" or parsed["region"] != a.region:
            return ("InvalidSignatureException", f"Credential should be scoped to a valid region and "
                    f"service 'ivs' in '{a.region}'")
        signed = parsed["signed"]
        need = {"host", "x-amz-date"} | ({"x-amz-security-token"} if session_token else set())
        if not need.issubset(signed):
            return ("InvalidSignatureException", "Signed headers must include " + ", ".join(sorted(need)))
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            return ("IncompleteSignatureException", "x-amz-date is missing or malformed")
        if abs(when - time.time()) > CLOCK_SKEW:
            return ("InvalidSignatureException", f"Signature expired: {amz_date} is now earlier or "
                    "later than 5 minutes from the current time")
        if parsed["date8"] != amz_date[:8]:
            return ("InvalidSignatureException", "Credential date does not match x-amz-date")
        path, query = sigv4.split_target(target)
        try:
            creq = sigv4.canonical_request(method, path, query, headers.items_all, signed,
                                           sigv4.sha256_hex(body))
        except KeyError as missing:
            return ("InvalidSignatureException", f"Signed header {missing} is not present")
        sc = sigv4.scope(parsed["date8"], a.region, "ivs")
        sts = sigv4.string_to_sign(amz_date, sc, creq)
        if sigv4.signature(secret_key, parsed["date8"], a.region, "ivs", sts) != parsed["signature"]:
            return ("InvalidSignatureException", "The request signature we calculated does not match "
                    "the signature you provided. Check your AWS Secret Access Key and signing method.")
        return None

    # ---- the API -------------------------------------------------------------------------
    OPS = {"CreateStage": "create_stage", "GetStage": "get_stage", "UpdateStage": "update_stage",
           "DeleteStage": "delete_stage", "ListStages": "list_stages",
           "ListStageSessions": "list_stage_sessions", "GetStageSession": "get_stage_session",
           "ListParticipants": "list_participants", "GetParticipant": "get_participant",
           "CreateParticipantToken": "create_participant_token",
           "DisconnectParticipant": "disconnect_participant",
           "StartParticipantReplication": "start_replication",
           "StopParticipantReplication": "stop_replication",
           "ListParticipantReplicas": "list_replicas", "TagResource": "tag_resource",
           "UntagResource": "untag_resource", "ListTagsForResource": "list_tags"}

    def call(self, op, req):
        """Run one API operation; returns (output, detail for the request log)."""
        with self.lock:
            now = self.now()
            self.model.tick(now)
            detail = self.detail(op, req)
            out = getattr(self.model, self.OPS[op])(now, req)
            if op == "CreateStage":
                detail["arn"] = out["stage"]["arn"]
            return out, detail

    def detail(self, op, req):
        """What a checker of the request log needs to judge a mutating call: its target, the
        target's tags and, for DeleteStage, the replications still ACTIVE into it."""
        d = {k: req[k] for k in ("arn", "sourceStageArn", "destinationStageArn", "participantId",
                                  "name") if isinstance(req.get(k), str)}
        target = d.get("arn") if op == "DeleteStage" else d.get("destinationStageArn")
        stage = self.model.stages.get(target) if target else None
        if stage is not None and op in ("DeleteStage", "StartParticipantReplication"):
            d["tags"] = dict(stage["tags"])
        if stage is not None and op == "DeleteStage":
            d["activeInto"] = [list(k) for k in self.model.active_into(target)]
        return d


class Headers:
    """Case-insensitive view that keeps every (name, value) pair for signing."""

    def __init__(self, msg):
        self.items_all = list(msg.items())
        self.map = {}
        for k, v in self.items_all:
            self.map.setdefault(k.lower(), v)

    def get(self, name, default=None):
        return self.map.get(name, default)


def route(method, path, query):
    """Returns (operation, resourceArn or None) or (None, None)."""
    if path.startswith("/tags/"):
        arn = urllib.parse.unquote(path[len("/tags/"):])
        op = {"POST": "TagResource", "GET": "ListTagsForResource", "DELETE": "UntagResource"}.get(method)
        return op, arn
    name = path[1:]
    if method == "POST" and name in ROUTES_POST:
        return name, None
    return None, None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the client's
    # delayed ACK would add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server_version = "ivs-sim"
    sys_version = ""

    def log_message(self, fmt, *args):   # quiet: the request log is --log
        pass

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > MAX_BODY:
                    raise ValueError("body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(n) if n else b""

    def send(self, status, obj, extra=()):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def dispatch(self):
        sim = self.server.sim
        try:
            body = self.read_body()
        except ValueError:
            self.send(400, {"message": "malformed request body"})
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        if path == "/" and self.command == "POST":
            return sim.sts.handle(self, body)
        if path.startswith("/_sim/"):
            return self.control(sim, path, body)
        self.api(sim, path, query, body)

    def drop(self):
        """Close the connection without an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- API requests ----------------------------------------------------------------------
    def api(self, sim, path, query, body):
        started = time.monotonic()
        op, arn = route(self.command, path, query)
        opname = op or "Unknown"
        parsed_auth = sigv4.parse_authorization(self.headers.get("Authorization") or "")
        akid = parsed_auth["access_key"] if parsed_auth else None

        def fail(status, code, message, key="exceptionMessage", sig_ok=True):
            # Counted and logged before the answer goes out: a client that has its answer
            # finds the call in the log.
            with sim.lock:
                sim.count(opname, code)
            sim.log(opname, status, code, started, sig_ok, access_key=akid)
            self.send(status, {key: message}, [("x-amzn-ErrorType", code)])

        sim.wait_if_paused()
        headers = Headers(self.headers)
        bad = sim.check_auth(self.command, self.path, headers, body)
        if bad is not None:
            code, message = bad
            status = 403 if code != "IncompleteSignatureException" else 400
            return fail(status, code, message, key="message", sig_ok=False)
        if op is None:
            return fail(404, "UnknownOperationException",
                        f"{self.command} {path} is not an operation this simulator serves", key="message")
        with sim.lock:
            allowed = sim.take_token(op)
            f = dict(sim.faults)
            draw = sim.fault_rng.random()
            kind = sim.fault_rng.choice(("500", "503", "drop", "hang"))
            # Drawn only when asked for, so that the sequences of the other faults stay as
            # they were for a given seed.
            late = (op in f["dropAfterCommit"] or
                    (f["dropAfterCommitRate"] and sim.fault_rng.random() < f["dropAfterCommitRate"]))
        if not allowed:
            return fail(429, "ThrottlingException", "Rate exceeded", key="message")
        if f["latencyMs"]:
            sim.stopping.wait(f["latencyMs"] / 1000.0)
        if opname in f["failOperations"]:
            return fail(500, "InternalServerException", "Unexpected error during processing of request.")
        if f["failRate"] and draw < f["failRate"]:
            if kind == "500":
                return fail(500, "InternalServerException", "Unexpected error during processing of request.")
            if kind == "503":
                return fail(503, "ServiceUnavailable", "Service is unavailable, please retry.", key="message")
            if kind == "hang":
                sim.stopping.wait(f["hangSeconds"])
            with sim.lock:
                sim.count(opname, "ConnectionDropped" if kind == "drop" else "Hung")
            sim.log(opname, 0, "ConnectionDropped" if kind == "drop" else "Hung", started, True,
                    access_key=akid)
            self.drop()
            return
        if op in ("ListTagsForResource", "UntagResource"):
            req = {}
            if body.strip():
                return fail(400, "ValidationException", f"{op} takes no request body")
        else:
            try:
                req = json.loads(body.decode("utf-8")) if body.strip() else {}
            except (UnicodeDecodeError, ValueError):
                return fail(400, "SerializationException", "Request body is not valid JSON")
            if not isinstance(req, dict):
                return fail(400, "SerializationException", "Request body must be a JSON object")
        if arn is not None:
            if "resourceArn" in req:
                return fail(400, "ValidationException", "Unknown member 'resourceArn' in body")
            req["resourceArn"] = arn
        if op == "UntagResource":
            params = urllib.parse.parse_qs(query, keep_blank_values=True)
            unknown = set(params) - {"tagKeys"}
            if unknown:
                return fail(400, "ValidationException", f"Unknown query parameter(s): {sorted(unknown)}")
            if "tagKeys" in params:
                req["tagKeys"] = params["tagKeys"]
        problem = shapes.validate(op, req)
        if problem:
            return fail(400, "ValidationException", problem)
        try:
            out, detail = sim.call(op, req)
        except model_mod.ApiError as e:
            return fail(e.status, e.code, e.message)
        if late:
            # The operation took effect; its answer is lost (the client cannot tell).
            with sim.lock:
                sim.count(op, "DroppedAfterCommit")
            sim.log(op, 0, "DroppedAfterCommit", started, True, detail, akid)
            self.drop()
            return
        with sim.lock:
            sim.count(op, None)
        # The stage the call concerns (the source of a replication; the new stage of a
        # CreateStage), so a test can tell which fleet a call was for.
        stage = req.get("stageArn") or req.get("sourceStageArn") or req.get("arn")
        if op == "CreateStage" and isinstance(out, dict):
            stage = out.get("stage", {}).get("arn")
        sim.log(op, 200, None, started, True, detail if op in MUTATING else None,
                stage if isinstance(stage, str) else None, akid)
        self.send(200, out)
        sim.answered_ok(op)

    # ---- control plane ---------------------------------------------------------------------
    def control(self, sim, path, body):
        try:
            req = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except (UnicodeDecodeError, ValueError):
            return self.send(400, {"error": "body must be a JSON object"})
        try:
            status, out = self.control_op(sim, self.command, path, req)
        except model_mod.ApiError as e:
            status, out = e.status, {"error": e.message, "code": e.code}
        except (KeyError, TypeError, ValueError) as e:
            status, out = 400, {"error": f"bad request: {e!r}"}
        self.send(status, out)

    def control_op(self, sim, method, path, req):
        if path == "/_sim/sts":
            return sim.sts.control(method, req)
        m = sim.model
        if method == "GET":
            if path == "/_sim/health":
                return 200, {"ok": True}
            if path == "/_sim/state":
                with sim.lock:
                    sim.model.tick(sim.now())
                    return 200, m.snapshot() | {"now": model_mod.iso(sim.now())}
            if path == "/_sim/counters":
                with sim.lock:
                    return 200, {"operations": json.loads(json.dumps(sim.counters)), "total": sim.total}
            if path == "/_sim/pause":
                with sim.pause_cv:
                    p = sim.pause
                    return 200, {"armed": p["armed"], "paused": p["paused"], "held": p["held"]}
            return 404, {"error": f"no control endpoint GET {path}"}
        if method != "POST":
            return 405, {"error": "use GET or POST"}
        if path == "/_sim/stages":
            sid = req.get("id")
            if sid is not None and not (isinstance(sid, str) and shapes.re.fullmatch(r"[a-zA-Z0-9-]{1,64}", sid)):
                return 400, {"error": "id must match [a-zA-Z0-9-]{1,64}"}
            tags = req.get("tags") or {}
            if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in tags.items()):
                return 400, {"error": "tags must be an object of strings"}
            with sim.lock:
                stage = m.add_stage(sim.now(), sid, str(req.get("name") or ""), tags)
            return 200, {"arn": stage["arn"]}
        if path == "/_sim/stages/delete":
            with sim.lock:
                m.delete_stage(sim.now(), {"arn": req["arn"]})
            return 200, {}
        if path == "/_sim/participants":
            with sim.lock:
                now = sim.now()
                m.tick(now)
                return 200, m.join(now, req["stageArn"], str(req.get("userId") or ""),
                                   bool(req.get("publish", True)))
        if path in ("/_sim/participants/publish", "/_sim/participants/disconnect",
                    "/_sim/participants/reconnect"):
            with sim.lock:
                now = sim.now()
                m.tick(now)
                if path.endswith("publish"):
                    if not isinstance(req.get("published"), bool):
                        return 400, {"error": "published must be a boolean"}
                    m.set_published(now, req["stageArn"], req["participantId"], req["published"])
                    return 200, {}
                if path.endswith("disconnect"):
                    m.disconnect(now, req["stageArn"], req["participantId"])
                    return 200, {}
                return 200, m.reconnect(now, req["stageArn"], req["participantId"])
        if path == "/_sim/clock":
            n = req.get("advanceSeconds", 0)
            if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 0:
                return 400, {"error": "advanceSeconds must be a non-negative number"}
            with sim.lock:
                sim.clock_offset += n
                m.tick(sim.now())
                return 200, {"now": model_mod.iso(sim.now())}
        if path == "/_sim/faults":
            with sim.lock:
                for key, kind in (("failRate", float), ("latencyMs", float), ("tps", float),
                                  ("hangSeconds", float), ("dropAfterCommitRate", float)):
                    if key in req:
                        v = req[key]
                        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                            return 400, {"error": f"{key} must be a non-negative number"}
                        sim.faults[key] = v
                if "failOperations" in req:
                    ops = req["failOperations"]
                    if not isinstance(ops, list) or any(o not in sim.OPS for o in ops):
                        return 400, {"error": "failOperations must be a list of operation names"}
                    sim.faults["failOperations"] = list(ops)
                if "dropAfterCommit" in req:
                    ops = req["dropAfterCommit"]
                    if not isinstance(ops, list) or any(o not in sim.OPS for o in ops):
                        return 400, {"error": "dropAfterCommit must be a list of operation names"}
                    sim.faults["dropAfterCommit"] = list(ops)
                if "seed" in req:
                    sim.faults["seed"] = req["seed"]
                    sim.fault_rng = random.Random(req["seed"])
                if "tps" in req:
                    sim.buckets = {}
                return 200, dict(sim.faults)
        if path == "/_sim/pause":
            op, n = req.get("operation"), req.get("afterCalls", 0)
            if op not in sim.OPS or isinstance(n, bool) or not isinstance(n, int) or n < 0:
                return 400, {"error": "need a known operation and afterCalls >= 0"}
            with sim.pause_cv:
                if n == 0:
                    sim.pause.update(armed=False, paused=True, operation=op, left=0)
                else:
                    sim.pause.update(armed=True, paused=False, operation=op, left=n)
                return 200, {"armed": sim.pause["armed"], "paused": sim.pause["paused"],
                             "held": sim.pause["held"]}
        if path == "/_sim/resume":
            with sim.pause_cv:
                sim.pause.update(armed=False, paused=False)
                sim.pause_cv.notify_all()
            return 200, {}
        if path == "/_sim/reset":
            with sim.lock:
                m.reset()
                sim.clock_offset = 0.0
                sim.reset_runtime()
            return 200, {}
        return 404, {"error": f"no control endpoint POST {path}"}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
