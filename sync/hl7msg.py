"""HL7 v2 scheduling and order messages as plain data: what a message says (`parse`) and
the acknowledgement it gets (`ack`). Pure functions; the listener and tests call them.

Which fields hold what is data (`FIELDS`): HL7 versions and senders put the appointment
time, the modality and the placer number in different places, so each is looked for in
order. A message we cannot take is refused with a reason that names fields, never
values (no PHI): AR when it is not a message we handle at all, AE when it is one but a
required part is missing or unreadable.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

ACCEPTED = {"SIU^S12", "SIU^S14", "ORM^O01", "OMI^O23"}
# what: [(segment, field, component)], the first non-empty (and valid) wins
FIELDS = {
    "scheduled": [("TQ1", 7, 1), ("SCH", 11, 4), ("AIS", 4, 1), ("ORC", 7, 4), ("OBR", 36, 1),
                  ("OBR", 7, 1)],
    "modality": [("IPC", 5, 1), ("OBR", 24, 1), ("AIS", 3, 1), ("OBR", 4, 1), ("AIG", 4, 1)],
    "placer": [("SCH", 1, 1), ("ORC", 2, 1), ("OBR", 2, 1), ("IPC", 1, 1)],
}  # fmt: skip
MODALITIES = {
    "CR", "CT", "MR", "US", "NM", "PT", "XA", "RF", "DX", "MG", "OT", "SC", "IO", "PX", "ES",
    "XC", "OP", "RG", "BMD", "ECG", "IVUS", "OCT", "SM",
}  # fmt: skip
SB, EB, CR = b"\x0b", b"\x1c", b"\r"


class RefusedError(ValueError):
    """The message is refused: `code` AE or AR, `reason` for the sender (no PHI)."""

    def __init__(self, code, reason, control_id="", header=None):
        super().__init__(reason)
        self.code, self.reason, self.control_id, self.header = code, reason, control_id, header


@dataclass
class Parsed:
    message_type: str
    control_id: str
    version: str
    sending: tuple
    patient_id: str
    issuer: str = ""
    other_ids: list = field(default_factory=list)
    placer: str = ""
    modality: str = ""
    scheduled_at: datetime | None = None


class Message:
    """Segments of one message split by its own delimiters (MSH-1, MSH-2)."""

    def __init__(self, text):
        text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r \x0b\x1c")
        if not text.startswith("MSH") or len(text) < 8:
            raise RefusedError("AR", "not an HL7 v2 message: it must start with an MSH segment")
        self.sep = text[3]
        self.component, self.repeat = text[4], text[5]
        self.segments = {}
        for line in filter(None, text.split("\r")):
            fields = line.split(self.sep)
            if fields[0] == "MSH":
                fields.insert(1, self.sep)  # MSH-1 is the separator itself
            self.segments.setdefault(fields[0][:3], fields)

    def get(self, segment, number, component=1, repetition=0):
        fields = self.segments.get(segment)
        if fields is None or number >= len(fields):
            return ""
        reps = fields[number].split(self.repeat)
        if repetition >= len(reps):
            return ""
        parts = reps[repetition].split(self.component)
        return parts[component - 1].strip() if component <= len(parts) else ""

    def repetitions(self, segment, number):
        fields = self.segments.get(segment)
        if fields is None or number >= len(fields):
            return []
        return [r for r in fields[number].split(self.repeat) if r]


def parse(text):
    """The message's meaning, or RefusedError."""
    message = Message(text)
    header = header_of(message)
    control_id, kind = header["control_id"], header["type"]
    if not control_id:
        raise RefusedError("AR", "MSH-10 (message control id) is missing", header=header)
    if kind not in ACCEPTED:
        shown = kind if kind.replace("^", "").isalnum() and len(kind) <= 16 else "?"
        raise RefusedError("AR", f"unsupported message type {shown}", control_id, header)
    ids = _patient_ids(message)
    if not ids:
        raise RefusedError("AE", "PID-3 (patient identifier list) is missing", control_id, header)
    return Parsed(
        message_type=kind, control_id=control_id, version=header["version"],
        sending=header["sending"], patient_id=ids[0][0], issuer=ids[0][1],
        other_ids=[list(pair) for pair in ids[1:]],
        placer=_first(message, "placer"), modality=_modality(message),
        scheduled_at=_scheduled(message, control_id, header),
    )  # fmt: skip


def header_of(message):
    return {
        "type": "^".join(p for p in (message.get("MSH", 9, 1), message.get("MSH", 9, 2)) if p),
        "event": message.get("MSH", 9, 2),
        "control_id": message.get("MSH", 10)[:64],
        "version": message.get("MSH", 12) or "2.5",
        "sending": (message.get("MSH", 3), message.get("MSH", 4)),
        "receiving": (message.get("MSH", 5), message.get("MSH", 6)),
    }


def _patient_ids(message):
    found = []
    for rep in message.repetitions("PID", 3):
        parts = rep.split(message.component)
        value = parts[0].strip()
        issuer = parts[3].split("&")[0].strip() if len(parts) > 3 else ""
        if value:
            found.append((value[:64], issuer[:64]))
    return found


def _first(message, what):
    return next((v for v in (message.get(s, f, c) for s, f, c in FIELDS[what]) if v), "")[:64]


def _modality(message):
    values = (message.get(s, f, c).upper() for s, f, c in FIELDS["modality"])
    return next((v for v in values if v in MODALITIES), "")


def _scheduled(message, control_id, header):
    text = _first(message, "scheduled")
    if not text:
        return None
    try:
        return timestamp(text)
    except ValueError:
        reason = "the appointment time is not an HL7 date/time"
        raise RefusedError("AE", reason, control_id, header) from None


def timestamp(text):
    """An HL7 TS (YYYYMMDD[HH[MM[SS[.S…]]]][±ZZZZ]) as an aware datetime."""
    zone = ""
    for sign in "+-":
        if sign in text[8:]:
            text, zone = text[: text.rindex(sign)], text[text.rindex(sign) :]
    digits = text.split(".")[0]
    if not digits.isdigit() or len(digits) not in (8, 10, 12, 14):
        raise ValueError("bad HL7 timestamp")
    value = datetime.strptime(digits.ljust(14, "0"), "%Y%m%d%H%M%S")
    if zone and len(zone) == 5 and zone[1:].isdigit():
        return datetime.strptime(digits.ljust(14, "0") + zone, "%Y%m%d%H%M%S%z")
    return timezone.make_aware(value)


def ack(code, control_id="", reason="", header=None):
    """The acknowledgement (MSH + MSA, and ERR with the reason when refused)."""
    header = header or {}
    sending = header.get("sending", ("", ""))
    receiving = header.get("receiving", ("", ""))
    event = header.get("event", "")
    now = timezone.now().strftime("%Y%m%d%H%M%S")
    msh = [
        "MSH", "^~\\&", receiving[0] or "CMDCENTER", receiving[1] or "MIGRATION", sending[0],
        sending[1], now, "", f"ACK^{event}^ACK" if event else "ACK", uuid.uuid4().hex[:20], "P",
        header.get("version", "2.5"),
    ]  # fmt: skip
    segments = ["|".join(msh)]
    segments.append("|".join(["MSA", code, control_id, _clean(reason)]).rstrip("|"))
    if code != "AA" and reason:
        segments.append(f"ERR|||{'207' if code == 'AE' else '200'}^^HL70357|E||||{_clean(reason)}")
    return "\r".join(segments) + "\r"


def _clean(text):
    return "".join(c for c in text if c not in "|^~\\&\r\n")[:200]


def frame(text):
    return SB + text.encode() + EB + CR
