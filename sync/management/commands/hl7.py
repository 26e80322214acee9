"""`manage.py hl7 listen [--host H] [--port P]`: the HL7 v2 MLLP listener (priors first)."""

import asyncio
import contextlib

from django.core.management.base import BaseCommand

from sync.listener import Listener


class Command(BaseCommand):
    help = "Receive SIU/ORM/OMI messages over MLLP and queue the patients' priors."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listen = sub.add_parser("listen", help="run the MLLP listener until interrupted")
        listen.add_argument("--host", help="address to bind (default HL7_HOST, loopback)")
        listen.add_argument("--port", type=int, help="port (default HL7_PORT; 0 picks one)")

    def handle(self, *args, action, host=None, port=None, **options):
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._listen(host, port))

    async def _listen(self, host, port):
        listener = await Listener(host, port).start()
        self.stdout.write(f"HL7 MLLP listener on {listener.host}:{listener.port}")
        self.stdout.flush()
        await listener.serve_forever()
