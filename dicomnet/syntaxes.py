"""The transfer syntaxes a legacy archive may hold, and how to propose them within the
128 presentation contexts of one association so that the PACS can send each object as
it stores it.

A context carries one abstract syntax and any number of transfer syntaxes, but the
acceptor keeps one of them (its own preference, usually Explicit VR Little Endian), and
a PACS sends an instance in another syntax only by transcoding it. So each syntax that
matters gets a context of its own; the syntaxes that do not fit in the budget share one
last context per SOP class. The syntax a SOP class was seen stored in (the inventory's
sample) goes first.
"""

from pynetdicom.presentation import StoragePresentationContexts

# (UID, short name), the most common in archives first: the order in which syntaxes get
# a context of their own when the budget is short.
AS_STORED = (
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian"),
    ("1.2.840.10008.1.2", "Implicit VR Little Endian"),
    ("1.2.840.10008.1.2.2", "Explicit VR Big Endian"),
    ("1.2.840.10008.1.2.4.70", "JPEG Lossless SV1"),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline"),
    ("1.2.840.10008.1.2.4.51", "JPEG Extended"),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000"),
    ("1.2.840.10008.1.2.5", "RLE Lossless"),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless"),
    ("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian"),
    ("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Lossless"),
    ("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2"),
    ("1.2.840.10008.1.2.4.201", "HTJ2K Lossless"),
    ("1.2.840.10008.1.2.4.202", "HTJ2K RPCL Lossless"),
    ("1.2.840.10008.1.2.4.203", "HTJ2K"),
    ("1.2.840.10008.1.2.4.110", "JPEG XL Lossless"),
    ("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression"),
    ("1.2.840.10008.1.2.4.112", "JPEG XL"),
    ("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian"),
    ("1.2.840.10008.1.2.4.100", "MPEG-2 MP@ML"),
    ("1.2.840.10008.1.2.4.100.1", "MPEG-2 MP@ML fragmentable"),
    ("1.2.840.10008.1.2.4.101", "MPEG-2 MP@HL"),
    ("1.2.840.10008.1.2.4.101.1", "MPEG-2 MP@HL fragmentable"),
    ("1.2.840.10008.1.2.4.102", "MPEG-4 AVC HP@4.1"),
    ("1.2.840.10008.1.2.4.102.1", "MPEG-4 AVC HP@4.1 fragmentable"),
    ("1.2.840.10008.1.2.4.103", "MPEG-4 AVC BD HP@4.1"),
    ("1.2.840.10008.1.2.4.103.1", "MPEG-4 AVC BD HP@4.1 fragmentable"),
    ("1.2.840.10008.1.2.4.104", "MPEG-4 AVC HP@4.2 2D"),
    ("1.2.840.10008.1.2.4.104.1", "MPEG-4 AVC HP@4.2 2D fragmentable"),
    ("1.2.840.10008.1.2.4.105", "MPEG-4 AVC HP@4.2 3D"),
    ("1.2.840.10008.1.2.4.105.1", "MPEG-4 AVC HP@4.2 3D fragmentable"),
    ("1.2.840.10008.1.2.4.106", "MPEG-4 AVC Stereo HP@4.2"),
    ("1.2.840.10008.1.2.4.106.1", "MPEG-4 AVC Stereo HP@4.2 fragmentable"),
    ("1.2.840.10008.1.2.4.107", "HEVC Main@5.1"),
    ("1.2.840.10008.1.2.4.108", "HEVC Main 10@5.1"),
    # the retired JPEG processes (PS3.5 2006), still found in old archives
    *(
        (f"1.2.840.10008.1.2.4.{n}", f"JPEG process (retired .{n})")
        for n in range(52, 67)
        if n not in (57,)
    ),  # fmt: skip
)
UIDS = tuple(uid for uid, _name in AS_STORED)
NAMES = dict(AS_STORED)


def name(uid):
    return NAMES.get(uid, uid)


def ordered(first=()):
    """Every syntax, those in `first` (known to be stored) before the rest."""
    first = [uid for uid in dict.fromkeys(first) if uid]
    return first + [uid for uid in UIDS if uid not in first]


MAX_ENTRIES = 4096  # transfer syntax items in one A-ASSOCIATE-RQ (about 120 KB)


def contexts(sop_classes, first=None, budget=127, max_entries=MAX_ENTRIES):
    """[(SOP class, [syntaxes])] within `budget` contexts: every class gets at least one
    context holding its syntaxes not given one of their own; the spare contexts go
    round-robin, class by class, to single syntaxes in `ordered(first[class])` order, so
    the stored syntax of every class has its own context first. With very many classes
    the shared contexts keep only the most common syntaxes, so that the request stays
    within `max_entries` items (dcmtk closes the connection on a request of ~170 KB)."""
    first = first or {}
    classes = list(dict.fromkeys(sop_classes))[:budget]
    orders = {sop_class: ordered(first.get(sop_class, ())) for sop_class in classes}
    singles = dict.fromkeys(classes, 0)
    spare = budget - len(classes)
    while spare > 0:
        growing = [c for c in classes if singles[c] < len(orders[c]) - 1]
        if not growing:
            break
        for sop_class in growing[:spare]:
            singles[sop_class] += 1
        spare -= len(growing[:spare])
    shared = max(1, (max_entries - sum(singles.values())) // max(1, len(classes)))
    proposed = []
    for sop_class in classes:
        order, n = orders[sop_class], singles[sop_class]
        proposed += [(sop_class, [uid]) for uid in order[:n]]
        proposed.append((sop_class, order[n : n + shared]))
    return proposed


MAX_CONTEXTS = 128  # presentation contexts in one association (PS3.8 9.3.2.2: odd ids)


def storage_contexts(sop_classes, first=None, budget=MAX_CONTEXTS - 1):
    """(SOP class, [transfer syntaxes]) pairs to propose for the instances a C-GET
    brings, the service's own context aside: every syntax an archive may hold, the
    syntax `first[class]` seen stored with a context of its own (`contexts`), so the PACS
    can send each instance as stored; every storage SOP class when none is named."""
    classes = list(sop_classes) or [cx.abstract_syntax for cx in StoragePresentationContexts]
    return contexts(classes, first, budget)
