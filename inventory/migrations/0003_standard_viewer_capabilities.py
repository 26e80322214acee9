from django.db import migrations

STANDARD = (
    ("window_level", "Window/level"),
    ("zoom_pan", "Zoom/pan"),
    ("measurements", "Measurements"),
    ("mpr", "MPR"),
    ("hanging_protocols", "Hanging protocols"),
    ("prior_comparison", "Prior comparison"),
    ("key_images", "Key images"),
    ("annotations", "Annotations"),
    ("cine", "Cine"),
    ("fusion", "Fusion"),
)


def add_standard(apps, schema_editor):
    capability = apps.get_model("inventory", "ViewerCapability")
    for code, name in STANDARD:
        capability.objects.update_or_create(code=code, defaults={"name": name, "standard": True})


class Migration(migrations.Migration):
    dependencies = [("inventory", "0002_growthsnapshot_integration_series_sharingworkflow_and_more")]
    operations = [migrations.RunPython(add_standard, migrations.RunPython.noop)]
