"""StoredInstance.sha256 as its 32 bytes (bytea) instead of 64 hex characters."""

from django.db import migrations

import core.fields

TABLE = "migration_storedinstance"


def _convert(schema_editor, postgres_sql, convert):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(postgres_sql)
        return
    # SQLite keeps any value in any column: each row's value changes kind where it sits
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, sha256 FROM {TABLE}")
        rows = [(convert(sha), pk) for pk, sha in cursor.fetchall() if sha is not None]
        cursor.executemany(f"UPDATE {TABLE} SET sha256 = %s WHERE id = %s", rows)


def to_bytes(apps, schema_editor):
    _convert(
        schema_editor,
        f"ALTER TABLE {TABLE} ALTER COLUMN sha256 TYPE bytea USING decode(sha256, 'hex')",
        lambda sha: bytes.fromhex(sha) if isinstance(sha, str) else sha,
    )


def to_hex(apps, schema_editor):
    _convert(
        schema_editor,
        f"ALTER TABLE {TABLE} ALTER COLUMN sha256 TYPE varchar(64) USING encode(sha256, 'hex')",
        lambda sha: bytes(sha).hex() if not isinstance(sha, str) else sha,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("migration", "0014_stored_instance_slim_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="storedinstance",
                    name="sha256",
                    field=core.fields.HexDigestField(),
                ),
            ],
            database_operations=[migrations.RunPython(to_bytes, to_hex)],
        ),
    ]
