"""Destinations: S3 (boto3, instance PUTs by `LeanPut`, SHA-256 checked by the store),
DICOMweb (STOW-RS, read back by WADO-RS) and a filesystem folder.

Keys are deterministic and carry UIDs only: `PREFIX/studies/{Study}/series/{Series}/
instances/{SOP}.dcm`. Storing never overwrites silently: an object already at its key is
compared by SHA-256; the same bytes are a no-op, different bytes a conflict, kept under
`PREFIX/conflicts/...` beside the first copy. Every store raises `DestinationError` with a
message that names the problem (no bucket, access denied, unreachable) and no PHI.
"""

import base64
import contextlib
import hashlib
import http.client
import json
import logging
import os
import ssl
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import boto3
import botocore
import botocore.session
import requests
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from botocore.httpsession import get_cert_path
from botocore.utils import get_environ_proxies
from django.conf import settings

from core import egress, scrub
from dicomnet.probe import part10_bytes, probe_instance
from dicomnet.sockets import send_at_once
from migration import dicomweb as dicomweb_client
from migration import sigv4

STORED, IDENTICAL, CONFLICT = "stored", "identical", "conflict"
S3_SINGLE_PUT_LIMIT = 5 * 1024**3
DICOMWEB_DEFAULT_LIMIT = 2 * 1024**3
ACCESS_ERRORS = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}

log = logging.getLogger(__name__)


class DestinationError(RuntimeError):
    """The destination failed or refused; `retry` says whether trying later may help."""

    def __init__(self, message, retry=True, code=""):
        super().__init__(message)
        self.retry = retry
        self.code = code


@dataclass
class Put:
    """Where one instance ended up: `outcome` is stored, identical (already there with the
    same bytes) or conflict (`key` is then the conflict copy, `kept_sha256` the first)."""

    key: str
    size: int
    sha256: str
    outcome: str
    kept_key: str = ""
    kept_sha256: str = ""


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _b64(hex_digest):
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def _hex(b64_digest):
    return base64.b64decode(b64_digest).hex() if b64_digest else ""


class Store:
    """What every destination offers the engine (one instance per study run)."""

    kind = ""
    max_bytes = S3_SINGLE_PUT_LIMIT

    def __init__(self, destination):
        self.destination = destination
        self.prefix = destination.prefix.strip("/")
        if destination.max_object_mb:
            self.max_bytes = destination.max_object_mb * 1024 * 1024

    def _join(self, *parts):
        return "/".join(p for p in (self.prefix, *parts) if p)

    def instance_key(self, study, series, sop):
        return self._join("studies", study, "series", series, "instances", f"{sop}.dcm")

    def conflict_key(self, study, series, sop, sha):
        return self._join("conflicts", "studies", study, "series", series, sop, f"{sha}.dcm")

    def quarantine_key(self, study, sha):
        return self._join("quarantine", "studies", study, f"{sha}.dcm")

    def manifest_key(self, study):
        return self._join("studies", study, "manifest.json")

    def begin_study(self, study):
        """Learn what is already stored for the study (one listing), before any put."""

    def put_instance(self, study, series, sop, data, sha):
        key = self.instance_key(study, series, sop)
        existing = self.existing_sha256(key)
        if existing is None:
            existing = self.write_new(key, data, sha)
            if existing is None:
                return Put(key, len(data), sha, STORED)
        if existing == sha:
            return Put(key, len(data), sha, IDENTICAL)
        other = self.conflict_key(study, series, sop, sha)
        if self.existing_sha256(other) != sha:
            self.write(other, data, sha)
        return Put(other, len(data), sha, CONFLICT, kept_key=key, kept_sha256=existing)

    def put_aside(self, key, data, sha):
        """Keep bytes we will not store as an instance (quarantine); returns the key."""
        self.write(key, data, sha)
        return key

    def put_manifest(self, study, manifest):
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        self.write(self.manifest_key(study), data, sha256_hex(data))
        return self.manifest_key(study), sha256_hex(data)

    # what each kind implements
    def existing_sha256(self, key):
        raise NotImplementedError

    def write_new(self, key, data, sha):
        """Write unless something is there; None when written, else the existing SHA-256."""
        raise NotImplementedError

    def write(self, key, data, sha):
        raise NotImplementedError

    def read(self, key):
        raise NotImplementedError

    def delete(self, key):
        raise NotImplementedError

    def verify(self, study, entries):
        """Problems (strings) with the stored objects of `entries` (manifest rows)."""
        raise NotImplementedError

    def probe(self):
        """Write, read back and delete a probe object; raises DestinationError."""
        raise NotImplementedError

    def check(self):
        """{"ok", "detail", "ms"} for the destination's Check button and command."""
        started = time.perf_counter()
        try:
            detail = self.probe()
            ok = True
        except DestinationError as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # a check reports, it never raises
            ok, detail = False, scrub.exception_text(exc)
        return {
            "ok": ok,
            "detail": detail[:300],
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }


# --- S3 ---------------------------------------------------------------------------------


def _s3_error(exc, bucket):
    """A DestinationError for a boto3 failure, in words an engineer acts on."""
    error = _s3_error_for(exc, bucket)
    error.code = (
        exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    )
    return error


def _s3_error_for(exc, bucket):
    if isinstance(exc, EndpointConnectionError):
        return DestinationError(f"S3 endpoint unreachable: {exc}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return DestinationError(f"bucket {bucket!r} does not exist", retry=False)
        if code in ACCESS_ERRORS:
            return DestinationError(f"access denied to bucket {bucket!r} ({code})", retry=False)
        return DestinationError(f"S3 error {code or 'unknown'}: {exc}"[:300])
    return DestinationError(f"S3 unreachable or failing: {type(exc).__name__}: {exc}"[:300])


class S3Store(Store):
    kind = "s3"

    def __init__(self, destination, client=None):
        super().__init__(destination)
        self.bucket = destination.bucket
        self.client = client or s3_client(destination)
        self.lean = lean_put(destination) if client is None else None
        self.listed = {}

    def _call(self, method, **kwargs):
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise _s3_error(exc, self.bucket) from exc

    def _extra(self):
        extra = {}
        if self.destination.sse:
            extra["ServerSideEncryption"] = self.destination.sse
        if self.destination.sse == "aws:kms" and self.destination.kms_key_id:
            extra["SSEKMSKeyId"] = self.destination.kms_key_id
        if self.destination.storage_class:
            extra["StorageClass"] = self.destination.storage_class
        return extra

    def begin_study(self, study):
        self.listed = self.list(self._join("studies", study, "series") + "/")

    def list(self, prefix):
        found = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        try:
            for page in pages:
                found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        except (BotoCoreError, ClientError) as exc:
            raise _s3_error(exc, self.bucket) from exc
        return found

    def existing_sha256(self, key):
        listed = self.listed
        if listed is not None and key.startswith(self._join("studies")) and key not in listed:
            return None  # the study listing says it is not there: skip the HEAD
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _s3_error(exc, self.bucket) from exc
        except BotoCoreError as exc:
            raise _s3_error(exc, self.bucket) from exc
        return _hex(head.get("ChecksumSHA256")) or sha256_hex(self.read(key))

    def write_new(self, key, data, sha):
        try:
            self._put(key, data, sha, IfNoneMatch="*")
        except DestinationError as exc:
            if exc.code not in ("PreconditionFailed", "412"):
                raise
            self.listed[key] = len(data)
            return self.existing_sha256(key)
        return None

    def write(self, key, data, sha):
        self._put(key, data, sha)

    def _put(self, key, data, sha, **conditions):
        if len(data) > S3_SINGLE_PUT_LIMIT:
            raise DestinationError(f"object of {len(data)} bytes exceeds a single S3 PUT", False)
        params = {
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": _b64(sha),
            "ContentType": "application/dicom" if key.endswith(".dcm") else "application/json",
            **self._extra(),
            **conditions,
        }
        answer = self._lean_put(key, data, params)
        if answer is None:
            answer = self._call("put_object", Key=key, Body=data, **params)
        if _hex(answer.get("ChecksumSHA256")) not in ("", sha):
            raise DestinationError(f"S3 stored {key} with a different SHA-256")

    def _lean_put(self, key, data, params):
        """The PUT by the lean path: its answer, or None when boto3 must (re)do it. An
        object already there (412) is final; a client error that boto3 then gets past
        (a redirect to the bucket's region, say) turns the lean path off for this store."""
        lean = self.lean
        if lean is None:
            return None
        status, answer = lean.put(key, data, params)
        if status == 412:
            error = ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
            raise _s3_error(error, self.bucket)
        if status is None or status < 300:
            return answer
        answer = self._call("put_object", Key=key, Body=data, **params)
        if status < 500 and status != 429:
            self.lean = None
            log.warning("S3 bucket %r: lean PUT answered %s; using boto3", self.bucket, status)
        return answer

    def read(self, key):
        return self._call("get_object", Key=key)["Body"].read()

    def delete(self, key):
        self._call("delete_object", Key=key)
        self.listed.pop(key, None)

    def verify(self, study, entries):
        listed = self.list(self._join("studies", study, "series") + "/")
        problems = _compare_listing(
            {e["key"]: e["size"] for e in entries if e["role"] == STORED}, listed
        )
        conflicts = [e for e in entries if e["role"] == CONFLICT]
        if conflicts:
            stored = self.list(self._join("conflicts", "studies", study) + "/")
            problems += _compare_listing({e["key"]: e["size"] for e in conflicts}, stored)
        return problems

    def probe(self):
        key = self._join(".cc-probe", uuid.uuid4().hex)
        data = os.urandom(64)
        sha = sha256_hex(data)
        self.write(key, data, sha)
        back = self.read(key)
        self._call("delete_object", Key=key)
        if sha256_hex(back) != sha:
            raise DestinationError("the probe object read back different bytes")
        return f"wrote, read back and deleted a probe in bucket {self.bucket!r}"


def _compare_listing(expected, listed):
    """Problems between {key: size} we stored and {key: size} the store lists."""
    missing = sorted(set(expected) - set(listed))
    extra = sorted(set(listed) - set(expected))
    wrong = sorted(k for k in set(expected) & set(listed) if expected[k] != listed[k])
    problems = []
    if missing:
        problems.append(f"{len(missing)} object(s) missing: {_names(missing)}")
    if extra:
        problems.append(f"{len(extra)} unexpected object(s): {_names(extra)}")
    if wrong:
        problems.append(f"{len(wrong)} object(s) of the wrong size: {_names(wrong)}")
    return problems


def _names(keys, limit=3):
    shown = ", ".join(k.rsplit("/", 1)[-1] for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


class LeanPut:
    """PUT Object without boto3's per-call machinery (event hooks, endpoint rules, header
    objects, response parsing, `Expect: 100-continue`'s extra round trip): a 512 KB
    instance costs the uploader about 0.5 ms of CPU instead of 1.5 ms.

    The request is the one boto3 sends, less its telemetry headers and `Expect:
    100-continue`: the same URL (taken from the client, so path-style or virtual-hosted
    alike), the same headers, signed as botocore signs them (`migration.sigv4`:
    UNSIGNED-PAYLOAD exactly when boto3 would use it, beside the signed
    `x-amz-checksum-sha256` that S3 verifies against the body) with the session's
    credentials, refreshed when temporary. Keep-alive connections are shared by the
    uploader threads. boto3 stays the authority on failures: only a 2xx or a 412 answer
    is final here; on any other answer, or a lost connection, the caller repeats the PUT
    through boto3, whose retries and error classification then apply."""

    HEADERS = {
        "ChecksumAlgorithm": "x-amz-sdk-checksum-algorithm",
        "ChecksumSHA256": "x-amz-checksum-sha256",
        "ContentType": "Content-Type",
        "ServerSideEncryption": "x-amz-server-side-encryption",
        "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
        "StorageClass": "x-amz-storage-class",
        "IfNoneMatch": "If-None-Match",
    }
    USER_AGENT = f"Boto3/{boto3.__version__} Botocore/{botocore.__version__} cc-migration"

    def __init__(self, client, credentials, base_url):
        self.config = client.meta.config
        self.credentials = credentials
        self.region = client.meta.region_name or "us-east-1"
        self.base_url = base_url
        parts = urlsplit(base_url)
        self.path = parts.path
        self.host = sigv4.host_header(base_url)
        self.signer = sigv4.Signer(self.region)
        self.signs_payload = (self.config.s3 or {}).get("payload_signing_enabled") is not False
        verify = _ca_verify() if parts.scheme == "https" else None
        self.connections = _Connections(parts, self.config, verify)

    @classmethod
    def for_bucket(cls, client, credentials, bucket):
        """None where boto3 alone knows how to connect (a proxy, a client certificate),
        finds no credentials or refuses the bucket's name (it then says why itself)."""
        config = client.meta.config
        if credentials is None or config.client_cert or config.proxies:
            return None
        try:
            presigned = client.generate_presigned_url(
                "head_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60
            )
        except BotoCoreError:
            return None
        base_url = presigned.split("?", 1)[0][:-1]
        if get_environ_proxies(base_url):
            return None
        return cls(client, credentials, base_url)

    def signed_headers(self, key, data, params, now=None):
        """The request's headers (but Host, which http.client adds alike), signed for
        `now` (a fresh signature per attempt)."""
        headers = {self.HEADERS[name].lower(): value for name, value in params.items()}
        headers["host"] = self.host
        payload = sigv4.UNSIGNED_PAYLOAD
        if self.signs_payload:
            checksum = params.get("ChecksumSHA256")
            payload = _hex(checksum) if checksum else sha256_hex(data)
        credentials = self.credentials.get_frozen_credentials()
        path = self.path + quote(key, safe="/~")
        self.signer.sign("PUT", path, headers, credentials, payload, now)
        del headers["host"]
        headers["user-agent"] = self.USER_AGENT
        return headers.items()

    def put(self, key, data, params):
        """(HTTP status, {"ChecksumSHA256"}) of one PUT; (None, None) when the connection
        failed (the server may or may not have the object) or botocore could not sign."""
        connection = None
        try:
            headers = self.signed_headers(key, data, params)
            connection = self.connections.take()
            connection.putrequest("PUT", self.path + quote(key, safe="/~"),
                                  skip_accept_encoding=True)  # fmt: skip
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(data)))
            connection.endheaders(data)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException, BotoCoreError) as exc:
            if connection is not None:
                connection.close()
            log.debug("S3 lean PUT of %s failed: %s", key, type(exc).__name__)
            return None, None
        self.connections.give_back(connection, reusable=not response.will_close)
        return response.status, {"ChecksumSHA256": response.getheader("x-amz-checksum-sha256")}


class _Connections:
    """Idle keep-alive connections to one S3 endpoint, shared by the uploader threads;
    one more is opened whenever none is idle."""

    def __init__(self, parts, config, verify):
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port
        self.connect_timeout, self.read_timeout = config.connect_timeout, config.read_timeout
        self.context = ssl.create_default_context(cafile=get_cert_path(verify)) if verify else None
        self.size = config.max_pool_connections
        self.idle = []
        self.lock = threading.Lock()

    def take(self):
        """An idle connection, else a new one (connected; raises OSError)."""
        with self.lock:
            if self.idle:
                return self.idle.pop()
        if self.https:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=self.context
            )
        else:
            connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.connect_timeout
            )
        connection.connect()
        connection.sock.settimeout(self.read_timeout)
        with contextlib.suppress(OSError):  # http.client sends headers and body apart
            send_at_once(connection.sock)
        return connection

    def give_back(self, connection, reusable=True):
        with self.lock:
            if reusable and len(self.idle) < self.size:
                self.idle.append(connection)
                return
        connection.close()


def _ca_verify():
    """What boto3 verifies TLS with: AWS_CA_BUNDLE (or the profile's ca_bundle), else
    REQUESTS_CA_BUNDLE, else botocore's bundled CA certificates."""
    bundle = botocore.session.get_session().get_config_variable("ca_bundle")
    return bundle or os.environ.get("REQUESTS_CA_BUNDLE") or True


_clients = {}
_lean_puts = {}
_clients_lock = threading.Lock()
_sessions = []


def _session():
    """The process's one boto3 session (call with `_clients_lock` held). Its loader keeps
    the S3 service model and endpoint rules, JSON that took 0.2 s of CPU to load for
    every client made from a fresh session; `warm_up()` loads them before a worker's pool
    forks."""
    if not _sessions:
        _sessions.append(boto3.session.Session())
    return _sessions[0]


def warm_up():
    """Load what the first S3 client of each worker process would (no network)."""
    with _clients_lock:
        _session().client(
            "s3", region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-"
        )


def s3_client(destination):
    """A boto3 client for a destination; credentials from the named environment variables,
    else boto3's default chain. Raises DestinationError when a named variable is unset.

    Clients are cached per process (creating one costs a few hundred milliseconds) and
    shared by the uploader threads (boto3 clients are thread-safe)."""
    return _s3(destination)[0]


def config_client(destination):
    """A fresh boto3 client for reading a bucket's configuration (conformance checks):
    one attempt and short timeouts, so a wave's start never waits long on a dead store."""
    check_egress(destination)
    kwargs = _credentials(destination)
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=10,
        s3={"addressing_style": "path"} if destination.endpoint_url else {},
    )
    with _clients_lock:
        session = _session()
    return session.client(
        "s3",
        endpoint_url=destination.endpoint_url or None,
        region_name=destination.region or None,
        config=config,
        **kwargs,
    )


def lean_put(destination):
    """The destination bucket's LeanPut (cached per process like the client), or None."""
    cache_key = (_s3_cache_key(destination), destination.bucket)
    client, credentials = _s3(destination)
    with _clients_lock:
        if cache_key not in _lean_puts:
            _lean_puts[cache_key] = LeanPut.for_bucket(client, credentials, destination.bucket)
        return _lean_puts[cache_key]


def _s3(destination):
    """(client, the credentials it signs with) for a destination, cached."""
    cache_key = _s3_cache_key(destination)
    with _clients_lock:
        if cache_key not in _clients:
            _clients[cache_key] = _new_s3_client(destination, _credentials(destination))
        return _clients[cache_key]


def _s3_cache_key(destination):
    kwargs = _credentials(destination)
    return (destination.endpoint_url, destination.region, tuple(sorted(kwargs.items())))


def _credentials(destination):
    kwargs = {}
    for field, arg in (
        ("access_key_env", "aws_access_key_id"),
        ("secret_key_env", "aws_secret_access_key"),
    ):
        name = getattr(destination, field)
        if name:
            kwargs[arg] = _secret(name)
    return kwargs


def _secret(name):
    """The value of an allowed credentials variable (core.egress)."""
    try:
        return egress.secret(name, os.environ, egress.current_policy())
    except egress.EgressError as exc:
        raise DestinationError(str(exc), retry=False) from None


def check_egress(destination):
    """Refuse a destination whose URL the egress policy does not allow, before any
    connection (DestinationError, not retried)."""
    url = destination.url if destination.kind == "dicomweb" else destination.endpoint_url
    if destination.kind == "filesystem" or not url:
        return
    try:
        egress.check_url(url, egress.current_policy())
    except egress.EgressError as exc:
        raise DestinationError(str(exc), retry=False) from None


def _new_s3_client(destination, kwargs):
    """(client, credentials it signs with). The client is tuned for many puts of known
    bytes: the SHA-256 is computed once by the engine and sent as `x-amz-checksum-sha256`,
    a signed header that S3 checks against the body, so botocore neither hashes the body
    again to sign it (UNSIGNED-PAYLOAD, which plain-HTTP endpoints would otherwise force)
    nor validates parameters the engine built itself."""
    s3_options = {"payload_signing_enabled": False}
    if destination.endpoint_url:
        s3_options["addressing_style"] = "path"
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=int(settings.MIGRATION_UPLOAD_THREADS_MAX) + 4,
        s3=s3_options,
        parameter_validation=False,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = _session()
    client = session.client(
        "s3",
        endpoint_url=destination.endpoint_url or None,
        region_name=destination.region or None,
        config=config,
        **kwargs,
    )
    if kwargs:
        return client, Credentials(kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"])
    return client, session.get_credentials()


# --- filesystem -------------------------------------------------------------------------


class FilesystemStore(Store):
    kind = "filesystem"

    def __init__(self, destination):
        super().__init__(destination)
        self.root = Path(destination.path)

    def _path(self, key):
        """The file of a key, which must stay inside the root once resolved (a key
        built from a mapped UID or a prefix with `../` would escape it)."""
        root = self.root.resolve()
        path = (root / key).resolve()
        if not path.is_relative_to(root) or path == root:
            raise DestinationError(f"key {key!r} leads outside the folder", retry=False)
        return path

    def existing_sha256(self, key):
        path = self._path(key)
        try:
            return sha256_hex(path.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DestinationError(f"cannot read {key}: {exc.strerror}") from exc

    def write_new(self, key, data, sha):
        """Write a temporary file, then link it into place: atomic, never overwriting."""
        path = self._path(key)
        tmp = self._tmp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return self.existing_sha256(key)
        except OSError as exc:
            raise DestinationError(f"cannot write {key}: {exc.strerror}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return None

    def write(self, key, data, sha):
        path = self._path(key)
        try:
            os.replace(self._tmp(path, data), path)
        except OSError as exc:
            raise DestinationError(f"cannot write {key}: {exc.strerror}") from exc

    def _tmp(self, path, data):
        if not self.root.is_dir():
            raise DestinationError(f"folder {self.root} does not exist", retry=False)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise DestinationError(f"cannot write under {self.root}: {exc.strerror}") from exc
        return tmp

    def read(self, key):
        return self._path(key).read_bytes()

    def delete(self, key):
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise DestinationError(f"cannot delete {key}: {exc.strerror}") from exc

    def verify(self, study, entries):
        """Read every object back and compare its SHA-256 (a filesystem has no checksum)."""
        bad = [e["key"] for e in entries if self.existing_sha256(e["key"]) != e["sha256"]]
        on_disk = self.root / self._join("studies", study, "series")
        listed = {
            str(p.relative_to(self.root))
            for p in on_disk.rglob("*.dcm")
            if not p.name.startswith(".")
        }
        expected = {e["key"] for e in entries if e["role"] == STORED}
        problems = (
            [f"{len(bad)} object(s) read back with a wrong SHA-256: {_names(bad)}"] if bad else []
        )
        return problems + _compare_listing(dict.fromkeys(expected, 0), dict.fromkeys(listed, 0))

    def probe(self):
        key = self._join(".cc-probe", uuid.uuid4().hex)
        data = os.urandom(64)
        self.write(key, data, sha256_hex(data))
        ok = self.read(key) == data
        self._path(key).unlink()
        if not ok:
            raise DestinationError("the probe file read back different bytes")
        return f"wrote, read back and deleted a probe in {self.root}"


# --- DICOMweb ---------------------------------------------------------------------------


class DicomWebStore(Store):
    """STOW-RS to store, QIDO-RS to see what is there, WADO-RS to read back and verify.

    DICOMweb has no place for conflict copies, quarantined bytes, copies kept aside or
    the manifest: those are kept in its side store (`local:` keys, see `side_store`)."""

    kind = "dicomweb"
    max_bytes = DICOMWEB_DEFAULT_LIMIT

    def __init__(self, destination, session=None):
        super().__init__(destination)
        self.base = destination.url.rstrip("/")
        self.headers = {}
        if destination.auth_header_env:
            self.headers["Authorization"] = _secret(destination.auth_header_env)
        self.session = session or dicomweb_client.new_session()
        self.present = set()
        self.local = side_store(destination)

    def instance_key(self, study, series, sop):
        return f"studies/{study}/series/{series}/instances/{sop}"

    def conflict_key(self, study, series, sop, sha):
        return "local:" + self.local.conflict_key(study, series, sop, sha)

    def quarantine_key(self, study, sha):
        return "local:" + self.local.quarantine_key(study, sha)

    def manifest_key(self, study):
        return "local:" + self.local.manifest_key(study)

    def _get(self, path, accept="application/dicom+json"):
        try:
            status, body = dicomweb_client.get_capped(
                self.session,
                f"{self.base}/{path}",
                {"Accept": accept, **self.headers},
                settings.EGRESS_MAX_BODY_BYTES * 64,
            )
        except (requests.RequestException, dicomweb_client.DicomWebError) as exc:
            raise DestinationError(f"DICOMweb server unreachable: {type(exc).__name__}") from exc
        if status in (401, 403):
            raise DestinationError(f"DICOMweb access denied ({status})", False)
        if status == 404:
            return []
        if status >= 300:
            raise DestinationError(f"QIDO-RS answered {status}")
        try:
            return json.loads(body) if body else []
        except ValueError as exc:
            raise DestinationError("QIDO-RS answered something that is not JSON") from exc

    def begin_study(self, study):
        found = self._get(f"studies/{study}/instances")
        self.present = {
            item.get("00080018", {}).get("Value", [""])[0]
            for item in found
            if isinstance(item, dict)
        }

    def existing_sha256(self, key):
        if key.startswith("local:"):
            return self.local.existing_sha256(key[6:])
        if key.rsplit("/", 1)[-1] not in self.present:
            return None
        return sha256_hex(self.read(key))

    def write_new(self, key, data, sha):
        self.write(key, data, sha)
        return None

    def write(self, key, data, sha):
        if key.startswith("local:"):
            return self.local.write(key[6:], data, sha)
        try:
            answer = dicomweb_client.stow(
                self.base, [data], headers=self.headers, session=self.session
            )
        except dicomweb_client.DicomWebError as exc:
            raise DestinationError(str(exc)) from exc
        except requests.RequestException as exc:
            raise DestinationError(f"DICOMweb server unreachable: {type(exc).__name__}") from exc
        referenced = answer.get("00081199", {}).get("Value", [])
        sops = {item.get("00081155", {}).get("Value", [""])[0] for item in referenced}
        sop = key.rsplit("/", 1)[-1]
        if sop not in sops:
            raise DestinationError("STOW-RS did not confirm the instance it was sent")
        self.present.add(sop)

    def read(self, key):
        if key.startswith("local:"):
            return self.local.read(key[6:])
        _studies, study, _series, series, _instances, sop = key.split("/")
        try:
            return dicomweb_client.wado_instance(
                self.base, study, series, sop, headers=self.headers, session=self.session,
                max_bytes=self.max_bytes + 64 * 1024,
            )  # fmt: skip
        except (dicomweb_client.DicomWebError, requests.RequestException) as exc:
            raise DestinationError(f"WADO-RS read-back failed: {exc}"[:300]) from exc

    def delete(self, key):
        if not key.startswith("local:"):
            raise DestinationError("DICOMweb instances are not deleted by the engine", False)
        self.local.delete(key[6:])

    def verify(self, study, entries):
        """Read every instance back by WADO-RS and compare SHA-256; count by QIDO-RS."""
        with ThreadPoolExecutor(max_workers=max(1, int(settings.MIGRATION_UPLOAD_THREADS))) as pool:
            digests = list(pool.map(lambda e: sha256_hex(self.read(e["key"])), entries))
        bad = [e["key"] for e, sha in zip(entries, digests, strict=True) if sha != e["sha256"]]
        problems = (
            [f"{len(bad)} instance(s) read back with a wrong SHA-256: {_names(bad)}"] if bad else []
        )
        self.begin_study(study)
        expected = {e["key"].rsplit("/", 1)[-1] for e in entries if e["role"] == STORED}
        return problems + _compare_listing(
            dict.fromkeys(expected, 0), dict.fromkeys(self.present, 0)
        )

    def probe(self):
        """STOW a tiny synthetic instance (no patient data), read it back, and delete it
        where the server allows DELETE (DICOMweb does not require it)."""
        ds = probe_instance()
        data = part10_bytes(ds)
        key = self.instance_key(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        self.write(key, data, sha256_hex(data))
        if sha256_hex(self.read(key)) != sha256_hex(data):
            raise DestinationError("the probe instance read back different bytes")
        deleted = self.session.delete(
            f"{self.base}/studies/{ds.StudyInstanceUID}",
            headers=self.headers,
            timeout=30,
            allow_redirects=False,
        )
        note = (
            "deleted it"
            if deleted.status_code < 300
            else "the server does not allow DELETE: probe left"
        )
        where = (
            f"side copies go to {settings.MIGRATION_DICOMWEB_SIDE_DESTINATION}"
            if settings.MIGRATION_DICOMWEB_SIDE_DESTINATION
            else "side copies stay on this host's disk (set MIGRATION_DICOMWEB_SIDE_DESTINATION)"
        )
        return f"stored and read back a probe instance; {note}; {where}"


def side_store(destination):
    """Where a DICOMweb destination keeps what DICOMweb has no place for: the destination
    named by MIGRATION_DICOMWEB_SIDE_DESTINATION (an S3 bucket or a shared folder, durable
    and the same for every worker), under `dicomweb-side/<name>/`. Unset, a folder under
    this host's VAR_DIR (a rehearsal only: the destination's Check says so)."""
    name = settings.MIGRATION_DICOMWEB_SIDE_DESTINATION
    if not name:
        return FilesystemStore(_LocalFolder(destination))
    from migration.models import Destination

    side = Destination.objects.filter(name=name, kind__in=("s3", "filesystem")).first()
    if side is None:
        raise DestinationError(f"side destination {name!r} is not an S3 or folder destination")
    side.prefix = "/".join(
        p for p in (side.prefix.strip("/"), "dicomweb-side", destination.name) if p
    )
    store = open_store(side)
    if isinstance(store, S3Store):
        store.listed = None  # no study listing: every existence check asks the bucket
    return store


class _LocalFolder:
    """A stand-in destination row for DICOMweb's local side folder."""

    def __init__(self, destination):
        self.prefix = ""
        self.max_object_mb = None
        self.path = str(Path(settings.VAR_DIR) / "migration" / destination.name)
        Path(self.path).mkdir(parents=True, exist_ok=True)


STORES = {"s3": S3Store, "filesystem": FilesystemStore, "dicomweb": DicomWebStore}


def open_store(destination):
    """The destination's store, once the egress policy allows where it points."""
    check_egress(destination)
    return STORES[destination.kind](destination)
