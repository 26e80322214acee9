"""dcmtk's `dcmqrscp` as a second flavour of legacy PACS (Debian package `dcmtk`).

dcmqrscp indexes what it receives by C-STORE, so seeding is a C-STORE to itself. It has
no bind-address option either; it answers any calling AE title (`ANY`), and can only
C-MOVE to destinations listed in its HostTable (`peers`). Its study quota has a hard
upper bound inside dcmtk (500 studies per storage area), hence MAX_STUDIES.

Like many legacy archives it accepts uncompressed transfer syntaxes only, unless told to
prefer one compressed syntax too (`extra_args=["+xs"]` for JPEG lossless, `+xv` for JPEG
2000 lossless, `+xr` for RLE): seed it with uncompressed instances.
"""

from devstack.services.base import (
    LOOPBACK,
    ManagedProcess,
    ServiceError,
    dcmtk_env,
    free_port,
    port_open,
    require_binary,
)
from dicomnet import scu as dicomnet

MAX_STUDIES = 500
MAX_BYTES_PER_STUDY = "1024mb"


class DcmQrScp(ManagedProcess):
    name = "dcmqrscp"
    start_timeout = 20.0

    def __init__(
        self, aet="DCMQRSCP", peers=None, workdir=None, single_process=False, extra_args=()
    ):
        super().__init__(workdir)
        if len(aet) > 16 or " " in aet:
            raise ServiceError(f"invalid AE title for dcmqrscp: {aet!r}")
        self.aet = aet
        self.peers = dict(peers or {})
        self.single_process = single_process
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.host = LOOPBACK

    @property
    def config_path(self):
        return self.workdir / "dcmqrscp.cfg"

    @property
    def storage_dir(self):
        return self.workdir / "storage"

    def _host_table(self):
        return [
            f"peer{index} = ({aet}, {host}, {port})"
            for index, (aet, (host, port)) in enumerate(sorted(self.peers.items()))
        ]

    def config(self):
        quota = f"({MAX_STUDIES}, {MAX_BYTES_PER_STUDY})"
        lines = [
            f"NetworkTCPPort = {self.port}",
            "MaxPDUSize = 65536",
            "MaxAssociations = 16",
            "HostTable BEGIN",
            *self._host_table(),
            "HostTable END",
            "VendorTable BEGIN",
            "VendorTable END",
            "AETable BEGIN",
            f"{self.aet} {self.storage_dir} RW {quota} ANY",
            "AETable END",
        ]
        return "\n".join(lines) + "\n"

    def prepare(self):
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())

    def command(self):
        binary = require_binary("dcmqrscp", "apt-get install dcmtk")
        mode = ["--single-process"] if self.single_process else []
        return [
            binary,
            "--config",
            str(self.config_path),
            "--log-level",
            "warn",
            *mode,
            *self.extra_args,
        ]

    def env(self):
        return dcmtk_env()

    def ready(self):
        return port_open(self.port) and dicomnet.echo(self.host, self.port, self.aet)

    def store_files(self, paths, calling_aet="CCSEED"):
        return dicomnet.store(self.host, self.port, self.aet, paths, calling_aet)

    def store_datasets(self, datasets, calling_aet="CCSEED"):
        return dicomnet.store(self.host, self.port, self.aet, datasets, calling_aet)
