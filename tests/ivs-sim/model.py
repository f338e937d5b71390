"""The simulated IVS Real-time account: stages, sessions, participants, replications.

Pure state machine: no sockets, no clock, no locking. Every method takes `now` (virtual epoch
seconds) and either returns the output body or raises ApiError. The caller serialises access.
All records are plain dicts so the whole model round-trips through JSON (--state).
"""
import base64
import bisect
import datetime
import random
import string

ALNUM = string.ascii_letters + string.digits
MAX_REPLICATIONS_PER_PARTICIPANT = 5
MAX_PUBLISHERS_PER_STAGE = 12


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(message):
    return ApiError(404, "ResourceNotFoundException", message)


def conflict(message):
    return ApiError(409, "ConflictException", message)


def quota(message):
    return ApiError(402, "ServiceQuotaExceededException", message)


def validation(message):
    return ApiError(400, "ValidationException", message)


def iso(t):
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


def _encode_token(op, position):
    return base64.urlsafe_b64encode(f"{op}|{position}".encode()).decode()


def _decode_token(op, token):
    """Returns the integer position inside an opaque token, or raises ValidationException."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
        tag, _, pos = raw.partition("|")
        if tag != op:
            raise ValueError(tag)
        return int(pos)
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation("The nextToken is invalid or expired") from exc


class Model:
    def __init__(self, region, account, stage_quota=1000, seed=None):
        self.region, self.account, self.stage_quota = region, account, stage_quota
        self.rng = random.Random(seed)
        self.reset()

    def reset(self):
        self.stages = {}          # arn -> stage record (insertion order = creation order)
        self.seqs = []            # sorted creation sequence numbers of live stages
        self.by_seq = {}          # seq -> arn
        self.next_seq = 1
        # (source arn, participant id) -> {destination arn -> replication record}
        self.replications = {}
        self.pending = {}         # (source arn, participant id) -> virtual time its window ends

    # ---- ids and lookups -------------------------------------------------------------
    def _rand(self, n):
        return "".join(self.rng.choice(ALNUM) for _ in range(n))

    def stage_arn(self, stage_id):
        return f"arn:aws:ivs:{self.region}:{self.account}:stage/{stage_id}"

    def _stage(self, arn):
        stage = self.stages.get(arn)
        if stage is None:
            raise not_found(f"Stage not found: {arn}")
        return stage

    @staticmethod
    def _active(stage):
        sid = stage["activeSessionId"]
        return stage["sessions"][sid] if sid else None

    # ---- stages ----------------------------------------------------------------------
    def add_stage(self, now, stage_id=None, name="", tags=None, recording=None):
        if stage_id is None:
            stage_id = self._rand(12)
            while self.stage_arn(stage_id) in self.stages:
                stage_id = self._rand(12)
        arn = self.stage_arn(stage_id)
        if arn in self.stages:
            raise conflict(f"stage {arn} already exists")
        seq = self.next_seq
        self.next_seq += 1
        self.stages[arn] = {"arn": arn, "id": stage_id, "seq": seq, "name": name or "",
                            "tags": dict(tags or {}), "created": now, "recording": recording,
                            "activeSessionId": "", "sessions": {}}
        self.seqs.append(seq)
        self.by_seq[seq] = arn
        return self.stages[arn]

    def _stage_out(self, stage):
        out = {"arn": stage["arn"], "name": stage["name"], "activeSessionId": stage["activeSessionId"],
               "tags": dict(stage["tags"]),
               "autoParticipantRecordingConfiguration": stage["recording"] or {
                   "storageConfigurationArn": "", "mediaTypes": ["AUDIO_VIDEO"],
                   "thumbnailConfiguration": {"targetIntervalSeconds": 60, "storage": ["SEQUENTIAL"],
                                              "recordingMode": "DISABLED"},
                   "recordingReconnectWindowSeconds": 0,
                   "hlsConfiguration": {"targetSegmentDurationSeconds": 6},
                   "recordParticipantReplicas": True},
               "endpoints": {
                   "events": "wss://global.events.live-video.net",
                   "whip": f"https://{stage['id'].lower()}.global-bm.whip.live-video.net",
                   "rtmp": f"rtmp://{stage['id'].lower()}.global-contribute-staging.live-video.net/app/",
                   "rtmps": f"rtmps://{stage['id'].lower()}.global-contribute-staging.live-video.net:443/app/"}}
        return out

    def _token(self, now, stage, cfg):
        duration = cfg.get("duration", 720)
        pid = self._rand(12)
        tok = {"participantId": pid, "token": "eyJ" + self._rand(120), "userId": cfg.get("userId", ""),
               "attributes": dict(cfg.get("attributes") or {}), "duration": duration,
               "capabilities": list(cfg.get("capabilities") or ["PUBLISH", "SUBSCRIBE"]),
               "expirationTime": iso(now + 60 * duration)}
        return tok

    def create_stage(self, now, req):
        if len(self.stages) >= self.stage_quota:
            raise quota(f"Stage quota of {self.stage_quota} exceeded for account {self.account}")
        stage = self.add_stage(now, name=req.get("name", ""), tags=req.get("tags"),
                               recording=req.get("autoParticipantRecordingConfiguration"))
        tokens = [self._token(now, stage, c) for c in req.get("participantTokenConfigurations") or []]
        return {"stage": self._stage_out(stage), "participantTokens": tokens}

    def get_stage(self, now, req):
        return {"stage": self._stage_out(self._stage(req["arn"]))}

    def update_stage(self, now, req):
        stage = self._stage(req["arn"])
        if "name" in req:
            stage["name"] = req["name"]
        if "autoParticipantRecordingConfiguration" in req:
            stage["recording"] = req["autoParticipantRecordingConfiguration"]
        return {"stage": self._stage_out(stage)}

    def active_into(self, arn):
        """(source arn, participant id) of every ACTIVE replication into a stage."""
        return sorted(k for k, dests in self.replications.items()
                      if arn in dests and dests[arn]["state"] == "ACTIVE")

    def delete_stage(self, now, req):
        arn = req["arn"]
        stage = self._stage(arn)
        # Replications out of this stage end (the source is gone) and their replicas leave.
        for key in [k for k in self.replications if k[0] == arn]:
            for rec in list(self.replications[key].values()):
                self._end_replication(now, rec)
            del self.replications[key]
            self.pending.pop(key, None)
        # Replications into it are dropped: there is no destination left to list.
        for key, dests in list(self.replications.items()):
            if arn in dests:
                del dests[arn]
                if not dests:
                    del self.replications[key]
        del self.stages[arn]
        i = bisect.bisect_left(self.seqs, stage["seq"])
        del self.seqs[i]
        del self.by_seq[stage["seq"]]
        return {}

    def list_stages(self, now, req):
        limit = req.get("maxResults", 50)
        start = _decode_token("ListStages", req.get("nextToken")) or 0
        i = bisect.bisect_left(self.seqs, start)
        page = self.seqs[i:i + limit]
        out = {"stages": []}
        for seq in page:
            s = self.stages[self.by_seq[seq]]
            out["stages"].append({"arn": s["arn"], "name": s["name"],
                                  "activeSessionId": s["activeSessionId"], "tags": dict(s["tags"])})
        if i + limit < len(self.seqs):
            out["nextToken"] = _encode_token("ListStages", self.seqs[i + limit])
        return out

    # ---- sessions --------------------------------------------------------------------
    def _open_session(self, now, stage):
        session = self._active(stage)
        if session is None:
            sid = "st-" + self._rand(13)
            session = {"sessionId": sid, "startTime": now, "endTime": None, "participants": {}}
            stage["sessions"][sid] = session
            stage["activeSessionId"] = sid
        return session

    def _maybe_close_session(self, now, stage):
        """A session ends when nobody is connected and no source waits in its reconnect window."""
        session = self._active(stage)
        if session is None:
            return
        for p in session["participants"].values():
            if p["state"] == "CONNECTED" or (stage["arn"], p["participantId"]) in self.pending:
                return
        session["endTime"] = now
        stage["activeSessionId"] = ""

    def list_stage_sessions(self, now, req):
        stage = self.stages.get(req["stageArn"])
        sessions = list(stage["sessions"].values())[::-1] if stage else []   # newest first
        limit = req.get("maxResults", 50)
        start = _decode_token("ListStageSessions", req.get("nextToken")) or 0
        out = {"stageSessions": [self._session_out(s) for s in sessions[start:start + limit]]}
        if start + limit < len(sessions):
            out["nextToken"] = _encode_token("ListStageSessions", start + limit)
        return out

    @staticmethod
    def _session_out(s):
        out = {"sessionId": s["sessionId"], "startTime": iso(s["startTime"])}
        if s["endTime"] is not None:
            out["endTime"] = iso(s["endTime"])
        return out

    def get_stage_session(self, now, req):
        stage = self._stage(req["stageArn"])
        s = stage["sessions"].get(req["sessionId"])
        if s is None:
            raise not_found(f"Session not found: {req['sessionId']}")
        return {"stageSession": self._session_out(s)}

    # ---- participants ----------------------------------------------------------------
    def _publishers(self, session):
        return sum(1 for p in session["participants"].values()
                   if p["state"] == "CONNECTED" and p["published"])

    def join(self, now, arn, user_id="", publish=True, participant_id=None):
        stage = self._stage(arn)
        session = self._open_session(now, stage)
        if publish and self._publishers(session) >= MAX_PUBLISHERS_PER_STAGE:
            raise quota(f"stage {arn} already has {MAX_PUBLISHERS_PER_STAGE} publishers")
        pid = participant_id or self._rand(12)
        session["participants"][pid] = {
            "participantId": pid, "userId": user_id or "", "state": "CONNECTED",
            "firstJoinTime": now, "published": bool(publish), "attributes": {},
            "replica": False, "sourceStageArn": None, "sourceSessionId": None}
        return {"participantId": pid, "sessionId": session["sessionId"]}

    def _participant_in_active(self, arn, pid):
        stage = self._stage(arn)
        session = self._active(stage)
        p = session["participants"].get(pid) if session else None
        if p is None:
            raise not_found(f"Participant {pid} not found in stage {arn}")
        return stage, session, p

    def set_published(self, now, arn, pid, published):
        stage, session, p = self._participant_in_active(arn, pid)
        if published and not p["published"] and self._publishers(session) >= MAX_PUBLISHERS_PER_STAGE:
            raise quota(f"stage {arn} already has {MAX_PUBLISHERS_PER_STAGE} publishers")
        p["published"] = bool(published)
        self._feed_changed(now, stage, p)

    def disconnect(self, now, arn, pid):
        stage, session, p = self._participant_in_active(arn, pid)
        if p["state"] != "CONNECTED":
            raise not_found(f"Participant {pid} is not connected to stage {arn}")
        if p["replica"]:
            rec = self.replications.get((p["sourceStageArn"], pid), {}).get(arn)
            if rec is not None:
                self._end_replication(now, rec)
            return
        p["state"] = "DISCONNECTED"
        self._feed_changed(now, stage, p)
        self._maybe_close_session(now, stage)

    def reconnect(self, now, arn, pid):
        stage = self._stage(arn)
        session = self._active(stage)
        p = session["participants"].get(pid) if session else None
        if p is None:
            # The old session has ended: the participant joins a new one.
            for s in stage["sessions"].values():
                if pid in s["participants"]:
                    old = s["participants"][pid]
                    return self.join(now, arn, old["userId"], old["published"], pid)
            raise not_found(f"Participant {pid} not found in stage {arn}")
        if p["state"] == "CONNECTED":
            raise conflict(f"participant {pid} is already connected")
        p["state"] = "CONNECTED"
        self._feed_changed(now, stage, p)
        return {"participantId": pid, "sessionId": session["sessionId"]}

    def _feed_changed(self, now, stage, p):
        """A source that stops feeding (left or unpublished) keeps its replications for the window."""
        key = (stage["arn"], p["participantId"])
        feeding = p["state"] == "CONNECTED" and p["published"]
        if feeding:
            self.pending.pop(key, None)
            return
        active = [r for r in self.replications.get(key, {}).values() if r["state"] == "ACTIVE"]
        if not active:
            return
        window = min(r["reconnectWindowSeconds"] for r in active)
        if window <= 0:
            for r in active:
                self._end_replication(now, r)
        elif key not in self.pending:
            self.pending[key] = now + window

    def tick(self, now):
        """Expire reconnect windows that ended at or before `now`."""
        for key, deadline in list(self.pending.items()):
            if deadline > now:
                continue
            del self.pending[key]
            for r in list(self.replications.get(key, {}).values()):
                if r["state"] == "ACTIVE":
                    self._end_replication(now, r)
            stage = self.stages.get(key[0])
            if stage:
                self._maybe_close_session(now, stage)

    def _participant_out(self, stage, session, p, full):
        out = {"participantId": p["participantId"], "userId": p["userId"], "state": p["state"],
               "firstJoinTime": iso(p["firstJoinTime"]), "published": p["published"],
               "recordingState": "DISABLED"}
        if p["replica"]:
            rec = self.replications.get((p["sourceStageArn"], p["participantId"]), {}).get(stage["arn"])
            out.update(replicationType="REPLICA",
                       replicationState="ACTIVE" if rec and rec["state"] == "ACTIVE"
                       and p["state"] == "CONNECTED" else "STOPPED",
                       sourceStageArn=p["sourceStageArn"], sourceSessionId=p["sourceSessionId"])
        else:
            recs = [r for r in self.replications.get((stage["arn"], p["participantId"]), {}).values()
                    if r["sourceSessionId"] == session["sessionId"]]
            if recs:
                out.update(replicationType="SOURCE",
                           replicationState="ACTIVE" if any(r["state"] == "ACTIVE" for r in recs)
                           else "STOPPED")
            else:
                out["replicationType"] = "NONE"
        if full:
            out.update(attributes=dict(p["attributes"]), protocol="WHIP", ispName="", osName="",
                       osVersion="", browserName="", browserVersion="", sdkVersion="")
        return out

    def list_participants(self, now, req):
        filters = [f for f in ("filterByUserId", "filterByPublished", "filterByState",
                               "filterByRecordingState") if f in req]
        if len(filters) > 1:
            raise validation("Only one of filterByUserId, filterByPublished, filterByState, or "
                             "filterByRecordingState can be provided per request")
        stage = self.stages.get(req["stageArn"])
        session = stage["sessions"].get(req["sessionId"]) if stage else None
        parts = list(session["participants"].values()) if session else []
        if "filterByUserId" in req:
            parts = [p for p in parts if p["userId"] == req["filterByUserId"]]
        elif "filterByPublished" in req:
            parts = [p for p in parts if p["published"] == req["filterByPublished"]]
        elif "filterByState" in req:
            parts = [p for p in parts if p["state"] == req["filterByState"]]
        elif "filterByRecordingState" in req:
            parts = []    # recording is never enabled in the simulator
        limit = req.get("maxResults", 50)
        start = _decode_token("ListParticipants", req.get("nextToken")) or 0
        out = {"participants": [self._participant_out(stage, session, p, False)
                                for p in parts[start:start + limit]]}
        if start + limit < len(parts):
            out["nextToken"] = _encode_token("ListParticipants", start + limit)
        return out

    def get_participant(self, now, req):
        stage = self._stage(req["stageArn"])
        session = stage["sessions"].get(req["sessionId"])
        p = session["participants"].get(req["participantId"]) if session else None
        if p is None:
            raise not_found(f"Participant {req['participantId']} not found in session {req['sessionId']}")
        return {"participant": self._participant_out(stage, session, p, True)}

    def create_participant_token(self, now, req):
        stage = self._stage(req["stageArn"])
        return {"participantToken": self._token(now, stage, req)}

    def disconnect_participant(self, now, req):
        self.disconnect(now, req["stageArn"], req["participantId"])
        return {}

    # ---- replication -----------------------------------------------------------------
    def _end_replication(self, now, rec):
        """ACTIVE -> STOPPED; the replica leaves the destination stage."""
        rec["state"] = "STOPPED"
        rec["stopped"] = now
        dest = self.stages.get(rec["destinationStageArn"])
        if dest is None:
            return
        session = dest["sessions"].get(rec["destinationSessionId"])
        replica = session["participants"].get(rec["participantId"]) if session else None
        if replica is not None and replica["replica"]:
            replica["state"] = "DISCONNECTED"
        self._maybe_close_session(now, dest)

    def _active_count(self, pid):
        return sum(1 for (src, p), dests in self.replications.items() if p == pid
                   for r in dests.values() if r["state"] == "ACTIVE")

    def start_replication(self, now, req):
        src_arn, dst_arn, pid = req["sourceStageArn"], req["destinationStageArn"], req["participantId"]
        src, dst = self._stage(src_arn), self._stage(dst_arn)
        if src_arn == dst_arn:
            raise validation("sourceStageArn and destinationStageArn must be different stages")
        session = self._active(src)
        p = session["participants"].get(pid) if session else None
        if p is None or p["state"] != "CONNECTED" or not p["published"]:
            raise conflict(f"participant {pid} is not publishing")
        if p["replica"]:
            raise conflict(f"participant {pid} is a replica and cannot be replicated again")
        key = (src_arn, pid)
        existing = self.replications.get(key, {}).get(dst_arn)
        if existing is not None and existing["state"] == "ACTIVE":
            raise conflict(f"participant {pid} is already replicating to stage {dst_arn}")
        if self._active_count(pid) >= MAX_REPLICATIONS_PER_PARTICIPANT:
            raise quota(f"participant {pid} has reached the limit of "
                        f"{MAX_REPLICATIONS_PER_PARTICIPANT} concurrent replications")
        dsession = self._active(dst)
        if dsession is not None and self._publishers(dsession) >= MAX_PUBLISHERS_PER_STAGE:
            raise quota(f"stage {dst_arn} already has {MAX_PUBLISHERS_PER_STAGE} publishers")
        dsession = self._open_session(now, dst)
        attrs = dict(p["attributes"])
        attrs.update(req.get("attributes") or {})
        dsession["participants"][pid] = {
            "participantId": pid, "userId": p["userId"], "state": "CONNECTED", "firstJoinTime": now,
            "published": True, "attributes": attrs, "replica": True,
            "sourceStageArn": src_arn, "sourceSessionId": session["sessionId"]}
        self.replications.setdefault(key, {})[dst_arn] = {
            "sourceStageArn": src_arn, "participantId": pid, "sourceSessionId": session["sessionId"],
            "destinationStageArn": dst_arn, "destinationSessionId": dsession["sessionId"],
            "state": "ACTIVE", "reconnectWindowSeconds": req.get("reconnectWindowSeconds", 0),
            "started": now, "stopped": None}
        return {}

    def stop_replication(self, now, req):
        src_arn, dst_arn, pid = req["sourceStageArn"], req["destinationStageArn"], req["participantId"]
        self._stage(src_arn)
        self._stage(dst_arn)
        dests = self.replications.get((src_arn, pid), {})
        rec = dests.get(dst_arn)
        if rec is None:
            raise not_found(f"No replication of participant {pid} from {src_arn} to {dst_arn}")
        if rec["state"] == "ACTIVE":
            self._end_replication(now, rec)
        del dests[dst_arn]
        if not dests:
            del self.replications[(src_arn, pid)]
            self.pending.pop((src_arn, pid), None)
        return {}

    def list_replicas(self, now, req):
        recs = list(self.replications.get((req["sourceStageArn"], req["participantId"]), {}).values())
        limit = req.get("maxResults", 50)
        start = _decode_token("ListParticipantReplicas", req.get("nextToken")) or 0
        out = {"replicas": [{k: r[k] for k in ("sourceStageArn", "participantId", "sourceSessionId",
                                              "destinationStageArn", "destinationSessionId")}
                            | {"replicationState": r["state"]} for r in recs[start:start + limit]]}
        if start + limit < len(recs):
            out["nextToken"] = _encode_token("ListParticipantReplicas", start + limit)
        return out

    # ---- tags ------------------------------------------------------------------------
    def tag_resource(self, now, req):
        stage = self._stage(req["resourceArn"])
        merged = dict(stage["tags"])
        merged.update(req["tags"])
        if len(merged) > 50:
            raise validation("A resource can have at most 50 tags")
        stage["tags"] = merged
        return {}

    def untag_resource(self, now, req):
        stage = self._stage(req["resourceArn"])
        for k in req["tagKeys"]:
            stage["tags"].pop(k, None)
        return {}

    def list_tags(self, now, req):
        return {"tags": dict(self._stage(req["resourceArn"])["tags"])}

    # ---- whole-model views ---------------------------------------------------------------
    def snapshot(self):
        stages = []
        for s in self.stages.values():
            sessions = []
            for sess in s["sessions"].values():
                sessions.append(self._session_out(sess) | {"participants": [
                    self._participant_out(s, sess, p, False) for p in sess["participants"].values()]})
            stages.append({"arn": s["arn"], "id": s["id"], "name": s["name"], "tags": s["tags"],
                           "activeSessionId": s["activeSessionId"], "sessions": sessions})
        reps = [{k: r[k] for k in ("sourceStageArn", "participantId", "sourceSessionId",
                                   "destinationStageArn", "destinationSessionId",
                                   "reconnectWindowSeconds")}
                | {"replicationState": r["state"], "startedAt": iso(r["started"]),
                   "stoppedAt": iso(r["stopped"])}
                for d in self.replications.values() for r in d.values()]
        return {"stages": stages, "replications": reps}

    def dump(self):
        return {"stages": list(self.stages.values()), "next_seq": self.next_seq,
                "replications": [r for d in self.replications.values() for r in d.values()],
                "pending": [[k[0], k[1], v] for k, v in self.pending.items()]}

    def load(self, data):
        self.reset()
        for s in data["stages"]:
            self.stages[s["arn"]] = s
            self.seqs.append(s["seq"])
            self.by_seq[s["seq"]] = s["arn"]
        self.seqs.sort()
        self.next_seq = data["next_seq"]
        for r in data["replications"]:
            self.replications.setdefault((r["sourceStageArn"], r["participantId"]), {})[
                r["destinationStageArn"]] = r
        for src, pid, deadline in data["pending"]:
            self.pending[(src, pid)] = deadline
