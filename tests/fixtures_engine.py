"""Fixtures of the tests that run the migration engine (migration, hybrid, sync): engine
settings for this session, a restartable S3 server of our own, a PACS seeded with 50
mixed studies, and Celery workers that consume this session's migration queue (so no
other worker takes our tasks).

Loaded once from tests/conftest.py, so every suite shares one S3 server and one seeded
PACS: a fixture imported into several conftests is a separate session fixture in each,
and two S3 servers with two key pairs in one process's environment cannot both be right.
The suites opt in with an autouse fixture of their own (`engine_suite`)."""

import os
import re
import shutil
import tempfile

import pytest
import redis
from django.conf import settings

from devstack.services.seaweedfs import SeaweedS3
from tests.fixtures_processes import CeleryWorker, StorageScp
from tests.fixtures_services import TEST_AET, start_service
from tests.migration import support

ENGINE_SETTINGS = {
    "MIGRATION_QUEUE": f"migtest-{os.getpid()}",
    "MIGRATION_REDIS_PREFIX": f"migtest{os.getpid()}",
    "MIGRATION_LEASE_SECONDS": 6.0,
    "MIGRATION_RETRY_BASE_SECONDS": 0.5,
    "MIGRATION_RETRY_MAX_SECONDS": 3.0,
    "MIGRATION_MAX_ATTEMPTS": 24,  # about a minute of retries: a restarted store on a busy machine
    "MIGRATION_UPLOAD_THREADS": 4,
    "MIGRATION_DIMSE_TIMEOUT": 15.0,
    "MIGRATION_STORAGE_SCP_AET": TEST_AET,
    "MIGRATION_STORAGE_SCP_SOCKET": f"/tmp/cc-migtest-scp-{os.getpid()}.sock",
    "MIGRATION_STORAGE_SCP_ASIDE": tempfile.mkdtemp(prefix="cc-migtest-aside-"),
}


@pytest.fixture(scope="session")
def engine_settings(storage_scp_port):
    """Short leases and retries for tests, in this process and (as env) in our workers."""
    values = {**ENGINE_SETTINGS, "MIGRATION_STORAGE_SCP_PORT": storage_scp_port}
    saved = {name: getattr(settings, name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    yield {name: str(value) for name, value in values.items()}
    for name, value in saved.items():
        setattr(settings, name, value)


@pytest.fixture
def clean_engine_redis(engine_settings):
    """Each test starts with no leftover slots, latency state, scheduled ticks or tasks
    queued for a worker by an earlier test."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{settings.MIGRATION_REDIS_PREFIX}:*"))
    keys += list(client.scan_iter(f"{settings.MIGRATION_QUEUE}*"))
    if keys:
        client.delete(*keys)
    yield


@pytest.fixture(scope="session")
def migration_s3():
    """Our own SeaweedFS in a persistent folder, so a test can stop and restart it."""
    workdir = tempfile.mkdtemp(prefix="cc-migs3-")
    server = SeaweedS3(workdir=workdir)
    start_service(server)
    os.environ[support.S3_KEY_ENV] = server.access_key
    os.environ[support.S3_SECRET_ENV] = server.secret_key
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def bucket(migration_s3, request):
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"mig-{slug}-{os.urandom(3).hex()}"
    migration_s3.create_bucket(name)
    return name


@pytest.fixture(scope="session")
def mixed_pacs(orthanc_factory):
    """An Orthanc legacy PACS holding 50 small studies of six modalities, four transfer
    syntaxes and two character sets: (orthanc, {StudyInstanceUID: [datasets]})."""
    orthanc = orthanc_factory(aet="MIGPACS")
    studies = support.mixed_studies()
    support.upload(orthanc, studies)
    return orthanc, studies


def worker_env(engine_settings, migration_s3, **extra):
    return {
        **engine_settings,
        support.S3_KEY_ENV: migration_s3.access_key,
        support.S3_SECRET_ENV: migration_s3.secret_key,
        **extra,
    }


@pytest.fixture
def start_worker(engine_settings, migration_s3, django_db_blocker, tmp_path):
    """start_worker(name, **env) -> a running CeleryWorker on this session's migration
    queue (or MIGRATION_QUEUE from env); stopped after the test."""
    started = []

    def start(name, concurrency=2, **env):
        env = worker_env(engine_settings, migration_s3, **env)
        queue = env["MIGRATION_QUEUE"]
        worker = CeleryWorker(
            f"{name}-{os.getpid()}@localhost", tmp_path / f"{name}.log", env=env,
            args=["-Q", queue, "--concurrency", str(concurrency)],
        )  # fmt: skip
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def migration_worker(engine_settings, migration_s3, django_db_setup, tmp_path_factory):
    """A worker for one module's wave tests (4 processes: studies wait on the PACS and the
    stores more than on the CPU). Per module, so that no worker is left running to claim
    the studies of a later module's in-process tests."""
    log = tmp_path_factory.mktemp("migworker") / "worker.log"
    env = worker_env(engine_settings, migration_s3)
    worker = CeleryWorker(
        f"migration-{os.getpid()}@localhost", log, env=env,
        args=["-Q", env["MIGRATION_QUEUE"], "--concurrency", "4"],
    )  # fmt: skip
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def move_scp(engine_settings, migration_s3, django_db_setup, tmp_path_factory):
    """This host's Storage SCP for C-MOVE (`manage.py storescp`) on storage_scp_port, for
    one module (other modules run their own SCPs on that port)."""
    log = tmp_path_factory.mktemp("storescp") / "storescp.log"
    scp = StorageScp(log, env=worker_env(engine_settings, migration_s3)).start()
    yield scp
    scp.stop()
