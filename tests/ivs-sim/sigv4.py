"""AWS Signature Version 4 (header variant): canonical request, string to sign, signature.

Pure functions, standard library only. Used by the simulator to verify requests and by its tests
to sign them; checked against the AWS known-answer vectors in ../shared/aws/sigv4-testsuite.

Rules (non-S3 services): the path is normalized and then percent-encoded exactly as it was sent
on the wire, so an already encoded "%3A" becomes "%253A" ("double encoding").
"""
import hashlib
import hmac
import re
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = "-_.~"
_WS_RUN = re.compile(r"\s+")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalize_path(path: str) -> str:
    """Remove "." and ".." segments and empty segments; keep a trailing slash."""
    if not path:
        return "/"
    out = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    result = "/" + "/".join(out)
    if path.endswith("/") and result != "/":
        result += "/"
    return result


def canonical_uri(path: str, normalize: bool = True) -> str:
    if normalize:
        path = normalize_path(path)
    if not path:
        path = "/"
    return urllib.parse.quote(path, safe="/" + _UNRESERVED)


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        if part == "":
            continue
        key, _, value = part.partition("=")
        key = urllib.parse.quote(urllib.parse.unquote(key), safe=_UNRESERVED)
        value = urllib.parse.quote(urllib.parse.unquote(value), safe=_UNRESERVED)
        pairs.append((key, value))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_headers(headers, signed_names):
    """headers: list of (name, value) as received, repeats allowed.

    Returns (canonical header block, signed headers line). Raises KeyError naming the first
    signed header that is absent.
    """
    merged = {}
    for name, value in headers:
        lname = name.lower().strip()
        merged.setdefault(lname, []).append(_WS_RUN.sub(" ", value.strip()))
    names = sorted(n.lower() for n in signed_names)
    lines = []
    for n in names:
        if n not in merged:
            raise KeyError(n)
        lines.append(f"{n}:{','.join(merged[n])}\n")
    return "".join(lines), ";".join(names)


def canonical_request(method, path, query, headers, signed_names, payload_hash, normalize=True):
    block, signed = canonical_headers(headers, signed_names)
    return "\n".join([method.upper(), canonical_uri(path, normalize), canonical_query(query),
                      block, signed, payload_hash])


def scope(date8: str, region: str, service: str) -> str:
    return f"{date8}/{region}/{service}/aws4_request"


def string_to_sign(amz_date: str, cred_scope: str, creq: str) -> str:
    return "\n".join([ALGORITHM, amz_date, cred_scope, sha256_hex(creq.encode("utf-8"))])


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date8: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode("utf-8"), date8)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def signature(secret, date8, region, service, sts: str) -> str:
    return hmac.new(signing_key(secret, date8, region, service), sts.encode("utf-8"),
                    hashlib.sha256).hexdigest()


def split_target(target: str):
    """Split a request-target into (path, query)."""
    path, _, query = target.partition("?")
    return path, query


def sign(method, target, headers, body: bytes, access_key, secret, region, service, amz_date,
         token=None, unsigned=("user-agent", "expect", "x-amzn-trace-id", "content-length",
                               "connection"), normalize=True, payload_hash=None):
    """Sign a request; returns the headers to add (x-amz-date, token, Authorization).

    Signs every given header except `unsigned` ones, plus host, x-amz-date and the token.
    Returns (added_headers, canonical_request, string_to_sign, signature).
    """
    added = [("X-Amz-Date", amz_date)]
    if token:
        added.append(("X-Amz-Security-Token", token))
    all_headers = list(headers) + added
    names = sorted({n.lower() for n, _ in all_headers if n.lower() not in unsigned})
    path, query = split_target(target)
    if payload_hash is None:
        payload_hash = sha256_hex(body)
    creq = canonical_request(method, path, query, all_headers, names, payload_hash, normalize)
    sc = scope(amz_date[:8], region, service)
    sts = string_to_sign(amz_date, sc, creq)
    sig = signature(secret, amz_date[:8], region, service, sts)
    auth = f"{ALGORITHM} Credential={access_key}/{sc}, SignedHeaders={';'.join(names)}, Signature={sig}"
    added.append(("Authorization", auth))
    return added, creq, sts, sig


_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$")


def parse_authorization(value: str):
    """Returns dict(access_key, date8, region, service, signed, signature) or None if malformed."""
    m = _AUTH_RE.match(value or "")
    if not m:
        return None
    cred = m.group(1).split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        return None
    return {"access_key": cred[0], "date8": cred[1], "region": cred[2], "service": cred[3],
            "signed": m.group(2).split(";"), "signature": m.group(3)}
