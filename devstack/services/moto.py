"""moto's server mode (`moto_server`, from `moto[server]` in requirements-dev.txt): a real
process speaking the S3 API on loopback, for the bucket configuration calls SeaweedFS does
not implement (encryption, public access block, object lock, lifecycle, policy, tags).
Tests only: it keeps everything in memory and accepts any credentials."""

import sys
from pathlib import Path

from devstack.services.base import LOOPBACK, ManagedProcess, free_port, require_binary
from devstack.services.seaweedfs import loopback_s3_client

REGION = "us-east-1"


def moto_binary():
    candidate = Path(sys.executable).parent / "moto_server"
    if candidate.exists():
        return str(candidate)
    return require_binary("moto_server", "pip install -r requirements-dev.txt (moto[server])")


class MotoS3(ManagedProcess):
    name = "moto"
    start_timeout = 60.0
    region = REGION
    access_key = "motokey"
    secret_key = "motosecret"

    def __init__(self, workdir=None):
        super().__init__(workdir)
        self.port = free_port()

    @property
    def endpoint_url(self):
        return f"http://{LOOPBACK}:{self.port}"

    def command(self):
        return [moto_binary(), "-H", LOOPBACK, "-p", str(self.port)]

    def client(self):
        return loopback_s3_client(self)

    def ready(self):
        self.client().list_buckets()
        return True
