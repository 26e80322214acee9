"""Orthanc (Debian package `orthanc`) as a local legacy PACS or, with the `orthanc-dicomweb`
plugin, as a DICOMweb cloud store.

Orthanc 1.10 has no option to choose the address it listens on: both its HTTP and its
DICOM ports listen on every interface. HTTP is kept local by `RemoteAccessAllowed: false`
(Orthanc then answers only loopback clients); the DICOM port answers C-FIND/C-GET/C-MOVE
only for the registered modalities (which all point at 127.0.0.1). The ports are free
ports chosen at start, so nothing listens on a well-known port.
"""

import json
import shutil
from pathlib import Path

import requests

from devstack.services.base import (
    LOOPBACK,
    ManagedProcess,
    ServiceError,
    dcmtk_env,
    free_port,
)

ORTHANC_BINARY = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def orthanc_binary():
    path = shutil.which("Orthanc") or ORTHANC_BINARY
    if not Path(path).exists():
        raise ServiceError(f"Orthanc is not installed at {ORTHANC_BINARY}: apt-get install orthanc")
    return path


def dicomweb_plugin():
    if not Path(DICOMWEB_PLUGIN).exists():
        raise ServiceError(
            f"the DICOMweb plugin is missing at {DICOMWEB_PLUGIN}: apt-get install orthanc-dicomweb"
        )
    return DICOMWEB_PLUGIN


def modality_entry(aet, host, port):
    """A DicomModalities entry that may query, retrieve and store."""
    return {
        "AET": aet,
        "Host": host,
        "Port": int(port),
        "AllowEcho": True,
        "AllowFind": True,
        "AllowGet": True,
        "AllowMove": True,
        "AllowStore": True,
    }


class Orthanc(ManagedProcess):
    name = "orthanc"
    start_timeout = 30.0
    host = LOOPBACK

    def __init__(
        self,
        aet="LEGACYPACS",
        limit_find_results=0,
        modalities=None,
        dicomweb=False,
        workdir=None,
        config_overrides=None,
    ):
        super().__init__(workdir)
        self.aet = aet
        self.limit_find_results = limit_find_results
        self.modalities = dict(modalities or {})
        self.dicomweb = dicomweb
        self.config_overrides = dict(config_overrides or {})
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.session = requests.Session()
        self.session.trust_env = False

    @property
    def url(self):
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def dicomweb_url(self):
        return f"{self.url}/dicom-web"

    @property
    def config_path(self):
        return self.workdir / "config.json"

    def config(self):
        storage = str(self.workdir / "storage")
        config = {
            "Name": self.aet,
            "DicomAet": self.aet,
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomCheckModalityHost": False,
            "DicomModalities": {
                aet: modality_entry(aet, host, port)
                for aet, (host, port) in self.modalities.items()
            },
            "UnknownSopClassAccepted": True,
            "LimitFindResults": int(self.limit_find_results),
            "StableAge": 1,
            "ConcurrentJobs": 2,
            "HttpThreadsCount": 8,
            "DicomThreadsCount": 4,
            "SaveJobs": False,
            "MetricsEnabled": False,
            "HttpCompressionEnabled": False,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "Plugins": [],
        }
        if self.dicomweb:
            config["Plugins"] = [dicomweb_plugin()]
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        config.update(self.config_overrides)
        return config

    def prepare(self):
        self.config_path.write_text(json.dumps(self.config(), indent=2))

    def command(self):
        return [orthanc_binary(), str(self.config_path)]

    def env(self):
        return dcmtk_env()

    def ready(self):
        return self.session.get(f"{self.url}/system", timeout=1).status_code == 200

    def _call(self, method, path, **kwargs):
        response = self.session.request(method, f"{self.url}{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            raise ServiceError(
                f"Orthanc {method} {path} answered {response.status_code}: {response.text[:200]}"
            )
        return response.json() if response.content else None

    def upload(self, data: bytes):
        """POST one DICOM instance; returns Orthanc's answer (ID, Status, ...)."""
        headers = {"Content-Type": "application/dicom"}
        return self._call("POST", "/instances", data=data, headers=headers)

    def upload_files(self, paths):
        return [self.upload(Path(path).read_bytes()) for path in paths]

    def count_studies(self):
        return self._call("GET", "/statistics")["CountStudies"]

    def count_instances(self):
        return self._call("GET", "/statistics")["CountInstances"]

    def add_modality(self, aet, host, port):
        """Register a modality at runtime, e.g. the Storage SCP a C-MOVE will target."""
        self.modalities[aet] = (host, int(port))
        self._call("PUT", f"/modalities/{aet}", json=modality_entry(aet, host, port))
