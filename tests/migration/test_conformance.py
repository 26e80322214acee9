"""Conformance of a destination's bucket with its design, read from a real S3 server:
moto's server mode (every configuration call) and SeaweedFS (the calls it implements).

The compliant bucket: region us-east-1, SSE-KMS with key `alias/pacs-images`, versioning
on, object lock on with 30 days of COMPLIANCE retention, all four public access blocks on,
a bucket policy denying every non-TLS request, a lifecycle rule moving objects to
STANDARD_IA after 30 days, and the tags project=pacs-migration and phi=yes. Each
non-compliant case changes exactly one of these, and exactly that requirement fails.
"""

import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from desk.models import Ticket
from inventory.models import PacsSource
from migration import actions
from migration.models import Destination, DestinationDesign, Wave, WaveState

pytestmark = pytest.mark.django_db(transaction=True)

KEY_ENV, SECRET_ENV = "CC_SECRET_CONFTEST_KEY", "CC_SECRET_CONFTEST_SECRET"
DESIGN = {
    "region": "us-east-1",
    "encryption": "aws:kms",
    "kms_key_id": "alias/pacs-images",
    "versioning": True,
    "object_lock": True,
    "retention_days": 30,
    "retention_mode": "COMPLIANCE",
    "block_public_access": True,
    "tls_only_policy": True,
    "transition_days": 30,
    "transition_class": "STANDARD_IA",
    "required_tags": {"project": "pacs-migration", "phi": "yes"},
}
REQUIREMENT_NAMES = [
    "region", "encryption", "versioning", "public access blocked", "object lock",
    "TLS-only bucket policy", "lifecycle transition", "tags",
]  # fmt: skip


def tls_only(bucket):
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })  # fmt: skip


def configure(client, bucket, broken=None):
    """A compliant bucket, except for the one aspect named by `broken`."""
    create = {"Bucket": bucket, "ObjectLockEnabledForBucket": broken != "versioning"}
    if broken == "region":
        create["CreateBucketConfiguration"] = {"LocationConstraint": "eu-west-1"}
    client.create_bucket(**create)
    sse = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/pacs-images"}
    if broken == "encryption":
        sse = {"SSEAlgorithm": "AES256"}
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": sse}]},
    )
    if broken != "versioning":
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        days = 1 if broken == "object lock" else 30
        client.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": days}},
            },
        )
    flags = {flag: True for flag in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                      "RestrictPublicBuckets")}  # fmt: skip
    if broken == "public access blocked":
        flags["BlockPublicPolicy"] = False
    client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=flags)
    policy = tls_only(bucket)
    if broken == "TLS-only bucket policy":
        policy = policy.replace('"Deny"', '"Allow"')
    client.put_bucket_policy(Bucket=bucket, Policy=policy)
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [{
            "ID": "to-ia", "Status": "Enabled", "Filter": {"Prefix": ""},
            "Transitions": [{"Days": 90 if broken == "lifecycle transition" else 30,
                             "StorageClass": "STANDARD_IA"}],
        }]},
    )  # fmt: skip
    tags = [{"Key": "project", "Value": "pacs-migration"}, {"Key": "phi", "Value": "yes"}]
    if broken == "tags":
        tags = tags[:1]
    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    return bucket


@pytest.fixture
def moto_destination(moto_s3, monkeypatch):
    monkeypatch.setenv(KEY_ENV, moto_s3.access_key)
    monkeypatch.setenv(SECRET_ENV, moto_s3.secret_key)

    def make(bucket, design=DESIGN, name=None):
        destination = Destination.objects.create(
            name=name or f"d-{uuid.uuid4().hex[:8]}", kind="s3", bucket=bucket, region="us-east-1",
            endpoint_url=moto_s3.endpoint_url, access_key_env=KEY_ENV, secret_key_env=SECRET_ENV,
        )  # fmt: skip
        actions.save_design(destination, **design)
        return destination

    return make


def new_bucket():
    return f"conf-{uuid.uuid4().hex[:12]}"


def by_name(run):
    return {r["name"]: r for r in run.requirements}


def test_a_compliant_bucket_conforms_requirement_by_requirement_with_the_stores_evidence(
    moto_s3, moto_destination
):
    destination = moto_destination(configure(moto_s3.client(), new_bucket()))

    run = actions.check_conformance(destination)

    rows = by_name(run)
    assert list(rows) == REQUIREMENT_NAMES
    assert run.conforms is True, [r for r in run.requirements if not r["ok"]]
    assert rows["encryption"]["actual"] == "aws:kms with key alias/pacs-images"
    assert rows["object lock"]["actual"] == "Enabled, COMPLIANCE 30 days"
    assert "aws:SecureTransport" in rows["TLS-only bucket policy"]["evidence"]
    assert '"STANDARD_IA"' in rows["lifecycle transition"]["evidence"]


@pytest.mark.parametrize("broken", REQUIREMENT_NAMES)
def test_each_requirement_fails_on_its_own(moto_s3, moto_destination, broken):
    design = dict(DESIGN)
    if broken == "versioning":  # object lock needs versioning, so it is not asked for here
        design.update(object_lock=False, retention_days=None, retention_mode="")
    destination = moto_destination(configure(moto_s3.client(), new_bucket(), broken), design)

    run = actions.check_conformance(destination)

    assert run.conforms is False
    assert [r["name"] for r in run.requirements if not r["ok"]] == [broken]


def test_a_bare_bucket_fails_every_requirement_and_opens_a_ticket(moto_s3, moto_destination):
    bucket = new_bucket()
    moto_s3.client().create_bucket(Bucket=bucket)
    destination = moto_destination(bucket, {**DESIGN, "region": "eu-west-1"})

    run = actions.check_conformance(destination)

    rows = by_name(run)
    assert not any(r["ok"] for r in run.requirements)
    assert rows["encryption"]["actual"] == "no default encryption"
    assert rows["public access blocked"]["actual"] == "no public access block"
    assert rows["TLS-only bucket policy"]["evidence"] == "NoSuchBucketPolicy"
    ticket = Ticket.objects.get(cause=f"migration.conformance.destination-{destination.pk}")
    assert ticket.title == f"Destination {destination.name} does not conform to its design"
    assert "encryption" in ticket.description


def test_destination_conform_prints_conforms_and_the_requirements_as_json(
    moto_s3, moto_destination
):
    compliant = moto_destination(configure(moto_s3.client(), new_bucket()), name="compliant")
    broken = moto_destination(configure(moto_s3.client(), new_bucket(), "tags"), name="broken")
    outputs = {}
    for destination in (compliant, broken):
        out = StringIO()
        call_command("destination", "conform", destination.name, "--json", stdout=out)
        outputs[destination.name] = json.loads(out.getvalue())

    assert outputs["compliant"]["conforms"] is True
    assert outputs["broken"]["conforms"] is False
    tags = next(r for r in outputs["broken"]["requirements"] if r["name"] == "tags")
    assert tags == {**tags, "required": "phi=yes, project=pacs-migration", "ok": False}
    assert set(tags) >= {"name", "required", "actual", "ok"}


def test_a_new_s3_destination_starts_with_the_recommended_design(moto_s3):
    destination = actions.add_destination(
        name="fresh", kind="s3", bucket="fresh-bucket", endpoint_url=moto_s3.endpoint_url
    )

    design = DestinationDesign.objects.get(destination=destination)

    assert (design.encryption, design.versioning) == ("AES256", True)
    assert design.block_public_access and design.tls_only_policy


def test_seaweedfs_answers_what_it_implements_and_the_rest_is_unproven(
    migration_s3, bucket, monkeypatch
):
    """SeaweedFS keeps default encryption, versioning and tags (and enforces a TLS-only
    policy: over plain HTTP every later call is then refused, so none is set here). It
    does not implement the public access block: that requirement is not ok, never passed."""
    client = migration_s3.client()
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "phi", "Value": "yes"}]})
    from tests.migration import support

    destination = support.s3_destination(migration_s3, bucket, name="seaweed")
    design = {"region": "us-east-1", "encryption": "AES256", "versioning": True,
              "required_tags": {"phi": "yes"}}  # fmt: skip
    actions.save_design(destination, **design)

    assert actions.check_conformance(destination).conforms is True

    actions.save_design(destination, block_public_access=True)
    run = actions.check_conformance(destination)
    assert run.conforms is False
    assert by_name(run)["public access blocked"]["actual"].startswith("could not read: NotImpl")


def draft_wave(destination):
    source = PacsSource.objects.create(name="legacy", ae_title="PACS", host="127.0.0.1", port=104)
    return Wave.objects.create(name="ct-2019", source=source, destination=destination)


def test_a_wave_refuses_to_start_against_a_non_conforming_destination(
    moto_s3, moto_destination, cast
):
    wave = draft_wave(moto_destination(configure(moto_s3.client(), new_bucket(), "encryption")))

    with pytest.raises(actions.ActionError, match=r"does not conform to its design \(encryption\)"):
        actions.change_wave(wave, "start", cast.engineer)

    wave.refresh_from_db()
    assert wave.state == WaveState.DRAFT
    assert wave.destination.conformance_runs.get().trigger == "wave start"


def test_a_leads_waiver_with_a_reason_lets_the_wave_start(moto_s3, moto_destination, cast):
    wave = draft_wave(moto_destination(configure(moto_s3.client(), new_bucket(), "encryption")))
    with pytest.raises(actions.ActionError, match="needs a reason"):
        actions.waive_conformance(wave, cast.lead, "  ")

    actions.waive_conformance(wave, cast.lead, "KMS key arrives Monday; SSE-S3 meanwhile")
    actions.change_wave(wave, "start", cast.engineer)

    wave.refresh_from_db()
    assert wave.state == WaveState.RUNNING
    assert wave.conformance_waivers.get().granted_by == cast.lead


def test_a_wave_starts_at_once_against_a_conforming_destination(moto_s3, moto_destination, cast):
    wave = draft_wave(moto_destination(configure(moto_s3.client(), new_bucket())))

    actions.change_wave(wave, "start", cast.engineer)

    wave.refresh_from_db()
    assert wave.state == WaveState.RUNNING


def test_a_failing_destination_holds_the_go_no_go_gate_until_it_conforms(moto_s3, moto_destination):
    from cutover import readiness

    client = moto_s3.client()
    destination = moto_destination(configure(client, new_bucket(), "tags"))
    draft_wave(destination)

    actions.check_conformance(destination)
    row = next(c for c in readiness.evaluate()["criteria"] if c["key"] == "destinations_conform")
    assert (row["state"], row["value"]) == ("not met", 1)
    assert destination.name in row["note"]

    tags = [{"Key": "project", "Value": "pacs-migration"}, {"Key": "phi", "Value": "yes"}]
    client.put_bucket_tagging(Bucket=destination.bucket, Tagging={"TagSet": tags})
    actions.check_conformance(destination)
    row = next(c for c in readiness.evaluate()["criteria"] if c["key"] == "destinations_conform")
    assert row["state"] == "met"
    ticket = Ticket.objects.get(cause=f"migration.conformance.destination-{destination.pk}")
    assert ticket.status == "resolved"


def test_beat_checks_every_destination_with_a_design(moto_s3, moto_destination):
    from migration.tasks import check_conformance

    checked = moto_destination(configure(moto_s3.client(), new_bucket()))
    Destination.objects.create(name="no-design", kind="filesystem", path="/tmp/cc-none")

    check_conformance()

    assert checked.conformance_runs.get().trigger == "schedule"
    assert Destination.objects.get(name="no-design").conformance_runs.count() == 0


def test_a_dicomweb_store_over_plain_http_that_answers_anyone_fails_both_requirements(
    dicomweb_store,
):
    destination = Destination.objects.create(
        name="web", kind="dicomweb", url=dicomweb_store.dicomweb_url
    )
    actions.save_design(destination, dicomweb_tls=True, dicomweb_auth="bearer")

    run = actions.check_conformance(destination)

    rows = by_name(run)
    assert rows["TLS"]["actual"] == "plain HTTP, no TLS" and not rows["TLS"]["ok"]
    assert rows["authentication"]["actual"] == "HTTP 200 without credentials"
    assert run.conforms is False
