"""Demo people for `make run`: an administrator and one user per role.

Passwords are generated once and kept in var/demo-credentials.json (never in the
repository), so a second run prints the same logins.
"""

import json
import secrets

from django.contrib.auth.models import Group, User

from core.access import ADMIN, CLINICIAN, ENGINEER, LEAD, PM, STAFF, ensure_roles

DEMO_PEOPLE = {
    "admin": ADMIN,
    "staff": STAFF,
    "lead": LEAD,
    "pm": PM,
    "clinician": CLINICIAN,
    "engineer": ENGINEER,
}


def demo_password(var_dir):
    path = var_dir / "demo-credentials.json"
    if path.exists():
        return json.loads(path.read_text())["password"]
    password = f"demo-{secrets.token_urlsafe(9)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"password": password}))
    path.chmod(0o600)
    return password


def ensure_demo_people(password):
    """Create the demo users that are missing; returns the usernames created."""
    ensure_roles()
    created = []
    for username, role in DEMO_PEOPLE.items():
        user, was_created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@demo.hospital"}
        )
        if was_created:
            user.set_password(password)
            user.is_staff = user.is_superuser = role == ADMIN
            user.save()
            created.append(username)
        user.groups.add(Group.objects.get(name=role))
    return created


def register_demo_sources(stack):
    """Register what var/stack.json describes (idempotent): the demo S3 bucket as
    destination `demo-s3`, and the demo legacy PACS as a PACS source with its first
    inventory crawl queued. Returns the source, or None without a demo PACS.

    The PACS must let the calling AE title query it (Orthanc: a DicomModalities entry).
    """
    from inventory import actions

    _register_demo_destination((stack or {}).get("s3"))
    pacs = (stack or {}).get("pacs")
    if not pacs:
        return None
    source, _created = actions.register_source(
        "demo-pacs",
        pacs["aet"],
        pacs["host"],
        int(pacs["port"]),
        calling_ae_title=pacs.get("calling_aet", "MIGRATOR"),
    )
    if not source.crawls.exists():
        actions.start_crawl(source)
    return source


def _register_demo_destination(s3):
    """The demo S3 bucket as destination `demo-s3`; its port changes with every start, so
    the endpoint is updated each time. Credentials stay in the stack's environment."""
    if not s3:
        return None
    from devstack.stack import DEMO_S3_ENV
    from migration.models import Destination

    access_env, secret_env = DEMO_S3_ENV
    destination, _created = Destination.objects.update_or_create(
        name="demo-s3",
        defaults={
            "kind": Destination.Kind.S3, "bucket": s3["bucket"], "prefix": "demo",
            "endpoint_url": s3["endpoint_url"], "region": s3.get("region", ""),
            "access_key_env": access_env, "secret_key_env": secret_env,
        },
    )  # fmt: skip
    return destination
