from django.db import migrations

from migration import tally


class Migration(migrations.Migration):
    """The ledger tally's triggers run once per statement (see core/rollups.py)."""

    dependencies = [("migration", "0011_transcoded_index")]

    operations = [migrations.RunPython(tally.LEDGER.reinstall, migrations.RunPython.noop)]
