"""Input shapes of the IVS Real-time operations the simulator serves, and their validator.

Written from ivs-realtime 2020-07-14 service-2.json (the model itself stays in ../shared).
Patterns are matched against the whole value. validate() returns a list of problems in the
style AWS services use ("Value at 'x' failed to satisfy constraint: ...").
"""
import re


class Shape:
    kind = "?"


class Str(Shape):
    kind = "string"

    def __init__(self, lo=None, hi=None, pattern=None):
        self.lo, self.hi, self.pattern = lo, hi, pattern
        self.rx = re.compile(pattern) if pattern else None


class Int(Shape):
    kind = "integer"

    def __init__(self, lo=None, hi=None):
        self.lo, self.hi = lo, hi


class Bool(Shape):
    kind = "boolean"


class Enum(Shape):
    kind = "string"

    def __init__(self, *values):
        self.values = values


class List(Shape):
    kind = "list"

    def __init__(self, member, lo=None, hi=None):
        self.member, self.lo, self.hi = member, lo, hi


class Map(Shape):
    kind = "map"

    def __init__(self, key, value, lo=None, hi=None, total_bytes=None):
        self.key, self.value, self.lo, self.hi, self.total_bytes = key, value, lo, hi, total_bytes


class Struct(Shape):
    kind = "structure"

    def __init__(self, members, required=()):
        self.members, self.required = members, tuple(required)


STAGE_ARN = Str(1, 128, r"arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+")
# The model's ResourceArn pattern reads "...:[a-z-]/..." (one character before the slash), which
# no real ARN matches; IVS evidently does not enforce it as written. We use "[a-z-]+/".
RESOURCE_ARN = Str(1, 128, r"arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]+/[a-zA-Z0-9-]+")
STAGE_NAME = Str(0, 128, r"[a-zA-Z0-9-_]*")
SESSION_ID = Str(16, 16, r"st-[a-zA-Z0-9]+")
PARTICIPANT_ID = Str(0, 64, r"[a-zA-Z0-9-]*")
PARTICIPANT_ID_DISCONNECT = Str(0, 64, r"[a-zA-Z0-9-_]*")
NEXT_TOKEN = Str(0, 1024, r"[a-zA-Z0-9+/=_-]*")
TAG_KEY = Str(1, 128)
TAGS = Map(TAG_KEY, Str(0, 256), 0, 50)
ATTRIBUTES = Map(Str(), Str(), total_bytes=1024)
USER_ID = Str(0, 128)
CAPABILITIES = List(Enum("PUBLISH", "SUBSCRIBE"), 0, 2)
DURATION = Int(1, 20160)

RECORDING_CONFIG = Struct({
    "storageConfigurationArn": Str(0, 128, r"^$|^arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration/[a-zA-Z0-9-]+$"),
    "mediaTypes": List(Enum("AUDIO_VIDEO", "AUDIO_ONLY", "NONE"), 0, 1),
    "thumbnailConfiguration": Struct({
        "targetIntervalSeconds": Int(1, 86400),
        "storage": List(Enum("SEQUENTIAL", "LATEST"), 0, 2),
        "recordingMode": Enum("INTERVAL", "DISABLED"),
    }),
    "recordingReconnectWindowSeconds": Int(0, 300),
    "hlsConfiguration": Struct({"targetSegmentDurationSeconds": Int(2, 10)}),
    "recordParticipantReplicas": Bool(),
}, required=["storageConfigurationArn"])

TOKEN_CONFIG = Struct({"duration": DURATION, "userId": USER_ID, "attributes": ATTRIBUTES,
                       "capabilities": CAPABILITIES})

INPUTS = {
    "CreateStage": Struct({"name": STAGE_NAME,
                           "participantTokenConfigurations": List(TOKEN_CONFIG, 0, 12),
                           "tags": TAGS, "autoParticipantRecordingConfiguration": RECORDING_CONFIG}),
    "GetStage": Struct({"arn": STAGE_ARN}, ["arn"]),
    "DeleteStage": Struct({"arn": STAGE_ARN}, ["arn"]),
    "UpdateStage": Struct({"arn": STAGE_ARN, "name": STAGE_NAME,
                           "autoParticipantRecordingConfiguration": RECORDING_CONFIG}, ["arn"]),
    "ListStages": Struct({"nextToken": NEXT_TOKEN, "maxResults": Int(1, 100)}),
    "ListStageSessions": Struct({"stageArn": STAGE_ARN, "nextToken": NEXT_TOKEN,
                                 "maxResults": Int(1, 100)}, ["stageArn"]),
    "GetStageSession": Struct({"stageArn": STAGE_ARN, "sessionId": SESSION_ID},
                              ["stageArn", "sessionId"]),
    "ListParticipants": Struct({
        "stageArn": STAGE_ARN, "sessionId": SESSION_ID, "filterByUserId": USER_ID,
        "filterByPublished": Bool(), "filterByState": Enum("CONNECTED", "DISCONNECTED"),
        "filterByRecordingState": Enum("STARTING", "ACTIVE", "STOPPING", "STOPPED", "FAILED"),
        "nextToken": NEXT_TOKEN, "maxResults": Int(1, 100)}, ["stageArn", "sessionId"]),
    "GetParticipant": Struct({"stageArn": STAGE_ARN, "sessionId": SESSION_ID,
                              "participantId": PARTICIPANT_ID},
                             ["stageArn", "sessionId", "participantId"]),
    "CreateParticipantToken": Struct({"stageArn": STAGE_ARN, "duration": DURATION,
                                      "userId": USER_ID, "attributes": ATTRIBUTES,
                                      "capabilities": CAPABILITIES}, ["stageArn"]),
    "DisconnectParticipant": Struct({"stageArn": STAGE_ARN,
                                     "participantId": PARTICIPANT_ID_DISCONNECT,
                                     "reason": Str(0, 128)}, ["stageArn", "participantId"]),
    "StartParticipantReplication": Struct({
        "sourceStageArn": STAGE_ARN, "destinationStageArn": STAGE_ARN,
        "participantId": PARTICIPANT_ID, "reconnectWindowSeconds": Int(0, 300),
        "attributes": ATTRIBUTES}, ["sourceStageArn", "destinationStageArn", "participantId"]),
    "StopParticipantReplication": Struct({
        "sourceStageArn": STAGE_ARN, "destinationStageArn": STAGE_ARN,
        "participantId": PARTICIPANT_ID},
        ["sourceStageArn", "destinationStageArn", "participantId"]),
    "ListParticipantReplicas": Struct({"sourceStageArn": STAGE_ARN, "participantId": PARTICIPANT_ID,
                                       "nextToken": NEXT_TOKEN, "maxResults": Int(1, 50)},
                                      ["sourceStageArn", "participantId"]),
    "TagResource": Struct({"resourceArn": RESOURCE_ARN, "tags": TAGS}, ["resourceArn", "tags"]),
    "UntagResource": Struct({"resourceArn": RESOURCE_ARN, "tagKeys": List(TAG_KEY, 0, 50)},
                            ["resourceArn", "tagKeys"]),
    "ListTagsForResource": Struct({"resourceArn": RESOURCE_ARN}, ["resourceArn"]),
}


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check(shape, value, path, errors):
    if isinstance(shape, Struct):
        if not isinstance(value, dict):
            errors.append(f"Value at '{path or '$'}' failed to satisfy constraint: Member must be a structure")
            return
        for name in value:
            if name not in shape.members:
                errors.append(f"Unknown member '{path + '.' if path else ''}{name}'")
        for name in shape.required:
            if value.get(name) is None:
                errors.append(f"Value null at '{path + '.' if path else ''}{name}' failed to satisfy "
                              "constraint: Member must not be null")
        for name, sub in shape.members.items():
            if name in value and value[name] is not None:
                _check(sub, value[name], f"{path + '.' if path else ''}{name}", errors)
        return
    prefix = f"Value {_short(value)} at '{path}' failed to satisfy constraint: Member must"
    if isinstance(shape, (Str, Enum)):
        if not isinstance(value, str):
            errors.append(f"{prefix} be a string")
            return
        if isinstance(shape, Enum):
            if value not in shape.values:
                errors.append(f"{prefix} satisfy enum value set: [{', '.join(shape.values)}]")
            return
        if shape.lo is not None and len(value) < shape.lo:
            errors.append(f"{prefix} have length greater than or equal to {shape.lo}")
        elif shape.hi is not None and len(value) > shape.hi:
            errors.append(f"{prefix} have length less than or equal to {shape.hi}")
        elif shape.rx is not None and not shape.rx.fullmatch(value):
            errors.append(f"{prefix} satisfy regular expression pattern: {shape.pattern}")
    elif isinstance(shape, Int):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{prefix} be an integer")
        elif shape.lo is not None and value < shape.lo:
            errors.append(f"{prefix} have value greater than or equal to {shape.lo}")
        elif shape.hi is not None and value > shape.hi:
            errors.append(f"{prefix} have value less than or equal to {shape.hi}")
    elif isinstance(shape, Bool):
        if not isinstance(value, bool):
            errors.append(f"{prefix} be a boolean")
    elif isinstance(shape, List):
        if not isinstance(value, list):
            errors.append(f"{prefix} be a list")
            return
        if shape.lo is not None and len(value) < shape.lo:
            errors.append(f"{prefix} have length greater than or equal to {shape.lo}")
        elif shape.hi is not None and len(value) > shape.hi:
            errors.append(f"{prefix} have length less than or equal to {shape.hi}")
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}.{i + 1}.member", errors)
    elif isinstance(shape, Map):
        if not isinstance(value, dict):
            errors.append(f"{prefix} be a map")
            return
        if shape.lo is not None and len(value) < shape.lo:
            errors.append(f"{prefix} have length greater than or equal to {shape.lo}")
        elif shape.hi is not None and len(value) > shape.hi:
            errors.append(f"{prefix} have length less than or equal to {shape.hi}")
        for k, v in value.items():
            _check(shape.key, k, f"{path}.key", errors)
            _check(shape.value, v, f"{path}.{k}", errors)
        if shape.total_bytes is not None:
            total = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in value.items())
            if total > shape.total_bytes:
                errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have a "
                              f"total size less than or equal to {shape.total_bytes} bytes")


def validate(operation, value):
    """Returns None when valid, else the ValidationException message."""
    errors = []
    _check(INPUTS[operation], value, "", errors)
    if not errors:
        return None
    n = len(errors)
    return f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors)
