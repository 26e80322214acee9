"""Quirks of real archives, played by a small pynetdicom PACS and by dcmtk's dcmqrscp: an
association rejected for now (busy) is retried, one rejected for good (unknown AE) is
not; a PACS that sends an instance twice; a C-MOVE whose sub-operations fail."""

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from devstack import synthetic
from devstack.services.base import free_port
from devstack.services.dcmtk import DcmQrScp
from migration import dicom
from migration.dicom import RetrieveError
from migration.models import StoredInstance, StudyState
from tests.fixtures_services import TEST_AET, start_service
from tests.migration import support
from tests.migration.test_engine import run_in_process, running_wave

pytestmark = pytest.mark.django_db(transaction=True)
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
COUNTS = ("NumberOfRemainingSuboperations", "NumberOfCompletedSuboperations",
          "NumberOfFailedSuboperations", "NumberOfWarningSuboperations")  # fmt: skip


class QuirkyPacs:
    """A pynetdicom Q/R SCP holding one study: it answers the study-level C-FIND with its
    count, and its C-GET sends `sent` (datasets, maybe one twice). It takes `limit`
    associations at once and only `known` calling AE titles."""

    aet = "QUIRKY"

    def __init__(self, datasets, sent, limit=4, known=(TEST_AET,), move_to=None):
        self.datasets, self.sent = datasets, sent
        self.move_to = move_to  # port of the C-MOVE destination
        self.port = free_port()
        ae = AE(ae_title=self.aet)
        ae.maximum_associations = limit
        ae.require_calling_aet = list(known)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        ae.add_supported_context(CTImageStorage, SYNTAXES, scu_role=True, scp_role=True)
        ae.add_requested_context(CTImageStorage, SYNTAXES)
        handlers = [(evt.EVT_C_FIND, self.find), (evt.EVT_C_GET, self.get),
                    (evt.EVT_C_MOVE, self.move)]  # fmt: skip
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)

    def find(self, event):
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.StudyInstanceUID = self.datasets[0].StudyInstanceUID
        match.NumberOfStudyRelatedInstances = str(len(self.datasets))
        match.SOPClassesInStudy = CTImageStorage
        yield 0xFF00, match

    def get(self, event):
        yield len(self.sent)
        for ds in self.sent:
            yield 0xFF00, ds

    def move(self, event):
        """C-MOVE, its pending responses stripped of their counts (some archives do)."""
        send = event.assoc.dimse.send_msg

        def without_counts(message, context_id):
            if getattr(message, "Status", None) == 0xFF00:
                for name in COUNTS:
                    setattr(message, name, None)
            return send(message, context_id)

        event.assoc.dimse.send_msg = without_counts
        yield "127.0.0.1", self.move_to
        yield len(self.sent)
        for ds in self.sent:
            yield 0xFF00, ds

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def one_study():
    (datasets,) = synthetic.iter_studies(studies=1, instances=2, rows=16, cols=16, seed=1800)
    for ds in datasets:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return {str(datasets[0].StudyInstanceUID): datasets}


@pytest.fixture
def quirky():
    started = []

    def start(*args, **kwargs):
        pacs = QuirkyPacs(*args, **kwargs)
        started.append(pacs)
        return pacs

    yield start
    for pacs in started:
        pacs.stop()


def test_an_instance_sent_twice_within_a_study_is_stored_once_and_the_study_verifies(
    quirky, one_study, migration_s3, bucket
):
    (uid, datasets), = one_study.items()  # fmt: skip
    pacs = quirky(datasets, [datasets[0], datasets[1], datasets[0]])
    source = support.make_source(pacs, name="twice")
    support.make_inventory(source, one_study)
    wave = running_wave("twice", source, support.s3_destination(migration_s3, bucket))

    assert run_in_process(wave) == {uid: StudyState.DONE}
    row = wave.ledger.get()
    assert (row.instances_received, row.instances_stored) == (3, 2)
    stored = StoredInstance.objects.filter(ledger=row).values_list("sop_uid", flat=True)
    assert sorted(stored) == sorted(str(ds.SOPInstanceUID) for ds in datasets)


def test_a_c_move_answered_with_pending_responses_without_counts_migrates_the_study(
    quirky, one_study, migration_s3, bucket, move_scp, storage_scp_port
):
    (uid, datasets), = one_study.items()  # fmt: skip
    pacs = quirky(datasets, datasets, move_to=storage_scp_port)
    source = support.make_source(pacs, name="no-counts", retrieve_method="move")
    support.make_inventory(source, one_study)
    wave = running_wave("no-counts", source, support.s3_destination(migration_s3, bucket))

    states = run_in_process(wave)

    row = wave.ledger.get()
    assert states == {uid: StudyState.DONE}, row.last_error
    assert row.instances_reported == row.instances_stored == len(datasets)


def test_a_busy_pacs_rejects_for_now_and_an_unknown_ae_title_is_rejected_for_good(
    quirky, one_study
):
    (uid, datasets), = one_study.items()  # fmt: skip
    busy = quirky(datasets, datasets, limit=1)
    strict = quirky(datasets, datasets, known=("SOMEONEELSE",))
    holder = AE(ae_title=TEST_AET)
    holder.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    held = holder.associate("127.0.0.1", busy.port, ae_title=busy.aet)
    assert held.is_established
    try:
        with pytest.raises(RetrieveError) as for_now:
            dicom.query_study(dicom.Pacs("127.0.0.1", busy.port, busy.aet, TEST_AET), uid)
    finally:
        held.release()
    with pytest.raises(RetrieveError) as for_good:
        dicom.query_study(dicom.Pacs("127.0.0.1", strict.port, strict.aet, TEST_AET), uid)

    assert for_now.value.error_class == "association_limit"
    assert "too many associations" in str(for_now.value)
    assert for_good.value.error_class == "configuration"
    assert "rejected the association permanently: calling AE title not recognized" in str(
        for_good.value
    )
    support.wait_for(lambda: answers(busy, uid), message="the busy PACS to answer once free")


def answers(pacs, uid):
    try:
        return dicom.query_study(dicom.Pacs("127.0.0.1", pacs.port, pacs.aet, TEST_AET), uid).count
    except RetrieveError as exc:
        assert exc.error_class == "association_limit"
        return 0


def test_a_c_move_whose_sub_operation_fails_fails_the_study_naming_the_instance(
    tmp_path, migration_s3, bucket, storage_scp_port, move_scp
):
    archive = DcmQrScp(aet="BROKENMOVE", workdir=tmp_path / "qr",
                       peers={TEST_AET: ("127.0.0.1", storage_scp_port)})  # fmt: skip
    start_service(archive)
    try:
        (datasets,) = synthetic.iter_studies(studies=1, instances=3, rows=16, cols=16, seed=1801)
        archive.store_datasets(datasets)
        damaged = sorted(archive.storage_dir.glob("CT_*"))[0]
        damaged.write_bytes(damaged.read_bytes()[:-200])
        source = support.make_source(archive, name="broken-move", retrieve_method="move")
        support.make_inventory(source, {str(datasets[0].StudyInstanceUID): datasets})
        wave = running_wave("broken-move", source, support.s3_destination(migration_s3, bucket))

        assert list(run_in_process(wave).values()) == [StudyState.FAILED]
    finally:
        archive.stop()
    row = wave.ledger.get()
    assert row.error_class == "verification_mismatch"
    assert "the PACS failed to send 1 instance(s)" in row.last_error
    assert "missing: " in row.last_error
