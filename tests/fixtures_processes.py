"""The application's own processes under test: a Celery worker, a live ASGI server
and headless Chromium driven by Playwright.

Tests that use the worker or the live server see the database from another process
or thread, so they need committed data: mark them `django_db(transaction=True)`.
"""

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import uvicorn
from celery import Celery
from django.db import connection

from devstack.services.base import LOOPBACK, free_port
from devstack.stack import celery_args
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def database_url(host=None, port=None):
    """The URL of the database this test session uses (the test database); `host` and
    `port` replace the server's (a relay to it)."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(conf['NAME']).resolve()}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    host, port = host or conf["HOST"] or LOOPBACK, port or conf["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{conf['NAME']}"


class ChildProcess:
    """A process a test starts (`proc`), writing to `log_path`."""

    proc = None
    log_path = None

    def log_tail(self, lines=15):
        return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class CeleryWorker(ChildProcess):
    """`env` adds environment variables; `args` adds worker options (e.g. ["-Q", "q"]);
    `wrap` is a command the worker runs under (e.g. `ip netns exec NAME`).
    A CELERY_BROKER_URL in `env` is the broker the readiness ping goes through too."""

    def __init__(self, name, log_path, env=None, args=(), wrap=()):
        self.name = name
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.extra_args = list(args)
        self.wrap = list(wrap)
        self.proc = None
        self.broker_url = self.extra_env.get("CELERY_BROKER_URL")

    def start(self):
        env = dict(os.environ, DATABASE_URL=database_url(), PYTHONUNBUFFERED="1")
        env.update(self.extra_env)
        cmd = [
            *self.wrap,
            sys.executable,
            *celery_args(
                "worker",
                "--concurrency",
                "2",
                "-n",
                self.name,
                "--without-mingle",
                "--without-gossip",
                *self.extra_args,
                app="tests.celery_app",
            ),
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout=60):
        from commandcenter.celery import app

        control = (
            Celery(broker=self.broker_url, set_as_current=False).control
            if self.broker_url
            else app.control
        )
        try:
            wait_for(
                lambda: any(self.name in reply for reply in control.ping(timeout=0.5)),
                timeout=timeout,
                interval=0,
                message=lambda: f"the Celery worker to answer a ping: {self.log_tail()}",
                process=self.proc,
            )
        except pytest.fail.Exception:
            self.stop()
            raise


class StorageScp(ChildProcess):
    """`manage.py storescp`, this host's Storage SCP for C-MOVE, with `env` added (and
    run under `wrap`, as CeleryWorker)."""

    def __init__(self, log_path, env=None, wrap=()):
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.wrap = list(wrap)
        self.proc = None

    def start(self, timeout=60):
        env = dict(os.environ, DATABASE_URL=database_url(), PYTHONUNBUFFERED="1")
        env.update(self.extra_env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*self.wrap, sys.executable, "manage.py", "storescp"], cwd=REPO, env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            wait_for(
                lambda: "storescp: AE" in Path(self.log_path).read_text(errors="replace"),
                timeout=timeout,
                interval=0.1,
                message=lambda: f"storescp to start: {self.log_tail()}",
                process=self.proc,
            )
        except pytest.fail.Exception:
            self.stop()
            raise
        return self


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker process (the product's app, `tests.celery_app`) on the test database."""
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    worker = CeleryWorker(f"cctest-{os.getpid()}@localhost", log).start()
    yield worker
    worker.stop()


class LiveServer:
    """The ASGI application (HTTP and websockets) served by uvicorn in a thread."""

    def __init__(self):
        from commandcenter.asgi import application

        self.port = free_port()
        config = uvicorn.Config(
            application,
            host=LOOPBACK,
            port=self.port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self):
        return f"http://{LOOPBACK}:{self.port}"

    def start(self):
        self.thread.start()
        wait_for(
            lambda: self.server.started or not self.thread.is_alive(),
            timeout=30,
            interval=0.05,
            message="the live ASGI server to start",
        )
        if not self.server.started:
            pytest.fail("the live ASGI server stopped before it started")
        return self

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def asgi_server(django_db_setup):
    server = LiveServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_as(chromium, asgi_server):
    """browser_as(user) -> a Playwright page logged in as `user` (through the login form)."""
    from tests.conftest import PASSWORD

    contexts = []

    def open_page(user, viewport=None):
        context = chromium.new_context(viewport=viewport or {"width": 1280, "height": 900})
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{asgi_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{asgi_server.url}/")
        return page

    yield open_page
    for context in contexts:
        context.close()
