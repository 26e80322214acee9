from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devstack.stack import Stack, StackError


class Command(BaseCommand):
    help = "Run the whole product locally (what `make run` does); Ctrl-C stops it all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-demo", action="store_true", help="no demo PACS, S3 store or demo studies"
        )

    def handle(self, *args, host, port, no_demo, **options):
        stack = Stack(settings.BASE_DIR, settings.VAR_DIR, host=host, port=port, demo=not no_demo)
        try:
            stack.run()
        except StackError as exc:
            raise CommandError(str(exc)) from None
