import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core import tokens
from core.models import ApiToken


class Command(BaseCommand):
    help = "Issue, list and revoke API tokens for systems (scoped to access rules)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        issue = sub.add_parser("issue", help="print a new token once (only its digest is kept)")
        issue.add_argument("username")
        issue.add_argument("--name", required=True)
        issue.add_argument("--scope", action="append", required=True, help="an access rule")
        issue.add_argument("--expires-days", type=int)
        issue.add_argument("--json", action="store_true")
        listing = sub.add_parser("list")
        listing.add_argument("--json", action="store_true")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("id", type=int)
        revoke.add_argument("--json", action="store_true")

    def handle(self, *args, verb, **options):
        rows = getattr(self, f"_{verb}")(**options)
        if options["json"]:
            self.stdout.write(json.dumps(rows, default=str))
        else:
            for row in rows if isinstance(rows, list) else [rows]:
                self.stdout.write("  ".join(f"{k}={v}" for k, v in row.items()))

    def _issue(self, username, name, scope, expires_days, **_):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        try:
            token, key = tokens.issue(user, name, scope, expires_days)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return {**_row(token), "key": key}

    def _list(self, **_):
        return [_row(t) for t in ApiToken.objects.select_related("user")]

    def _revoke(self, id, **_):  # noqa: A002 (the argument's name)
        try:
            return _row(tokens.revoke(id))
        except ApiToken.DoesNotExist:
            raise CommandError(f"no token {id}") from None


def _row(token):
    return {
        "id": token.pk,
        "user": token.user.get_username(),
        "name": token.name,
        "prefix": token.prefix,
        "scopes": token.scopes,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "last_used_at": token.last_used_at,
    }
