"""Schemathesis over /api/schema/: every operation, as every role and anonymously,
against the live ASGI server on the real database and Redis. No answer may be a server
error, and every documented answer must match the schema.

Operations that reach outside (echo a PACS, start a crawl or a wave, check a destination,
run a probe, re-migrate, validate) are left out: generated hosts must never be contacted.
"""

import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from core import tokens
from core.access import RULES
from devstack.services.base import LOOPBACK, free_port
from tests.conftest import CAST
from tests.fixtures_processes import REPO, database_url

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "3"))  # per operation and role
ONLY = re.compile(os.environ.get("SCHEMATHESIS_ONLY", ""))  # a path pattern, to chase a failure
OUTBOUND = re.compile(r"/(echo|crawl|check|run|start|resume|retry|remigrate)/$|/validation/runs/$")
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _summary(exc):
    """The failure's kind and its first lines of detail, on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " | ".join(lines[1:6])[:600] or repr(exc)[:600]


def _checks(operation):
    """/api/health/ answers 503 while a part is down (here: no worker): that is its answer."""
    return CHECKS[1:] if operation.path == "/api/health/" else CHECKS


def _operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        outbound = operation.method.upper() != "GET" and OUTBOUND.search(operation.path)
        if not outbound and ONLY.search(operation.path):
            yield operation


def _fuzz(operation, base_url, role, headers, failures, counter):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: CI fails only on a real change
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        counter[0] += 1
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=60)
            case.validate_response(response, checks=_checks(operation))
        except (Exception, BaseExceptionGroup) as exc:  # record it, go on with the next case
            failures.append(f"{role} {operation.label}: {_summary(exc)}")

    run()


@pytest.fixture
def api_server(transactional_db, tmp_path):
    """The ASGI app in its own uvicorn process, as deployed, on the test database."""
    port = free_port()
    log = open(tmp_path / "uvicorn.log", "wb")  # noqa: SIM115 (closed at teardown)
    args = ["-m", "uvicorn", "commandcenter.asgi:application", "--host", LOOPBACK]
    proc = subprocess.Popen(
        [sys.executable, *args, "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env=dict(os.environ, DATABASE_URL=database_url()),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{LOOPBACK}:{port}"
    _wait_until_up(url, proc, tmp_path / "uvicorn.log")
    yield SimpleNamespace(url=url, log=tmp_path / "uvicorn.log")
    proc.terminate()
    proc.wait(15)
    log.close()


def _wait_until_up(url, proc, log_path):
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"uvicorn exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            requests.get(f"{url}/healthz", timeout=5)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("uvicorn did not answer within 60 s")


def test_the_api_gives_no_server_error_and_keeps_to_its_schema_for_every_role(cast, api_server):
    keys = {name: tokens.issue(getattr(cast, name), "fuzz", list(RULES))[1] for name in CAST}
    auth = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    auth["anonymous"] = {}
    schema = schemathesis.openapi.from_url(f"{api_server.url}/api/schema/", headers=auth["admin"])
    failures, counter, operations = [], [0], list(_operations(schema))
    for role, headers in auth.items():
        for operation in operations:
            _fuzz(operation, api_server.url, role, headers, failures, counter)
    print(f"schemathesis: {counter[0]} cases, {len(operations)} operations × {len(auth)} roles")
    assert len(operations) > 150 or ONLY.pattern
    assert counter[0] >= len(operations) * len(auth)
    lines = api_server.log.read_text(errors="replace").splitlines()
    server_log = "\n".join(line for line in lines if "WARNING" not in line)[-6000:]
    assert failures == [], "\n".join(sorted(set(failures))) + "\n" + server_log
