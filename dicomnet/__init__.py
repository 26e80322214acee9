"""The DICOM network layer: associations, C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE.

- `association`: where a peer listens (`Peer`), TCP options and DICOM TLS once, a
  reachability check, pynetdicom's and the lean layer's associations;
- `errors`: the one error hierarchy both layers raise;
- `lean` / `leanscp`: the lean DIMSE layer (C-FIND, C-GET, C-MOVE; the Storage SCP);
- `scu`: one-shot C-ECHO, C-STORE and C-FIND;
- `syntaxes`: the transfer syntaxes and the presentation contexts proposed;
- `sockets`, `tls`, `probe`: socket options, TLS contexts, the probe instance.

Importing the package sets pynetdicom's process-wide configuration (`configure`), once,
before any association exists.
"""

from pynetdicom import _config


def configure():
    """pynetdicom's global settings for this process.

    By default it binds logging handlers to every PDU and DIMSE message (a handful of
    handler calls per 16 KB PDU, ~0.2 ms of CPU per received instance) and formats every
    C-FIND identifier for its debug log: patient names in logs, and a third of a crawl's
    CPU time. The apps log what they need themselves.
    """
    _config.LOG_HANDLER_LEVEL = "none"
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False


configure()
