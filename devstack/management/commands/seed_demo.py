import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from devstack import demo


class Command(BaseCommand):
    help = "Create the demo people, training data and demo PACS source (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--stack-file",
            type=Path,
            help="var/stack.json written by `make run` (demo PACS and S3)",
        )

    def handle(self, *args, stack_file=None, **options):
        password = demo.demo_password(settings.VAR_DIR)
        created = demo.ensure_demo_people(password)
        if created:
            self.stdout.write(f"created demo users: {', '.join(created)}")
        self.stdout.write(
            f"demo login: admin / {password}  (also staff, lead, pm, clinician, "
            "engineer with the same password)"
        )
        from training.demo import seed_training_demo

        seed_training_demo()
        if stack_file and stack_file.exists():
            source = demo.register_demo_sources(json.loads(stack_file.read_text()))
            if source is not None:
                self.stdout.write(f"demo PACS registered as source '{source.name}'")
            self.stdout.write("demo S3 bucket registered as destination 'demo-s3'")
