"""The per-instance records keep two small indexes (a billion rows at ten million
studies): a study's instances by ledger id, and a SOP Instance UID by a hash on
PostgreSQL. The engine's lookups use them, never a scan of the table."""

from django.db import connection

from inventory.models import PacsSource, Study
from migration.models import Destination, StoredInstance, Wave, WaveStudy


def test_a_studys_instances_and_a_uid_stored_elsewhere_are_found_by_index(db):
    assert connection.vendor == "postgresql", "the plans are checked on PostgreSQL"
    source = PacsSource.objects.create(name="big", ae_title="BIG", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="big", kind="filesystem", path="/tmp/b")
    wave = Wave.objects.create(name="big", source=source, destination=destination)
    study = Study.objects.create(source=source, study_uid="1.2.3")
    row = WaveStudy.objects.create(wave=wave, study=study)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO migration_storedinstance (ledger_id, sop_uid, series_uid, sop_class,"
            " transfer_syntax, size, sha256, key, role, reported_syntax)"
            " SELECT %s, '1.2.826.0.1.3680043.10.543.' || n, '1.2.3.1', '1.2', '1.2.840.10008.1.2',"
            " 1, decode(md5(n::text), 'hex'), 'k' || n, 'stored', ''"
            " FROM generate_series(1, 50000) n",
            [row.pk],
        )
        cursor.execute("ANALYZE migration_storedinstance")
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename = 'migration_storedinstance'"
        )
        kinds = dict(cursor.fetchall())
    assert "USING hash (sop_uid)" in kinds["stored_sop_uid_eq"]
    assert "USING btree (ledger_id)" in kinds["stored_ledger"]
    elsewhere = StoredInstance.objects.filter(
        sop_uid__in=[f"1.2.826.0.1.3680043.10.543.{n}" for n in (7, 4711, 49999)],
        role=StoredInstance.Role.STORED,
        ledger__wave__destination=destination,
    ).exclude(ledger__study=study)
    other = WaveStudy.objects.create(
        wave=wave, study=Study.objects.create(source=source, study_uid="9")
    )
    for name, query in {
        "a UID stored elsewhere": elsewhere,
        "a study's instances": StoredInstance.objects.filter(ledger=other),
    }.items():
        plan = query.explain()
        assert "Seq Scan on migration_storedinstance" not in plan and "Index" in plan, (name, plan)
