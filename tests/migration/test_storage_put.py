"""The S3 store's lean PUT against a real SeaweedFS: instances go by it, signed as boto3
signs them, S3 still checks our SHA-256 against the body, an existing object is never
overwritten, and a missing bucket, bad credentials or an unreachable endpoint end as the
same DestinationError as through boto3."""

import os
from contextlib import contextmanager
from datetime import UTC, datetime

import botocore.auth
import pytest

from devstack.services.base import free_port
from migration.storage import DestinationError, S3Store, _b64, open_store, sha256_hex
from tests.migration import support

pytestmark = pytest.mark.django_db


class CapturedError(Exception):
    """Raised by a `before-send` hook: the request boto3 would have sent, never sent."""


def instance_bytes(size=64 * 1024):
    return os.urandom(size)


def params_for(store, key, sha, **conditions):
    """What S3Store._put sends, as put_object parameters (less Key and Body)."""
    content_type = "application/dicom" if key.endswith(".dcm") else "application/json"
    return {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": _b64(sha),
            "ContentType": content_type, **store._extra(), **conditions}  # fmt: skip


@contextmanager
def before_send(client, hook):
    """`hook` sees every PutObject request boto3 sends (the client is shared: removed after)."""
    client.meta.events.register("before-send.s3.PutObject", hook)
    try:
        yield
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", hook)


def test_instances_are_put_by_the_lean_path_and_s3_keeps_our_sha256(migration_s3, bucket):
    store = open_store(support.s3_destination(migration_s3, bucket, prefix="lean"))
    data = instance_bytes()
    boto3_puts = []
    with before_send(store.client, lambda **kwargs: boto3_puts.append(kwargs["request"].url)):
        put = store.put_instance("1.2.3", "1.2.3.4", "1.2.3.4.5", data, sha256_hex(data))
    assert store.lean is not None
    assert boto3_puts == []
    assert put.outcome == "stored"
    head = store.client.head_object(Bucket=bucket, Key=put.key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == _b64(sha256_hex(data))
    assert head["ContentType"] == "application/dicom"
    assert store.read(put.key) == data


def test_the_lean_put_signs_exactly_as_boto3_signs(migration_s3, bucket, monkeypatch):
    destination = support.s3_destination(
        migration_s3, bucket, sse="aws:kms", kms_key_id="key-1", storage_class="STANDARD_IA"
    )
    store = open_store(destination)
    data = instance_bytes(1024)
    params = params_for(store, "a/b.dcm", sha256_hex(data), IfNoneMatch="*")

    now = datetime(2026, 11, 28, 23, 59, 58, tzinfo=UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now)

    def capture(request, **kwargs):
        raise CapturedError(dict(request.headers.items()), request.url)

    with before_send(store.client, capture), pytest.raises(CapturedError) as sent:
        store.client.put_object(Bucket=bucket, Key="a/b c+d.dcm", Body=data, **params)
    boto3_headers, boto3_url = sent.value.args
    lean = dict(store.lean.signed_headers("a/b c+d.dcm", data, params, now=now))
    assert store.lean.base_url + "a/b%20c%2Bd.dcm" == boto3_url
    assert signed(lean) == signed(boto3_headers)
    for name in signed(boto3_headers).split(";"):
        if name != "host":
            assert header(lean, name) == header(boto3_headers, name), name
    assert header(lean, "authorization") == header(boto3_headers, "authorization")


def signed(headers):
    return header(headers, "authorization").split("SignedHeaders=")[1].split(",")[0]


def header(headers, name):
    value = {k.lower(): v for k, v in headers.items()}[name]
    return value.decode() if isinstance(value, bytes) else value


def test_a_put_whose_checksum_does_not_match_its_body_is_refused(migration_s3, bucket):
    store = open_store(support.s3_destination(migration_s3, bucket))
    data, other = instance_bytes(), instance_bytes()
    wrong = params_for(store, "x/wrong.dcm", sha256_hex(other))
    status, _answer = store.lean.put("x/wrong.dcm", data, wrong)
    assert status == 400
    with pytest.raises(DestinationError, match="BadDigest"):
        store.write("x/also-wrong.dcm", data, sha256_hex(other))
    assert store.list("x/") == {}


def test_an_existing_object_is_never_overwritten_by_the_lean_put(migration_s3, bucket):
    store = open_store(support.s3_destination(migration_s3, bucket))
    first, second = instance_bytes(), instance_bytes()
    assert store.write_new("k/one.dcm", first, sha256_hex(first)) is None
    status, _answer = store.lean.put(
        "k/one.dcm", second, params_for(store, "k/one.dcm", sha256_hex(second), IfNoneMatch="*")
    )
    assert status == 412
    assert store.write_new("k/one.dcm", second, sha256_hex(second)) == sha256_hex(first)
    assert store.read("k/one.dcm") == first


def test_a_missing_bucket_is_named_and_not_retried(migration_s3):
    store = open_store(support.s3_destination(migration_s3, "no-such-bucket-lean"))
    data = instance_bytes()
    status, _answer = store.lean.put("k.dcm", data, params_for(store, "k.dcm", sha256_hex(data)))
    assert status == 404
    with pytest.raises(DestinationError, match="bucket 'no-such-bucket-lean' does not exist") as e:
        store.write_new("k.dcm", data, sha256_hex(data))
    assert e.value.retry is False


def test_bad_credentials_are_access_denied_and_not_retried(migration_s3, bucket, monkeypatch):
    monkeypatch.setenv("CC_SECRET_LEANTEST_BAD", "not-the-secret")
    destination = support.s3_destination(migration_s3, bucket)
    destination.secret_key_env = "CC_SECRET_LEANTEST_BAD"
    store = S3Store(destination)
    data = instance_bytes()
    status, _answer = store.lean.put("k.dcm", data, params_for(store, "k.dcm", sha256_hex(data)))
    assert status == 403
    with pytest.raises(DestinationError, match=f"access denied to bucket '{bucket}'") as e:
        store.write_new("k.dcm", data, sha256_hex(data))
    assert e.value.retry is False


def test_an_unreachable_endpoint_is_a_retryable_destination_error(migration_s3, bucket):
    destination = support.s3_destination(migration_s3, bucket)
    destination.endpoint_url = f"http://127.0.0.1:{free_port()}"
    store = S3Store(destination)
    data = instance_bytes()
    assert store.lean.put("k.dcm", data, params_for(store, "k.dcm", sha256_hex(data))) == (
        None,
        None,
    )
    with pytest.raises(DestinationError, match="S3 endpoint unreachable") as e:
        store.write_new("k.dcm", data, sha256_hex(data))
    assert e.value.retry is True
