"""`manage.py storescp`: this worker host's long-lived Storage SCP for C-MOVE, routing
each received instance to the study run that asked for it (migration/storescp.py).
`--aside` lists the instances kept aside because nobody asked for them."""

import json
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dicomnet import tls
from migration import actions, dicom, storescp


class Command(BaseCommand):
    help = "Run this host's Storage SCP for C-MOVE (the stack starts it beside the workers)."

    def add_arguments(self, parser):
        parser.add_argument("--aet", default="", help="AE title (MIGRATION_STORAGE_SCP_AET)")
        parser.add_argument("--port", type=int, help="port (MIGRATION_STORAGE_SCP_PORT)")
        parser.add_argument("--bind", default="", help="address (MIGRATION_STORAGE_SCP_BIND)")
        parser.add_argument(
            "--aside", action="store_true", help="list the instances kept aside, as JSON lines"
        )

    def handle(self, *args, **options):
        if options["aside"]:
            for note in storescp.kept_aside():
                self.stdout.write(json.dumps(note))
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            storescp.serve(
                options["aet"], options["port"], options["bind"], ready=self._ready, stop=stop,
                record=actions.record_kept_aside,
            )  # fmt: skip
        except (dicom.RetrieveError, tls.TlsError, OSError) as exc:
            raise CommandError(f"storescp: {exc}") from None

    def _ready(self, aet, bind, port, path):
        self.stdout.write(
            f"storescp: AE {aet} listening on {bind}:{port}"
            f"{' (DICOM TLS)' if settings.MIGRATION_STORAGE_SCP_TLS_CERT else ''}, "
            f"routing through {path}, "
            f"keeping unclaimed instances in {settings.MIGRATION_STORAGE_SCP_ASIDE}"
        )
        self.stdout.flush()
