"""A study's key format on its ledger row; an instance row keeps a key of its own only
where the format does not place it (the column keeps its name: rows written before hold
their whole key, which is still right)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("migration", "0015_stored_instance_sha256_bytes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField(
                    model_name="storedinstance", old_name="key", new_name="own_key"
                ),
                migrations.AlterField(
                    model_name="storedinstance",
                    name="own_key",
                    field=models.CharField(blank=True, db_column="key", max_length=500),
                ),
            ],
        ),
        migrations.AddField(
            model_name="wavestudy",
            name="key_format",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="where the study's instances sit in the destination: their key "
                "with {series} and {sop} for the UIDs ('': each instance row holds its own "
                "key)",
                max_length=500,
            ),
        ),
    ]
