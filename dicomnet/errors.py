"""One error hierarchy for every DICOM exchange, whichever layer carried it (the lean
socket of `dicomnet.lean` or a pynetdicom association), so that the apps turn failures
into their own words from one set of classes (inventory's PacsError, migration's
RetrieveError with an error class). Messages name the peer, never PHI.

    DicomNetError
    ├── ConnectError          no TCP connection (refused, timeout, unknown host)
    ├── HandshakeError        DICOM TLS failed (`error`: the ssl module's exception)
    ├── RejectedError   A-ASSOCIATE-RJ (`permanent`, `limit`, `words`)
    ├── RefusedError    the request aborted, or no presentation context accepted
    ├── DroppedError          the association ended under us (`timeout`, `pdu_type`)
    └── FindTruncatedError    a C-FIND cut off with Cancel (`matches`: what came)

`dicomnet.tls.TlsError` (TLS files wrong) is a DicomNetError too.
"""

PERMANENT, TRANSIENT = 1, 2  # A-ASSOCIATE-RJ result
CALLED_AE_UNKNOWN = (1, 7)  # (source, reason): service user, called AE not recognized
LIMIT_EXCEEDED = (3, 2)  # service provider (presentation), local limit exceeded
# A-ASSOCIATE-RJ from the service provider (ACSE source 2 or presentation 3), reason 2
LIMIT_REASONS = {LIMIT_EXCEEDED, (2, 2)}
RESULTS = {PERMANENT: "rejected permanently", TRANSIENT: "rejected for now"}
SOURCES = {1: "service user", 2: "service provider (ACSE)", 3: "service provider (presentation)"}
REJECT_REASONS = {  # (source, reason) -> words (PS3.8 9.3.4)
    (1, 1): "no reason given", (1, 2): "application context not supported",
    (1, 3): "calling AE title not recognized", (1, 7): "called AE title not recognized",
    (2, 1): "no reason given", (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion", (3, 2): "local limit exceeded",
}  # fmt: skip


class DicomNetError(RuntimeError):
    """An association was refused or a DIMSE operation answered with a failure status."""


class ConnectError(DicomNetError):
    """No TCP connection to the peer; `error` is the OSError (its type names the cause)."""

    def __init__(self, message, error=None):
        super().__init__(message)
        self.error = error


class HandshakeError(DicomNetError):
    """DICOM TLS failed: `error` is the ssl module's exception (which side refused)."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


class RejectedError(DicomNetError):
    """A-ASSOCIATE-RJ: (result, source, reason) as the peer sent them. A permanent one
    (an unknown AE title) is a configuration error; a transient one (busy, over its
    association limit: `limit`) may pass."""

    def __init__(self, result, source, reason):
        self.result, self.source, self.reason = result, source, reason
        how = RESULTS.get(result, f"rejected (result {result})")
        super().__init__(f"{how}, {SOURCES.get(source, 'unknown source')}: {self.words}")

    @property
    def permanent(self):
        return self.result == PERMANENT

    @property
    def limit(self):
        return (self.source, self.reason) in LIMIT_REASONS

    @property
    def words(self):
        said = REJECT_REASONS.get((self.source, self.reason), "reason unknown")
        return f"{said} (source {self.source}, reason {self.reason})"


class RefusedError(DicomNetError):
    """The peer aborted the association request or accepted no presentation context."""


class DroppedError(DicomNetError):
    """The association ended under us: `reason` says how (no PHI)."""

    def __init__(self, reason, timeout=False, pdu_type=None):
        super().__init__(reason)
        self.reason = reason
        self.timeout = timeout
        self.pdu_type = pdu_type  # the PDU that ended it, when one did


class FindTruncatedError(DicomNetError):
    """The SCP ended a C-FIND with Cancel after some matches: it caps its results
    (Orthanc's LimitFindResults does this). `matches` holds what it did return."""

    def __init__(self, called_aet, matches):
        super().__init__(f"C-FIND on {called_aet} was cut off after {len(matches)} matches")
        self.matches = matches
