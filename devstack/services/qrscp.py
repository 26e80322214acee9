"""pynetdicom's own Query/Retrieve SCP app (`python -m pynetdicom qrscp`): the demo legacy
PACS of `make run` on machines without Orthanc.

The app keeps its instances and a SQLite index (it needs SQLAlchemy) in the working
directory, listens on 127.0.0.1 only, and C-MOVEs to the destinations of its config file
(`move_destinations`); it accepts any calling AE title.
"""

import sys
from configparser import ConfigParser

from devstack.services.base import LOOPBACK, ManagedProcess, ServiceError, free_port, port_open
from dicomnet import scu as dicomnet


def require_sqlalchemy():
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        raise ServiceError("pynetdicom's qrscp needs SQLAlchemy: pip install sqlalchemy") from None


class PynetdicomQRSCP(ManagedProcess):
    name = "qrscp"
    start_timeout = 30.0

    def __init__(self, aet="QRSCP", move_destinations=None, workdir=None):
        super().__init__(workdir)
        self.aet = aet
        self.move_destinations = dict(move_destinations or {})
        self.host = LOOPBACK
        self.port = free_port()

    @property
    def config_path(self):
        return self.workdir / "qrscp.ini"

    def config(self):
        parser = ConfigParser()
        parser["DEFAULT"] = {
            "ae_title": self.aet,
            "port": str(self.port),
            "max_pdu": "65536",
            "acse_timeout": "30",
            "dimse_timeout": "30",
            "network_timeout": "30",
            "bind_address": LOOPBACK,
            "instance_location": str(self.workdir / "instances"),
            "database_location": str(self.workdir / "instances.sqlite"),
            "log_identifier": "False",
        }
        for aet, (host, port) in self.move_destinations.items():
            parser[aet] = {"address": host, "port": str(port)}
        return parser

    def prepare(self):
        require_sqlalchemy()
        with open(self.config_path, "w") as handle:
            self.config().write(handle)

    def command(self):
        return [sys.executable, "-m", "pynetdicom", "qrscp", "--config", str(self.config_path)]

    @property
    def dicom_port(self):
        """The same name as Orthanc's, so callers treat every demo PACS alike."""
        return self.port

    def ready(self):
        return port_open(self.port) and dicomnet.echo(self.host, self.port, self.aet)

    def store_datasets(self, datasets, calling_aet="CCSEED"):
        return dicomnet.store(self.host, self.port, self.aet, datasets, calling_aet)

    def store_files(self, paths, calling_aet="CCSEED"):
        return dicomnet.store(self.host, self.port, self.aet, paths, calling_aet)
