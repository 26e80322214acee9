from django.db import migrations

from inventory import rollup


class Migration(migrations.Migration):
    """The study rollup's triggers run once per statement (see core/rollups.py)."""

    dependencies = [("inventory", "0009_study_rollup")]

    operations = [migrations.RunPython(rollup.STUDIES.reinstall, migrations.RunPython.noop)]
