"""Does a destination's store satisfy its design? Requirement by requirement, from what
the store itself answers.

`read_s3(client, bucket)` asks the bucket for its configuration (one boto3 call per
aspect: location, encryption, versioning, public access block, object lock, lifecycle,
policy, tags) and `read_dicomweb(url)` asks a DICOMweb service for its TLS certificate and
sends it one request without credentials. Both contact only the destination's own
endpoint. `compare(design, answers)` is pure: each applicable requirement becomes
{name, required, actual, ok, evidence}, where `evidence` is what the store returned (or
the error it gave). A requirement whose answer could not be read is not ok: unread is
unproven, never passed.
"""

import json
import socket
import ssl
from urllib.parse import urlsplit

import requests
from botocore.exceptions import BotoCoreError, ClientError

# Error codes meaning "this aspect is not configured" (as opposed to "could not read").
NOT_CONFIGURED = {
    "ServerSideEncryptionConfigurationNotFoundError": "no default encryption",
    "NoSuchPublicAccessBlockConfiguration": "no public access block",
    "ObjectLockConfigurationNotFoundError": "object lock not enabled",
    "NoSuchLifecycleConfiguration": "no lifecycle rules",
    "NoSuchBucketPolicy": "no bucket policy",
    "NoSuchTagSet": "no tags",
}
S3_CALLS = {
    "location": "get_bucket_location",
    "encryption": "get_bucket_encryption",
    "versioning": "get_bucket_versioning",
    "public_access": "get_public_access_block",
    "object_lock": "get_object_lock_configuration",
    "lifecycle": "get_bucket_lifecycle_configuration",
    "policy": "get_bucket_policy",
    "tags": "get_bucket_tagging",
}
PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)
RECOMMENDED_S3 = {
    "encryption": "AES256",
    "versioning": True,
    "block_public_access": True,
    "tls_only_policy": True,
}


# --- reading the store ------------------------------------------------------------------


def read_s3(client, bucket):
    """{aspect: {"answer": response without metadata} | {"missing": why} | {"error": why}}."""
    return {aspect: _ask(client, call, bucket) for aspect, call in S3_CALLS.items()}


def _ask(client, call, bucket):
    try:
        answer = getattr(client, call)(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in NOT_CONFIGURED:
            return {"missing": NOT_CONFIGURED[code], "code": code}
        return {"error": f"{code or 'error'}: {exc.response.get('Error', {}).get('Message', '')}"}
    except BotoCoreError as exc:
        return {"error": str(exc)[:300]}
    answer.pop("ResponseMetadata", None)
    return {"answer": answer}


def read_dicomweb(url, timeout=10.0):
    """{"tls": {...}, "anonymous": {...}}: the certificate the service presents (verified
    against the system's CAs) and how it answers a QIDO-RS request without credentials."""
    return {"tls": _tls(url, timeout), "anonymous": _anonymous(url, timeout)}


def _tls(url, timeout):
    parts = urlsplit(url)
    if parts.scheme != "https":
        return {"missing": f"plain {parts.scheme.upper() or 'HTTP'}, no TLS"}
    host, port = parts.hostname, parts.port or 443
    context = ssl.create_default_context()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cert = tls.getpeercert()
            return {"answer": {"version": tls.version(), "notAfter": cert.get("notAfter")}}
    except (OSError, ssl.SSLError) as exc:
        return {"error": f"TLS handshake failed: {exc}"[:300]}


def _anonymous(url, timeout):
    session = requests.Session()
    session.trust_env = False  # no proxy: only the destination's own endpoint
    try:
        response = session.get(f"{url.rstrip('/')}/studies", params={"limit": 1}, timeout=timeout)
    except requests.RequestException as exc:
        return {"error": f"request failed: {exc}"[:300]}
    challenge = response.headers.get("WWW-Authenticate", "")
    return {"answer": {"status": response.status_code, "www_authenticate": challenge[:200]}}


# --- comparing with the design ----------------------------------------------------------


def _row(name, required, actual, ok, evidence):
    return {"name": name, "required": required, "actual": actual, "ok": bool(ok),
            "evidence": evidence}  # fmt: skip


def _evidence(found):
    if "answer" in found:
        return json.dumps(found["answer"], default=str, sort_keys=True)[:1500]
    return found.get("code") or found.get("missing") or found.get("error", "")


def _unreadable(name, required, found):
    """The row for an aspect the store did not describe."""
    actual = found.get("missing") or f"could not read: {found.get('error', 'no answer')}"
    return _row(name, required, actual, False, _evidence(found))


def check_region(design, found):
    if "answer" not in found:
        return _unreadable("region", design["region"], found)
    actual = found["answer"].get("LocationConstraint") or "us-east-1"
    return _row("region", design["region"], actual, actual == design["region"], _evidence(found))


def check_encryption(design, found):
    wanted = design["encryption"]
    required = f"{wanted} with key {design['kms_key_id']}" if design["kms_key_id"] else wanted
    if "answer" not in found:
        return _unreadable("encryption", required, found)
    rules = found["answer"].get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    default = (rules[0] if rules else {}).get("ApplyServerSideEncryptionByDefault", {})
    algorithm, key_id = default.get("SSEAlgorithm", ""), default.get("KMSMasterKeyID", "")
    actual = f"{algorithm} with key {key_id}" if key_id else algorithm or "none"
    ok = algorithm == wanted and (not design["kms_key_id"] or _same_key(key_id, design))
    return _row("encryption", required, actual, ok, _evidence(found))


def _same_key(key_id, design):
    """A key named by id matches its ARN too (S3 may answer either)."""
    wanted = design["kms_key_id"]
    return key_id == wanted or key_id.endswith(f"/{wanted}") or wanted.endswith(f"/{key_id}")


def check_versioning(design, found):
    if "answer" not in found:
        return _unreadable("versioning", "Enabled", found)
    actual = found["answer"].get("Status") or "never enabled"
    return _row("versioning", "Enabled", actual, actual == "Enabled", _evidence(found))


def check_public_access(design, found):
    required = "all four blocks on"
    if "answer" not in found:
        return _unreadable("public access blocked", required, found)
    flags = found["answer"].get("PublicAccessBlockConfiguration", {})
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not flags.get(flag)]
    actual = "all four blocks on" if not off else "off: " + ", ".join(off)
    return _row("public access blocked", required, actual, not off, _evidence(found))


def check_object_lock(design, found):
    days, mode = design["retention_days"], design["retention_mode"]
    required = "Enabled" + (f", {mode or 'any mode'} {days} days" if days else "")
    if "answer" not in found:
        return _unreadable("object lock", required, found)
    config = found["answer"].get("ObjectLockConfiguration", {})
    retention = config.get("Rule", {}).get("DefaultRetention", {})
    held = retention.get("Days") or (retention.get("Years") or 0) * 365
    actual = config.get("ObjectLockEnabled") or "not enabled"
    if retention:
        actual += f", {retention.get('Mode', '?')} {held} days"
    ok = config.get("ObjectLockEnabled") == "Enabled"
    if days:
        ok = ok and held >= days and (not mode or retention.get("Mode") == mode)
    return _row("object lock", required, actual, ok, _evidence(found))


def check_tls_policy(design, found):
    required = "Deny s3:* to * when aws:SecureTransport is false"
    if "answer" not in found:
        return _unreadable("TLS-only bucket policy", required, found)
    try:
        policy = json.loads(found["answer"].get("Policy") or "{}")
    except ValueError:
        return _row("TLS-only bucket policy", required, "unreadable policy", False,
                    _evidence(found))  # fmt: skip
    denies = [s for s in _statements(policy) if _denies_plain_http(s)]
    actual = "present" if denies else "no statement denying non-TLS requests"
    return _row("TLS-only bucket policy", required, actual, bool(denies), _evidence(found))


def _statements(policy):
    statements = policy.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _denies_plain_http(statement):
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    everyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
    actions = {a.lower() for a in _as_list(statement.get("Action", []))}
    condition = statement.get("Condition", {}).get("Bool", {})
    secure = str(condition.get("aws:SecureTransport", "")).lower()
    return everyone and bool(actions & {"s3:*", "*"}) and secure == "false"


def check_lifecycle(design, found):
    days, target = design["transition_days"], design["transition_class"] or "STANDARD_IA"
    required = f"to {target} after {days} days"
    if "answer" not in found:
        return _unreadable("lifecycle transition", required, found)
    seen = []
    for rule in found["answer"].get("Rules", []):
        for step in rule.get("Transitions", []):
            seen.append((rule.get("Status"), step.get("StorageClass"), step.get("Days")))
    ok = any(s == "Enabled" and c == target and d == days for s, c, d in seen)
    actual = "; ".join(f"{c} after {d} days ({s.lower()})" for s, c, d in seen) or "none"
    return _row("lifecycle transition", required, actual, ok, _evidence(found))


def check_tags(design, found):
    wanted = design["required_tags"]
    required = ", ".join(f"{k}={v}" if v else k for k, v in sorted(wanted.items()))
    if "answer" not in found:
        return _unreadable("tags", required, found)
    tags = {t["Key"]: t["Value"] for t in found["answer"].get("TagSet", [])}
    wrong = [k for k, v in wanted.items() if k not in tags or (v and tags[k] != v)]
    actual = ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "none"
    return _row("tags", required, actual, not wrong, _evidence(found))


def check_dicomweb_tls(design, found):
    if "answer" not in found:
        return _unreadable("TLS", "HTTPS with a valid certificate", found)
    answer = found["answer"]
    actual = f"{answer['version']}, certificate valid until {answer['notAfter']}"
    return _row("TLS", "HTTPS with a valid certificate", actual, True, _evidence(found))


def check_dicomweb_auth(design, found):
    scheme = design["dicomweb_auth"]
    required = f"a request without credentials refused ({scheme} challenge)"
    if "answer" not in found:
        return _unreadable("authentication", required, found)
    status, challenge = found["answer"]["status"], found["answer"]["www_authenticate"]
    refused = status in (401, 403)
    actual = f"HTTP {status} without credentials" + (f", {challenge}" if challenge else "")
    ok = refused and (status == 403 or challenge.lower().startswith(scheme))
    return _row("authentication", required, actual, ok, _evidence(found))


# (requirement applies to the design?, check, the answer it reads)
S3_REQUIREMENTS = [
    (lambda d: bool(d["region"]), check_region, "location"),
    (lambda d: bool(d["encryption"]), check_encryption, "encryption"),
    (lambda d: d["versioning"], check_versioning, "versioning"),
    (lambda d: d["block_public_access"], check_public_access, "public_access"),
    (lambda d: d["object_lock"], check_object_lock, "object_lock"),
    (lambda d: d["tls_only_policy"], check_tls_policy, "policy"),
    (lambda d: d["transition_days"] is not None, check_lifecycle, "lifecycle"),
    (lambda d: bool(d["required_tags"]), check_tags, "tags"),
]
DICOMWEB_REQUIREMENTS = [
    (lambda d: d["dicomweb_tls"], check_dicomweb_tls, "tls"),
    (lambda d: bool(d["dicomweb_auth"]), check_dicomweb_auth, "anonymous"),
]
REQUIREMENTS = {"s3": S3_REQUIREMENTS, "dicomweb": DICOMWEB_REQUIREMENTS}


def compare(kind, design, answers):
    """[{name, required, actual, ok, evidence}] for every requirement of `design` (a dict
    of DestinationDesign's fields) that applies to a `kind` destination."""
    return [
        check(design, answers.get(aspect, {"error": "not asked"}))
        for applies, check, aspect in REQUIREMENTS.get(kind, [])
        if applies(design)
    ]


def verdict(requirements):
    """True only when there is at least one requirement and every one held."""
    return bool(requirements) and all(r["ok"] for r in requirements)
