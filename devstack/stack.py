"""`make run`: the whole product on one machine, on embedded defaults.

The supervisor starts Redis (embedded when REDIS_URL is unset), SeaweedFS as the S3
store, a demo legacy PACS (Orthanc where installed, else pynetdicom's qrscp app),
migrates and seeds demo data, then runs a Celery worker, Celery beat and the ASGI
server. Data lives in var/, so a second run reuses it: every start step is idempotent.

Stopping is one sequence that a second signal cannot break: the first Ctrl-C (SIGINT),
SIGTERM or SIGHUP sends SIGTERM to every child at once and SIGKILL after a short grace;
another one only skips the grace. Children die with the supervisor even when it is
killed (a parent-death signal), and their pid files in var/run/ let the next start stop
whatever an earlier crashed run still left behind.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.services import pidfiles
from devstack.services.base import (
    LOOPBACK,
    ServiceError,
    child_options,
    free_port,
    tail_lines,
    terminate_all,
)

DEMO_BUCKET = "cc-demo"
# The demo destination names these variables; the stack sets them for its children only.
DEMO_S3_ENV = ("CC_SECRET_DEMO_S3_ACCESS_KEY", "CC_SECRET_DEMO_S3_SECRET_KEY")
DEMO_PACS_AET = "LEGACYPACS"
DEMO_CALLING_AET = "MIGRATOR"
DEMO_MIX = (("CT", 10), ("MR", 6), ("CR", 5), ("US", 3))
DEMO_STUDIES = sum(count for _, count in DEMO_MIX)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_GRACE = 8.0  # then SIGKILL; with the reaping, the stop takes about 10 s at most
RESTARTS = {"worker": 1, "beat": 1}  # a crashed worker should not end a demo
LOG_LINES = 10


class StackError(RuntimeError):
    """A part of the stack could not start; the message names it and why."""


@dataclass
class Child:
    name: str
    args: list
    proc: subprocess.Popen
    log: Path
    restarts: int = 0


@dataclass
class Stack:
    base_dir: Path
    var: Path
    host: str = LOOPBACK
    port: int = 8000
    demo: bool = True
    services: list = field(default_factory=list)
    children: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    stopping: bool = False
    hurry: bool = False
    hl7_port: int = 0

    @property
    def run_dir(self):
        return self.var / "run"

    def run(self):
        """Start everything, wait until interrupted, stop everything."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop_signal)
        try:
            self.start()
            self.watch()
        except KeyboardInterrupt:
            say("stopping…")
        finally:
            self.stop()

    def _on_stop_signal(self, signum, frame):
        """The first signal interrupts whatever runs; later ones only hurry the stop."""
        if self.stopping:
            self.hurry = True
            return
        self.stopping = True
        raise KeyboardInterrupt

    def start(self):
        (self.var / "log").mkdir(parents=True, exist_ok=True)
        self.claim_var()
        self.env = self._child_env()
        self.manage("preflight")
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("collectstatic", "--noinput", "-v", "0")
        endpoints = self.start_demo_services() if self.demo else {}
        self.manage("seed_demo", "--stack-file", str(self.write_stack_file(endpoints)))
        self.spawn("worker", celery_args("worker", "-n", "local@%h", "--concurrency", "2"))
        self.spawn("beat", celery_args("beat"))
        self.spawn("storescp", ["manage.py", "storescp"])
        self.hl7_port = free_port()
        self.spawn("hl7", ["manage.py", "hl7", "listen", "--port", str(self.hl7_port)])
        self.spawn(
            "web",
            [
                "-m",
                "uvicorn",
                "commandcenter.asgi:application",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--ws",
                "websockets-sansio",
            ],
        )
        self.wait_until_healthy()
        self.banner(endpoints)

    def _child_env(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.setdefault("EGRESS_ALLOW", "127.0.0.0/8,::1,localhost")  # the demo services
        if not env.get("REDIS_URL"):
            from devstack.services.redis import EmbeddedRedis

            redis = self._start_service(EmbeddedRedis(workdir=self.var / "redis"), "Redis")
            env["REDIS_URL"] = redis.url
            say(f"embedded Redis on {redis.url}")
        return env

    def claim_var(self):
        """Refuse a var/ another live supervisor uses; stop what a crashed one left."""
        own = self.run_dir / "stack.pid"
        other = pidfiles.live_pid(own)
        if other is not None and other != os.getpid():
            raise StackError(f"another `make run` (pid {other}) is using {self.var}; stop it first")
        stopped = pidfiles.stop_recorded(sorted(set(self.run_dir.glob("*.pid")) - {own}))
        if stopped:
            say(f"stopped what an earlier run left running: {', '.join(sorted(stopped))}")
        pidfiles.write(own, os.getpid())

    def _start_service(self, service, label):
        """Start a service; it is listed first, so an interrupted start still stops it."""
        service.pid_file = self.run_dir / f"{service.name}.pid"
        self.services.append(service)
        try:
            service.start()
        except ServiceError as exc:
            raise StackError(f"{label} did not start: {exc}") from None
        return service

    def start_demo_services(self):
        from devstack.services.seaweedfs import SeaweedS3

        s3 = self._start_service(SeaweedS3(workdir=self.var / "seaweedfs"), "SeaweedFS (S3)")
        s3.ensure_bucket(DEMO_BUCKET)
        self.env.update(zip(DEMO_S3_ENV, (s3.access_key, s3.secret_key), strict=True))
        pacs = self._start_service(self._demo_pacs(), "demo PACS")
        self._seed_pacs(pacs)
        return {
            "pacs": {
                "kind": type(pacs).__name__,
                "aet": DEMO_PACS_AET,
                "host": LOOPBACK,
                "port": pacs.dicom_port,
            },
            "s3": {
                "endpoint_url": s3.endpoint_url,
                "bucket": DEMO_BUCKET,
                "access_key": s3.access_key,
                "secret_key": s3.secret_key,
                "region": s3.region,
            },
        }

    def _demo_pacs(self):
        if shutil.which("Orthanc") or Path("/usr/sbin/Orthanc").exists():
            from devstack.services.orthanc import Orthanc

            return Orthanc(
                aet=DEMO_PACS_AET, workdir=self.var / "pacs-orthanc", modalities=self._demo_peers()
            )
        from devstack.services.qrscp import PynetdicomQRSCP

        return PynetdicomQRSCP(
            aet=DEMO_PACS_AET, workdir=self.var / "pacs-qrscp", move_destinations=self._demo_peers()
        )

    def _demo_peers(self):
        """The AE titles the demo PACS must answer: our C-FIND/C-GET calling AE and the
        worker's Storage SCP for C-MOVE."""
        from django.conf import settings

        scp = (LOOPBACK, settings.MIGRATION_STORAGE_SCP_PORT)
        return {DEMO_CALLING_AET: scp, settings.MIGRATION_STORAGE_SCP_AET: scp}

    def _seed_pacs(self, pacs):
        marker = pacs.workdir / "seeded"
        if marker.exists():
            return
        from devstack import synthetic
        from dicomnet import scu
        from dicomnet.association import Peer

        say(f"seeding the demo PACS with {DEMO_STUDIES} generated studies…")
        for seed, (modality, count) in enumerate(DEMO_MIX):
            for study in synthetic.iter_studies(
                studies=count, series=2, instances=3, modality=modality, seed=seed, undated=1
            ):
                scu.store(Peer(LOOPBACK, pacs.dicom_port, DEMO_PACS_AET, "CCSEED"), study)
        marker.write_text("ok\n")

    def write_stack_file(self, endpoints):
        path = self.var / "stack.json"
        path.write_text(json.dumps(endpoints, indent=2))
        return path

    def manage(self, *args):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.base_dir,
            env=self.env,
            stdout=None,
            stderr=subprocess.PIPE,
            text=True,
            **child_options(new_session=False),
        )
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["(no message)"]
            raise StackError(f"manage.py {args[0]} failed: {lines[-1]}")

    def spawn(self, name, args):
        log = self.var / "log" / f"{name}.log"
        self.children.append(Child(name, args, self._popen(args, log), log))

    def _popen(self, args, log):
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.base_dir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **child_options(),
            )
        pidfiles.write(self.run_dir / f"{log.stem}.pid", proc.pid)
        return proc

    def wait_until_healthy(self, timeout=120):
        """Wait until /healthz says the database, Redis and a worker are all up."""
        url = f"http://{self.host}:{self.port}/healthz"
        deadline, last = time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            self.check_children()
            try:
                response = requests.get(url, timeout=5)
                if response.status_code == 200:
                    return
                last = f"/healthz answered {response.status_code}"
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise StackError(f"not healthy after {timeout}s ({last}); see {self.var / 'log'}")

    def banner(self, endpoints):
        if endpoints:
            pacs, s3 = endpoints["pacs"], endpoints["s3"]
            say(
                f"demo PACS: {pacs['kind']} AE {pacs['aet']} at {LOOPBACK}:{pacs['port']}; "
                f"S3: {s3['endpoint_url']} bucket {s3['bucket']}"
            )
        say(f"HL7 MLLP listener (priors first): {LOOPBACK}:{self.hl7_port}")
        say(f"logs: {self.var / 'log'}/{{worker,beat,web,hl7}}.log")
        say(f"ready: http://{self.host}:{self.port}/   (Ctrl-C stops everything)")

    def watch(self):
        while True:
            self.check_children()
            time.sleep(1)

    def check_children(self):
        """Restart a crashed worker or beat once; any other death ends the stack."""
        for service in self.services:
            if service.exited():
                raise StackError(died(service.name, service.proc.returncode, service.log_path))
        for child in self.children:
            if child.proc.poll() is None:
                continue
            report = died(child.name, child.proc.returncode, child.log)
            if child.restarts >= RESTARTS.get(child.name, 0):
                raise StackError(report)
            child.restarts += 1
            child.proc = self._popen(child.args, child.log)
            say(f"{report}\nrestarted {child.name} (pid {child.proc.pid})")

    def stop(self):
        """Every child and service at once: SIGTERM, then SIGKILL after the grace (at
        once on a second signal). Nothing here raises on a signal."""
        self.stopping = True
        grace = [(child.proc, STOP_GRACE) for child in self.children]
        grace += [(s.proc, min(s.stop_grace, STOP_GRACE)) for s in self.services if s.proc]
        terminate_all(grace, hurry=lambda: self.hurry)
        if self.hurry:
            say("stopped at once (a second signal skipped the grace)")
        for service in self.services:
            service.stop()
        for path in self.run_dir.glob("*.pid"):
            path.unlink(missing_ok=True)
        self.children.clear()
        self.services.clear()


def celery_args(command, *extra, app="commandcenter"):
    """Arguments after the interpreter for `celery -A APP COMMAND`."""
    return ["-m", "celery", "-A", app, command, "-l", "INFO", *extra]


def died(name, code, log):
    """The report of a process that exited: its code and the last lines of its log."""
    lines = tail_lines(log, LOG_LINES) or ["(empty log)"]
    body = "\n".join(f"    {line}" for line in lines)
    return f"{name} exited with code {code}; the last lines of {log}:\n{body}"


def say(text):
    """Print a status line; a closed terminal (SIGHUP) must not break the stop sequence."""
    with contextlib.suppress(OSError):
        print(f"[stack] {text}", flush=True)
