"""Preload one example price list (AWS S3 list prices, us-east-1, first tiers, as
published in 2024; not re-checked): editable data, never a network look-up."""

import datetime

from django.db import migrations

PRICES = {
    "storage_gb_month": {"STANDARD": 0.023, "STANDARD_IA": 0.0125, "GLACIER_IR": 0.004},
    "put_per_1000": {"STANDARD": 0.005, "STANDARD_IA": 0.01, "GLACIER_IR": 0.02},
    "get_per_1000": {"STANDARD": 0.0004, "STANDARD_IA": 0.001, "GLACIER_IR": 0.01},
    "transition_per_1000": {"STANDARD_IA": 0.01, "GLACIER_IR": 0.02},
    "retrieval_gb": {"STANDARD": 0.0, "STANDARD_IA": 0.01, "GLACIER_IR": 0.03},
    "egress_gb": 0.09,
    "device_job": 300.0,
}


def preload(apps, schema_editor):
    PriceList = apps.get_model("migration", "PriceList")
    PriceList.objects.get_or_create(
        name="aws-s3-us-east-1-example",
        defaults={
            "region": "us-east-1",
            "currency": "USD",
            "taken_on": datetime.date(2024, 6, 1),
            "source": "AWS S3 and Snowball list prices (us-east-1, first tiers) as published "
            "in 2024; an example, not re-checked: edit before relying on it",
            "prices": PRICES,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("migration", "0004_design_conformance_forecast")]
    operations = [migrations.RunPython(preload, migrations.RunPython.noop)]
