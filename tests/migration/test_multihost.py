"""Three worker hosts, one migration (the harness: tests/multihost.py).

Three network namespaces, each with its own address, host name, Celery worker and
Storage SCP (AE CCHOST<i>, registered on the PACS), share the PostgreSQL database, Redis,
the PACS (Orthanc) and the S3 store. A wave of 120 small studies moved by C-MOVE keeps
the PACS's association limit, counted at the PACS process, while all three hosts work;
one host is lost mid-C-MOVE (its link deleted, then every process in it SIGKILLed) and
its studies are taken over by the others once their leases run out, verified, with
nothing twice in the ledger or the bucket. The PACS keeps the dead host's associations
open for a while (nobody told it); the host's association slots outlive that, so the
limit holds through the loss.
"""

import json
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import PacsSource
from migration import actions, dispatch, storescp, throttle
from migration.ledger import ACTIVE_STATES
from migration.models import StoredInstance, StudyState, Wave, WaveState
from tests.fixtures_services import TEST_AET
from tests.migration import support
from tests.multihost import SCP_PORT, Cluster, PacsAssociations, established
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

HOSTS = 3
LIMIT = 10  # the PACS's associations: five studies at once by C-MOVE (two each)
STUDIES = 120
BIG = 80  # instances in each of 6 big studies (the rest have 3): a host dies mid-C-MOVE
SLOT_LEASE = 120  # the production default; Orthanc kept a dead host's associations 80 s


def mid_move(wave, hosts, big, pacs_port, done_first=15):
    """Once `done_first` studies are done by at least two hosts, the `big` studies (held
    back until then) are released; then a host that has finished studies and is
    receiving a big one, with an association open at the PACS right now (mid-C-MOVE),
    and the ledger rows it holds (else None)."""
    rows = list(wave.ledger.values("pk", "state", "host", "study__study_uid"))
    done = Counter(row["host"] for row in rows if row["state"] == StudyState.DONE)
    assert len(rows) > sum(done.values()), f"the wave ended first: {done}"
    if sum(done.values()) < done_first or len(done) < 2:
        return None
    wave.ledger.filter(study__study_uid__in=big, not_before__isnull=False).update(not_before=None)
    for index, host in hosts.items():
        held = [r for r in rows if r["state"] in ACTIVE_STATES and r["host"] == host.hostname]
        moving = any(r["study__study_uid"] in big for r in held)
        if done[host.hostname] and moving and host.address in established(pacs_port):
            return index, [r["pk"] for r in held]
    return None


def stalled(wave, hosts, victim, source):
    """What a wave that did not finish on the hosts left shows: its rows by state and
    host, the engine's slots and promised tick, and the end of each survivor's logs."""
    rows = wave.ledger.values_list("state", "host", "attempts", "lease_expires", "not_before")
    open_rows = [row for row in rows if row[0] != StudyState.DONE]
    tick_due = throttle.client().get(throttle.key("tick-due"))
    lines = [
        "the wave to finish on the hosts left",
        f"now {timezone.now():%H:%M:%S.%f}, wave {Wave.objects.get(pk=wave.pk).state}",
        f"rows by state and host: {Counter((row[0], row[1]) for row in rows)}",
        f"not done: {open_rows[:10]}",
        f"slots in use: {throttle.Slots(source.pk).in_use()}, tick due: {tick_due}",
    ]
    for index, host in hosts.items():
        if index != victim:
            tail = (host.folder / "worker.log").read_text(errors="replace")[-3000:]
            lines += [f"--- {host.hostname} worker.log (end)", tail]
    return "\n".join(lines)


def test_three_hosts_share_a_wave_within_the_pacs_limit_and_a_lost_host_loses_nothing(
    orthanc_factory, engine_settings, tmp_path, settings, monkeypatch
):
    orthanc = orthanc_factory(aet="MULTIHOST", config_overrides={"DicomThreadsCount": 16})
    tiny = ("CT", "explicit", "ISO_IR 100", (STUDIES - 6) // 2, 3, 16)
    mix = (tiny, ("MR", "explicit", "ISO_IR 100", 6, BIG, 16), tiny)
    studies = support.mixed_studies(seed=1700, mix=mix)
    support.upload(orthanc, studies)
    expected_instances = sum(map(len, studies.values()))
    big_uids = {uid for uid, datasets in studies.items() if len(datasets) == BIG}
    assert len(studies) == STUDIES and len(big_uids) == 6

    with Cluster(HOSTS, tmp_path, engine_settings, settings.REDIS_URL) as cluster:
        network = cluster.network
        for index in range(1, HOSTS + 1):  # a host reaches its own /24 and nothing else
            assert network.routes(index) == (
                f"{network.subnet} dev eth0 proto kernel scope link src {network.address(index)}"
            )
        credentials = {support.S3_KEY_ENV: cluster.s3.access_key,
                       support.S3_SECRET_ENV: cluster.s3.secret_key}  # fmt: skip
        # Studies are taken over after their 6 s lease; a lost host's PACS slots only
        # after SLOT_LEASE, once the PACS has surely dropped the associations it left.
        cluster.env.update(credentials, MIGRATION_SLOT_LEASE_SECONDS=str(SLOT_LEASE))
        for name, value in credentials.items():
            monkeypatch.setenv(name, value)
        settings.EGRESS_ALLOW = cluster.egress_allow()
        settings.MIGRATION_SLOT_LEASE_SECONDS = SLOT_LEASE
        cluster.register(orthanc)
        source = PacsSource.objects.create(
            name="multihost",
            ae_title=orthanc.aet,
            host=cluster.gateway,
            port=orthanc.dicom_port,
            calling_ae_title=TEST_AET,
            retrieve_method="move",
            max_associations=LIMIT,
        )  # fmt: skip  (no move destination: each host moves to its own AE)
        support.make_inventory(source, studies)
        bucket = cluster.s3.create_bucket("multihost")
        destination = support.s3_destination(cluster.s3, bucket)
        wave, _info = actions.create_wave(
            name="three-hosts", source=source, destination=destination
        )
        assert dispatch.streams(source, [(wave.pk, None)]) == LIMIT // 2
        # The big studies wait (as a retry would) until the first studies are done, so
        # that a host is lost mid-wave while it receives one (mid_move releases them).
        later = timezone.now() + timedelta(hours=1)
        wave.ledger.filter(study__study_uid__in=big_uids).update(not_before=later)
        hosts = {host.index: host for host in cluster.start(engine_settings["MIGRATION_QUEUE"])}

        watched = (orthanc.proc.pid, orthanc.dicom_port, SCP_PORT, source.pk)
        with PacsAssociations(*watched) as pacs:
            actions.change_wave(wave, "start")
            victim, held = wait_for(
                lambda: mid_move(wave, hosts, big_uids, orthanc.dicom_port), timeout=600,
                interval=0.02,
                message="two hosts to have finished studies and one to be mid-C-MOVE",
            )  # fmt: skip
            lost = hosts[victim]
            done_by_victim = set(
                wave.ledger.filter(host=lost.hostname, state=StudyState.DONE).values_list(
                    "pk", flat=True
                )
            )
            lost_at = time.monotonic()
            killed = cluster.lose(victim)
            assert {lost.worker.proc.pid, lost.scp.proc.pid} <= killed
            # a small study it held may have finished between the look and the kill
            finished = set(
                wave.ledger.filter(pk__in=held, state=StudyState.DONE).values_list("pk", flat=True)
            )
            assert network.link(victim) not in network.leftovers()
            wait_for(
                lambda: Wave.objects.get(pk=wave.pk).state == WaveState.DONE,
                timeout=900, message="the wave to finish on the hosts left",
            )  # fmt: skip
        aside = {i: storescp.kept_aside(h.folder / "aside") for i, h in hosts.items()}
        objects = support.listed_keys(cluster.s3.client(), bucket)
    assert network.leftovers() == [], "every namespace and link is removed"

    rows = {row.pk: row for row in wave.ledger.select_related("study")}
    assert len(rows) == STUDIES == len({row.study_id for row in rows.values()})
    assert Counter(row.state for row in rows.values()) == {StudyState.DONE: STUDIES}
    survivors = {h.hostname for i, h in hosts.items() if i != victim}
    taken_over = set(held) - finished
    assert any(rows[pk].study.study_uid in big_uids for pk in taken_over), "one mid-C-MOVE"
    for pk in taken_over:  # taken over after its lease, by a host still alive
        assert rows[pk].host in survivors and rows[pk].attempts >= 2
    assert done_by_victim, "the lost host had migrated studies before it died"
    # below 0 when the host's C-MOVE ended in the milliseconds between the look and the loss
    held_for = pacs.last_seen(lost.address) - lost_at
    assert held_for < SLOT_LEASE, "the PACS dropped the dead host's associations before its slots"

    stored = [
        (i.ledger_id, i.sop_uid, i.key)
        for i in StoredInstance.objects.filter(ledger__wave=wave).select_related("ledger")
    ]
    assert len(stored) == len(set(stored)) == expected_instances
    for row in rows.values():
        sops = {sop for ledger, sop, _key in stored if ledger == row.pk}
        assert sops == {str(ds.SOPInstanceUID) for ds in studies[row.study.study_uid]}
        assert row.instances_reported == row.instances_stored == len(sops)
    instances = sorted(key for key in objects if key.endswith(".dcm"))
    assert instances == sorted(key for _l, _s, key in stored), "each instance once in the bucket"
    assert len(objects) - len(instances) == STUDIES, "one manifest per study"

    assert len(pacs.samples) > 100, "the PACS was watched throughout the wave"
    assert max(pacs.samples) <= LIMIT
    assert max(pacs.studies) == LIMIT // 2
    seen = set().union(*pacs.peers)
    assert {network.address(i) for i in hosts} <= seen, "every host held PACS associations"
    at_once = max(len(peers) for peers in pacs.peers)
    assert at_once >= 2, "hosts held the PACS's associations side by side"
    print(json.dumps({
        "studies": STUDIES, "instances": expected_instances, "limit": LIMIT,
        "pacs_associations_max": max(pacs.samples), "samples": len(pacs.samples),
        "studies_in_flight_max": max(pacs.studies), "hosts_at_once_max": at_once,
        "lost_host": lost.hostname, "lost_host_done_before": len(done_by_victim),
        "lost_host_associations_held_at_pacs_s": round(held_for, 1),
        "taken_over": {rows[pk].study_id: [rows[pk].host, rows[pk].attempts] for pk in held},
        "done_by_host": Counter(row.host for row in rows.values()),
        "kept_aside": {i: len(notes) for i, notes in aside.items()},
    }))  # fmt: skip
