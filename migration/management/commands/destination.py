"""`manage.py destination add|check|conform|list`: cloud destinations, a probe that proves
one works (write, read back, delete) or says clearly why not, and the check of its store
against its design (`conform --json` prints `conforms` and `requirements`)."""

import json

from django.core.management.base import BaseCommand, CommandError

from migration import actions
from migration.models import Destination


class Command(BaseCommand):
    help = "Add, check and list migration destinations (S3, DICOMweb, a folder)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="register a destination")
        add.add_argument("name")
        kind = add.add_mutually_exclusive_group(required=True)
        kind.add_argument("--s3-bucket", help="an S3 bucket")
        kind.add_argument("--dicomweb", metavar="URL", help="a DICOMweb (STOW-RS) base URL")
        kind.add_argument("--path", metavar="DIR", help="a local folder")
        add.add_argument("--endpoint-url", default="", help="S3-compatible endpoint")
        add.add_argument("--prefix", default="", help="key prefix inside the bucket")
        add.add_argument("--region", default="")
        add.add_argument("--sse", choices=["AES256", "aws:kms"], default="")
        add.add_argument("--kms-key-id", default="")
        add.add_argument("--storage-class", default="")
        add.add_argument("--access-key-env", default="", help="variable holding the key id")
        add.add_argument("--secret-key-env", default="", help="variable holding the secret")
        add.add_argument(
            "--auth-header-env",
            default="",
            help="variable holding the DICOMweb Authorization header",
        )
        add.add_argument("--max-object-mb", type=int, help="largest instance the destination takes")
        check = sub.add_parser("check", help="write, read back and delete a probe object")
        check.add_argument("name")
        check.add_argument("--json", dest="as_json", action="store_true")
        conform = sub.add_parser("conform", help="check the store against the design")
        conform.add_argument("name")
        conform.add_argument("--json", dest="as_json", action="store_true")
        listing = sub.add_parser("list", help="list destinations")
        listing.add_argument("--json", dest="as_json", action="store_true")

    def handle(self, *args, action, **options):
        getattr(self, f"do_{action}")(**options)

    def do_add(self, name, s3_bucket=None, dicomweb=None, path=None, **options):
        fields = {key: options[key] or "" for key in (
            "endpoint_url", "prefix", "region", "sse", "kms_key_id", "storage_class",
            "access_key_env", "secret_key_env", "auth_header_env",
        )}  # fmt: skip
        fields["max_object_mb"] = options.get("max_object_mb")
        if s3_bucket:
            fields.update(kind="s3", bucket=s3_bucket)
        elif dicomweb:
            fields.update(kind="dicomweb", url=dicomweb)
        else:
            fields.update(kind="filesystem", path=path)
        try:
            destination = actions.add_destination(name=name, **fields)
        except actions.ActionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"added {destination.kind} destination {destination.name}: {destination.summary}"
        )

    def do_check(self, name, as_json=False, **options):
        destination = _destination(name)
        result = actions.check_destination(destination)
        ms = f" in {result['ms']:.0f} ms" if result["ms"] is not None else ""
        verdict = "ok" if result["ok"] else "FAILED"
        self.stdout.write(f"{destination.name}: {verdict}{ms}: {result['detail']}")
        if as_json:
            self.stdout.write(json.dumps({"destination": destination.name, **result}))
        if not result["ok"]:
            raise CommandError(
                f"destination {destination.name} failed its check: {result['detail']}"
            )

    def do_conform(self, name, as_json=False, **options):
        run = actions.check_conformance(_destination(name), trigger="command")
        if as_json:
            fields = ("name", "required", "actual", "ok", "evidence")
            rows = [{k: r[k] for k in fields} for r in run.requirements]
            self.stdout.write(json.dumps({"destination": name, "conforms": run.conforms,
                                          "requirements": rows, "error": run.error}))  # fmt: skip
            return
        for r in run.requirements:
            mark = "ok  " if r["ok"] else "FAIL"
            self.stdout.write(f"{mark} {r['name']}: required {r['required']}; is {r['actual']}")
        self.stdout.write(f"{name}: {'conforms' if run.conforms else 'does NOT conform'}"
                          + (f" ({run.error})" if run.error else ""))  # fmt: skip

    def do_list(self, as_json=False, **options):
        rows = [
            {"name": d.name, "kind": d.kind, "where": d.summary, "last_check_ok": d.last_check_ok}
            for d in Destination.objects.all()
        ]
        for row in rows:
            self.stdout.write(f"{row['name']:20} {row['kind']:10} {row['where']}")
        if as_json:
            self.stdout.write(json.dumps({"destinations": rows}))


def _destination(name):
    try:
        return Destination.objects.get(name=name)
    except Destination.DoesNotExist:
        raise CommandError(f"no destination named {name!r}") from None
