"""Demo people for `make run`: an administrator and one user per role.

Passwords are generated once and kept in var/demo-credentials.json (never in the
repository), so a second run prints the same logins.
"""

import json
import secrets

from django.contrib.auth.models import Group, User

from commandcenter.access import ADMIN, CLINICIAN, ENGINEER, LEAD, PM, STAFF, ensure_roles

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
    """Register the demo legacy PACS of var/stack.json as a PACS source (idempotent) and
    queue its first inventory crawl; returns the source, or None without a demo PACS.

    The PACS must let the calling AE title query it (Orthanc: a DicomModalities entry).
    """
    from inventory import actions

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
