"""A study the bridge forwarded from the cloud to the legacy PACS is found there by the
next sync crawl, and must not be sent back to the cloud (issue 18: loops are prevented).

Cast: a legacy PACS in sync mode, a bridge from the cloud to it, a crawl that lists a
study of the PACS's own and one the bridge brought.
"""

import pytest

from hybrid.models import Bridge, Forward
from inventory.models import CrawlRun, PacsSource, Study
from migration.models import Destination, WaveStudy
from sync import actions

pytestmark = pytest.mark.django_db(transaction=True)


def test_sync_queues_the_pacs_own_new_study_and_not_the_one_the_bridge_brought():
    source = PacsSource.objects.create(name="legacy", ae_title="PACS", host="127.0.0.1", port=104)
    cloud = Destination.objects.create(name="cloud", kind="filesystem", path="/tmp/cc-loop")
    sync = actions.configure(source, enabled=True, destination=cloud)
    run = CrawlRun.objects.create(source=source)
    own, brought = (
        Study.objects.create(source=source, study_uid=uid, num_instances=1, seen_run=run)
        for uid in ("1.2.840.7.1", "1.2.840.7.2")
    )
    bridge = Bridge.objects.create(name="cloud-to-legacy", destination=cloud, source=source)
    Forward.objects.create(bridge=bridge, study_uid=brought.study_uid)

    new, topups = actions.queue_changes(sync, run)

    assert [s.study_uid for s in new] == [own.study_uid] and topups == []
    queued = set(WaveStudy.objects.values_list("study__study_uid", flat=True))
    assert queued == {own.study_uid}
