from django.db import migrations

ROLES = [
    "command_center_staff",
    "command_center_lead",
    "project_manager",
    "clinician",
    "migration_engineer",
    "admin",
]


def create_roles(apps, schema_editor):
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    replaces = [("commandcenter", "0002_roles")]  # the app was called commandcenter before the split
    dependencies = [("core", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
