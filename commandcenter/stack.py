"""`make run`: the whole product on one machine, on embedded defaults.

The supervisor starts Redis (embedded when REDIS_URL is unset), SeaweedFS as the S3
store, a demo legacy PACS (Orthanc where installed, else pynetdicom's qrscp app),
migrates and seeds demo data, then runs a Celery worker, Celery beat and the ASGI
server. Data lives in var/, so a second run reuses it. Ctrl-C stops every process
it started.
"""

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

from commandcenter.services.base import LOOPBACK, ServiceError, terminate_group

DEMO_BUCKET = "cc-demo"
# The demo destination names these variables; the stack sets them for its children only.
DEMO_S3_ENV = ("CC_DEMO_S3_ACCESS_KEY", "CC_DEMO_S3_SECRET_KEY")
DEMO_PACS_AET = "LEGACYPACS"
DEMO_CALLING_AET = "MIGRATOR"
DEMO_MIX = (("CT", 10), ("MR", 6), ("CR", 5), ("US", 3))
DEMO_STUDIES = sum(count for _, count in DEMO_MIX)


class StackError(RuntimeError):
    """A part of the stack could not start; the message names it and why."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class Stack:
    base_dir: Path
    var: Path
    host: str = LOOPBACK
    port: int = 8000
    demo: bool = True
    services: list = field(default_factory=list)
    children: list = field(default_factory=list)

    def run(self):
        """Start everything, wait until interrupted, stop everything."""
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self.start()
            self.watch()
        except KeyboardInterrupt:
            say("stopping…")
        finally:
            self.stop()

    def start(self):
        (self.var / "log").mkdir(parents=True, exist_ok=True)
        self.env = self._child_env()
        self.manage("preflight")
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("collectstatic", "--noinput", "-v", "0")
        endpoints = self.start_demo_services() if self.demo else {}
        self.manage("seed_demo", "--stack-file", str(self.write_stack_file(endpoints)))
        self.spawn("worker", celery_args("worker", "-n", "local@%h", "--concurrency", "2"))
        self.spawn("beat", celery_args("beat"))
        self.spawn("storescp", ["manage.py", "storescp"])
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
        if not env.get("REDIS_URL"):
            from commandcenter.services.redis import EmbeddedRedis

            redis = self._start_service(EmbeddedRedis(workdir=self.var / "redis"), "Redis")
            env["REDIS_URL"] = redis.url
            say(f"embedded Redis on {redis.url}")
        return env

    def _start_service(self, service, label):
        try:
            service.start()
        except ServiceError as exc:
            raise StackError(f"{label} did not start: {exc}") from None
        self.services.append(service)
        return service

    def start_demo_services(self):
        from commandcenter.services.seaweedfs import SeaweedS3

        s3 = self._start_service(SeaweedS3(workdir=self.var / "seaweedfs"), "SeaweedFS (S3)")
        s3.create_bucket(DEMO_BUCKET)
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
            from commandcenter.services.orthanc import Orthanc

            return Orthanc(
                aet=DEMO_PACS_AET, workdir=self.var / "pacs-orthanc", modalities=self._demo_peers()
            )
        from commandcenter.services.qrscp import PynetdicomQRSCP

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
        from commandcenter import synthetic
        from commandcenter.services import dicomnet

        say(f"seeding the demo PACS with {DEMO_STUDIES} generated studies…")
        for seed, (modality, count) in enumerate(DEMO_MIX):
            for study in synthetic.iter_studies(
                studies=count, series=2, instances=3, modality=modality, seed=seed, undated=1
            ):
                dicomnet.store(LOOPBACK, pacs.dicom_port, DEMO_PACS_AET, study)
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
        )
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["(no message)"]
            raise StackError(f"manage.py {args[0]} failed: {lines[-1]}")

    def spawn(self, name, args):
        log = self.var / "log" / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.base_dir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.children.append(Child(name, proc, log))

    def wait_until_healthy(self, timeout=120):
        """Wait until /healthz says the database, Redis and a worker are all up."""
        url = f"http://{self.host}:{self.port}/healthz"
        deadline, last = time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            self._check_children()
            try:
                response = requests.get(url, timeout=5)
                if response.status_code == 200:
                    return
                last = (
                    ", ".join(
                        name
                        for name, part in response.json()["components"].items()
                        if not part["ok"]
                    )
                    + " down"
                )
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
        say(f"logs: {self.var / 'log'}/{{worker,beat,web}}.log")
        say(f"ready: http://{self.host}:{self.port}/   (Ctrl-C stops everything)")

    def watch(self):
        while True:
            self._check_children()
            time.sleep(1)

    def _check_children(self):
        for child in self.children:
            if child.proc.poll() is not None:
                tail = child.log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                raise StackError(
                    f"{child.name} exited with code {child.proc.returncode}: "
                    f"{tail[0]} (see {child.log})"
                )

    def stop(self):
        for child in reversed(self.children):
            terminate_group(child.proc, timeout=15)
        for service in reversed(self.services):
            service.stop()
        self.children.clear()
        self.services.clear()


def celery_args(command, *extra):
    """Arguments after the interpreter for `celery -A commandcenter COMMAND`."""
    return ["-m", "celery", "-A", "commandcenter", command, "-l", "INFO", *extra]


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def say(text):
    print(f"[stack] {text}", flush=True)
