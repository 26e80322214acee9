"""`manage.py pacs add|echo|list|sync`: register legacy PACS sources, test them, and put
them in sync mode (the hybrid period, see sync/actions.py)."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inventory import actions
from inventory.models import PacsSource


class Command(BaseCommand):
    help = "Register a legacy PACS (add), test it with C-ECHO (echo), or list the sources."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="register or update a PACS source")
        add.add_argument("name")
        add.add_argument("--ae-title", required=True, help="the PACS's (called) AE title")
        add.add_argument("--host", required=True)
        add.add_argument("--port", required=True, type=int)
        add.add_argument("--calling-ae", help="our AE title (default MIGRATOR)")
        add.add_argument("--retrieve", choices=["get", "move"], help="C-GET or C-MOVE")
        add.add_argument(
            "--move-destination", help="AE title C-MOVEs are sent to (default: each host's own)"
        )
        add.add_argument("--max-associations", type=int)
        add.add_argument("--find-cap", type=int, help="known C-FIND result cap")
        add.add_argument("--tls", action="store_true", help="DICOM TLS")
        add.add_argument("--tls-ca", help="PEM path of the CA that signs the PACS's certificate")
        add.add_argument("--tls-cert", help="PEM path of our client certificate")
        add.add_argument("--tls-key", help="PEM path of our client key")
        echo = sub.add_parser("echo", help="C-ECHO a source and show the round trip")
        echo.add_argument("name")
        sub.add_parser("list", help="list the registered sources")
        sync = sub.add_parser("sync", help="sync mode: keep the cloud in step with this PACS")
        sync.add_argument("name")
        mode = sync.add_mutually_exclusive_group(required=True)
        mode.add_argument("--on", action="store_true", help="turn sync mode on")
        mode.add_argument("--off", action="store_true", help="turn sync mode off")
        mode.add_argument("--status", action="store_true", help="lag and pending studies")
        sync.add_argument("--every", type=float, metavar="MINUTES", help="crawl interval")
        sync.add_argument("--destination", help="destination name (default: the last wave's)")
        sync.add_argument(
            "--json", dest="as_json", action="store_true", help="with --status: one JSON object"
        )

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    def handle_add(self, name, ae_title, host, port, **options):
        chosen = {
            "calling_ae_title": options["calling_ae"],
            "retrieve_method": options["retrieve"],
            "move_destination": options["move_destination"],
            "max_associations": options["max_associations"],
            "find_cap": options["find_cap"],
            "tls": options["tls"] or None,
            "tls_ca_file": options["tls_ca"],
            "tls_cert_file": options["tls_cert"],
            "tls_key_file": options["tls_key"],
        }
        extra = {key: value for key, value in chosen.items() if value is not None}
        try:
            source, created = actions.register_source(name, ae_title, host, port, **extra)
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from None
        verb = "added" if created else "updated"
        self.stdout.write(
            f"{verb} {source.name}: {source.ae_title}@{source.host}:{source.port} "
            f"(calling AE {source.calling_ae_title}, {source.get_retrieve_method_display()})"
        )

    def handle_echo(self, name, **options):
        source = _source(name)
        result = actions.echo_source(source)
        if not result.ok:
            raise CommandError(f"C-ECHO failed: {result.message}")
        self.stdout.write(f"{source.name}: C-ECHO ok in {result.ms:g} ms")

    def handle_list(self, **options):
        for source in PacsSource.objects.all():
            echo = "never tested"
            if source.last_echo_at:
                echo = "ok" if source.last_echo_ok else "FAILED"
            self.stdout.write(
                f"{source.name}\t{source.ae_title}@{source.host}:{source.port}\t"
                f"{source.get_retrieve_method_display()}\tcap {source.find_cap or '-'}\t{echo}"
            )

    def handle_sync(self, name, on, off, status, every, destination, as_json, **options):
        from sync import actions as sync_actions

        source = _source(name)
        if status:
            shown = sync_actions.status_of(source)
            if as_json:
                self.stdout.write(json.dumps(shown))
            else:
                for key, value in shown.items():
                    self.stdout.write(f"{key}\t{'-' if value is None else value}")
            return
        try:
            chosen = sync_actions.destination_named(destination) if destination else None
            sync = sync_actions.configure(
                source, enabled=on, every_minutes=every, destination=chosen
            )
        except sync_actions.SyncError as exc:
            raise CommandError(str(exc)) from None
        state = f"on, every {sync.every_minutes:g} min to {sync.destination.name}" if on else "off"
        self.stdout.write(f"{source.name}: sync {state}")


def _source(name):
    try:
        return PacsSource.objects.get(name=name)
    except PacsSource.DoesNotExist:
        known = ", ".join(PacsSource.objects.values_list("name", flat=True)) or "none yet"
        raise CommandError(f"no PACS source named {name!r} (known: {known})") from None


def _messages(exc):
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)
