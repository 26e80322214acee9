"""Validation of a migrated wave: is the cloud copy complete and faithful?

`reconcile(wave)` accounts for every study: instances the PACS reported at inventory
time, instances it holds now (re-queried), and instances the destination lists (S3
listing, QIDO-RS, a folder walk; never the ledger). `spotcheck(wave)` re-retrieves a
sample of studies from the PACS and compares each instance with its cloud copy as it
arrives: every tag after the wave's mapping profile is applied to the source side, the
decoded pixel data frame by frame, and the stored bytes' SHA-256 against the manifest.

Both return plain dicts (the `validate … --json` objects) whose `discrepancies` name
study, series, instance, kind and a detail without PHI values. Neither changes the
database: `migration/discrepancies.py` records what they find. The PACS work runs in a
small thread pool that touches no database; each study holds one of the PACS's
association slots (see `readback.pacs_slot`).
"""

import hashlib
import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from django.conf import settings
from django.db.models import F
from pydicom.datadict import keyword_for_tag
from pydicom.pixels import iter_pixels

from core.scrub import exception_text
from dicomnet import syntaxes
from migration import dicom, lint, mapping, readback
from migration.dicom import RetrieveError
from migration.engine import Pipeline, lookup_tables
from migration.models import (
    Conflict,
    QuarantinedInstance,
    StoredInstance,
    StudyState,
)
from migration.storage import DestinationError, open_store, sha256_hex

PHI_KEYWORDS = {
    "AccessionNumber",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "IssuerOfPatientID",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "InstitutionAddress",
    "StudyID",
}
LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000 (lossy allowed)
}
SKIPPED_GROUPS = (0x0002, 0x7FE0, 0xFFFE)
MAX_TAGS_PER_INSTANCE = 20
SPOTCHECK_KINDS = ("missing", "tag", "pixel", "checksum", "render", "conflict")
RECONCILE_KINDS = ("missing", "extra", "conflict", "quarantined", "transcoded")
CONFLICT_DETAIL = "two different objects share this SOP Instance UID; a decision is pending"


def finding(study, kind, detail, series="", instance="", ledger_id=None, subject=""):
    """One discrepancy as the JSON contract shows it (`ledger_id`, `subject` are extras
    for recording: subject is what inside the instance, e.g. a tag keyword)."""
    return {
        "study": study,
        "series": series,
        "instance": instance,
        "kind": kind,
        "detail": detail[:1000],
        "ledger_id": ledger_id,
        "subject": subject,
    }


def _threads(source):
    return max(1, min(int(settings.VALIDATION_THREADS), source.max_associations or 1))


def _run_pool(items, work, threads, progress):
    """work(item) for each item in a pool; progress(done, total) is called in this thread
    (it may write to the database), after each item."""
    results, total = [], len(items)
    if progress:
        progress(0, total)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in as_completed([pool.submit(work, item) for item in items]):
            results.append(future.result())
            if progress:
                progress(len(results), total)
    return results


# --- what the destination holds -------------------------------------------------------


def destination_listing(store, study_uid):
    """{SOP UID: (series UID, key)} of the instances the destination holds for a study,
    by listing it (S3 listing, QIDO-RS, folder walk)."""
    if store.kind == "s3":
        keys = store.list(store._join("studies", study_uid, "series") + "/")
        return _from_keys(keys)
    if store.kind == "dicomweb":
        return {
            _first(item, "00080018"): (
                _first(item, "0020000E"),
                store.instance_key(study_uid, _first(item, "0020000E"), _first(item, "00080018")),
            )
            for item in store._get(f"studies/{study_uid}/instances")
            if isinstance(item, dict)
        }
    folder = Path(store.root) / store._join("studies", study_uid, "series")
    keys = [
        str(p.relative_to(store.root)) for p in folder.rglob("*.dcm") if not p.name.startswith(".")
    ]
    return _from_keys(keys)


def _from_keys(keys):
    found = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) >= 4 and parts[-2] == "instances" and key.endswith(".dcm"):
            found[parts[-1][:-4]] = (parts[-3], key)
    return found


def _first(item, tag):
    return str((item.get(tag, {}).get("Value") or [""])[0])


# --- reconciliation ---------------------------------------------------------------------


def _study_facts(wave):
    """What the database knows per ledger row, read once in this thread."""
    rows = list(wave.ledger.select_related("study").order_by("pk"))
    quarantined = _quarantined_sops(rows)
    conflicts = defaultdict(list)
    for ledger_id, series, sop in Conflict.objects.filter(
        ledger__wave=wave, decision=Conflict.Decision.OPEN
    ).values_list("ledger_id", "series_uid", "sop_uid"):
        conflicts[ledger_id].append((series, sop))
    return rows, quarantined, conflicts, _transcoded(wave)


def _transcoded(wave):
    """{ledger id: [(series, SOP, reported syntax, received syntax)]}: instances the PACS
    sent in another syntax than the one it reported storing them in."""
    found = defaultdict(list)
    for ledger_id, *facts in transcoded_instances(wave).values_list(
        "ledger_id", "series_uid", "sop_uid", "reported_syntax", "transfer_syntax"
    ):
        found[ledger_id].append(tuple(facts))
    return found


def transcoded_instances(wave):
    """StoredInstance rows of the wave received in another syntax than the reported one."""
    rows = StoredInstance.objects.filter(ledger__wave=wave, role=StoredInstance.Role.STORED)
    return rows.exclude(reported_syntax="").exclude(reported_syntax=F("transfer_syntax"))


def transcoded_detail(reported, received):
    return (
        f"the PACS reported storing it as {syntaxes.name(reported)} ({reported}) "
        f"but sent {syntaxes.name(received)} ({received})"
    )


def _quarantined_sops(rows):
    by_row = defaultdict(set)
    found = QuarantinedInstance.objects.filter(ledger__in=[row.pk for row in rows])
    for ledger_id, sop in found.values_list("ledger_id", "sop_uid"):
        by_row[ledger_id].add(sop)
    return by_row


def reconcile(wave, progress=None, rows=None):
    """The reconciliation report of a wave (or of `rows`, some of its ledger rows)."""
    all_rows, quarantined, conflicts, transcoded = _study_facts(wave)
    rows = all_rows if rows is None else list(rows)
    pacs = dicom.Pacs.from_source(wave.source)
    destination = wave.destination

    def work(row):
        store = open_store(destination)
        return _reconcile_study(
            row, pacs, wave.source, store, quarantined[row.pk], conflicts[row.pk],
            transcoded[row.pk],
        )  # fmt: skip

    results = _run_pool(rows, work, _threads(wave.source), progress)
    results.sort(key=lambda pair: pair[0]["ledger_id"])
    return _reconcile_totals(wave, [r for r, _f in results], [f for _r, fs in results for f in fs])


def _reconcile_study(row, pacs, source, store, quarantined, conflicts, transcoded=()):
    """(report row, findings) of one study: the PACS now against the destination listing."""
    uid = row.study.study_uid
    on_pacs = _on_pacs(pacs, source, uid)
    listed, found = _listed(store, uid, row.pk)
    expected = on_pacs or {}
    missing = sorted(set(expected) - set(listed) - quarantined)
    extra = sorted(set(listed) - set(expected)) if on_pacs is not None else []
    found += [finding(uid, "missing", "on the PACS but not in the destination",
                      expected[sop][0], sop, row.pk) for sop in missing]  # fmt: skip
    found += [finding(uid, "extra", "in the destination but not on the PACS",
                      listed[sop][0], sop, row.pk) for sop in extra]  # fmt: skip
    found += [finding(uid, "conflict", CONFLICT_DETAIL, series, sop, row.pk)
              for series, sop in conflicts]  # fmt: skip
    found += [finding(uid, "transcoded", transcoded_detail(reported, received), series, sop,
                      row.pk, subject="transfer syntax")
              for series, sop, reported, received in transcoded]  # fmt: skip
    is_quarantined = row.state == StudyState.QUARANTINED or bool(quarantined)
    if is_quarantined:
        found.append(finding(uid, "quarantined", f"study {row.state}: {row.last_error[:300]}",
                             ledger_id=row.pk))  # fmt: skip
    verdict = _verdict(row, len(missing), len(extra), bool(conflicts), is_quarantined, on_pacs)
    return {
        "ledger_id": row.pk,
        "study_uid": uid,
        "state": row.state,
        "reported_at_inventory": row.study.num_instances,
        "on_pacs_now": None if on_pacs is None else len(on_pacs),
        "in_destination": len(listed),
        "verdict": verdict,
        "missing": len(missing),
        "extra": len(extra),
        "transcoded": len(transcoded),
    }, found


def _listed(store, uid, ledger_id):
    """(destination listing, findings): a listing that fails is a finding of its own."""
    try:
        return destination_listing(store, uid), []
    except DestinationError as exc:
        detail = f"the destination cannot be listed: {exc}"[:300]
        return {}, [finding(uid, "missing", detail, ledger_id=ledger_id, subject="listing")]


def _on_pacs(pacs, source, uid):
    """{SOP: (series, class)} the PACS lists now ({} for a study it no longer has); None
    when it cannot be asked."""
    try:
        with readback.pacs_slot(source):
            return dicom.query_study(pacs, uid, listed=True).instances
    except RetrieveError as exc:
        return {} if exc.error_class == "not_found" else None


def _verdict(row, missing, extra, conflicted, quarantined, on_pacs):
    if quarantined:
        return "quarantined"
    if conflicted:
        return "conflicted"
    if on_pacs is None:
        return "unknown"
    parts = [f"missing {missing}"] * bool(missing) + [f"extra {extra}"] * bool(extra)
    if not parts and row.state != StudyState.DONE:
        return row.state
    return ", ".join(parts) or "complete"


def _reconcile_totals(wave, rows, found):
    return {
        "wave": wave.name,
        "studies": len(rows),
        "complete": sum(r["verdict"] == "complete" for r in rows),
        "missing_instances": sum(r["missing"] for r in rows),
        "extra_instances": sum(r["extra"] for r in rows),
        "transcoded_instances": sum(r["transcoded"] for r in rows),
        "conflicted": sum(r["verdict"] == "conflicted" for r in rows),
        "quarantined": sum(r["verdict"] == "quarantined" for r in rows),
        "reported_at_inventory": sum(r["reported_at_inventory"] or 0 for r in rows),
        "on_pacs_now": sum(r["on_pacs_now"] or 0 for r in rows),
        "in_destination": sum(r["in_destination"] for r in rows),
        "rows": rows,
        "discrepancies": found,
    }


# --- sampling ---------------------------------------------------------------------------


def default_sample_size(wave):
    total = _sampleable(wave).count()
    limit = int(settings.VALIDATION_SAMPLE_STUDIES)
    return total if total < limit else limit


def _sampleable(wave):
    return wave.ledger.filter(state__in=[StudyState.DONE, StudyState.QUARANTINED])


def sample_studies(wave, n, seed):
    """`n` migrated ledger rows of the wave, stratified by (modality, year) in proportion
    to each stratum's size (largest remainders), the same rows for the same seed."""
    rows = list(_sampleable(wave).select_related("study").order_by("pk"))
    if n is None or n >= len(rows):
        return rows
    strata = defaultdict(list)
    for row in rows:
        strata[_stratum(row)].append(row)
    rng = random.Random(seed)
    quotas = _quotas({key: len(group) for key, group in strata.items()}, n)
    chosen = []
    for key in sorted(strata):
        group = strata[key][:]
        rng.shuffle(group)
        chosen += group[: quotas[key]]
    return sorted(chosen, key=lambda row: row.pk)


def _stratum(row):
    modality = (row.study.modalities or "").split("\\")[0] or "?"
    year = row.study.study_date.year if row.study.study_date else 0
    return (modality, year)


def _quotas(sizes, n):
    total = sum(sizes.values())
    exact = {key: n * size / total for key, size in sizes.items()}
    quotas = {key: int(value) for key, value in exact.items()}
    leftover = n - sum(quotas.values())
    by_remainder = sorted(sizes, key=lambda key: (quotas[key] - exact[key], key))
    for key in by_remainder[:leftover]:
        quotas[key] += 1
    return quotas


# --- spot-check ---------------------------------------------------------------------------


class Profile:
    """What the engine did to each instance: the wave's mapping rules and lint coercions."""

    def __init__(self, wave):
        self.rules = list(wave.profile.rules) if wave.profile else []
        self.tables = lookup_tables(self.rules)
        self.kind = wave.destination.kind
        self.coerce = wave.destination.coerce

    def apply(self, ds, study_uid, size):
        lint.structure(ds, size, study_uid=study_uid, coerce=self.coerce)
        if self.rules:
            mapping.apply_rules(ds, self.rules, self.tables)
        lint.values(ds, self.kind, self.coerce)
        return ds


def spotcheck(wave, sample=None, seed=None, progress=None, rows=None):
    """Compare a sample of the wave's studies instance by instance (see module doc)."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    if rows is None:
        size = default_sample_size(wave) if sample is None else int(sample)
        rows = sample_studies(wave, size, seed)
    rows = list(rows)
    manifests = _manifests(rows)
    conflicts = _open_conflicts(rows)
    quarantined = _quarantined_sops(rows)
    profile = Profile(wave)

    def work(row):
        checker = StudyCheck(wave, row, manifests[row.pk], conflicts[row.pk], profile)
        checker.quarantined = quarantined[row.pk]
        return checker.run()

    results = _run_pool(rows, work, _threads(wave.source), progress)
    found = [f for result in results for f in result["discrepancies"]]
    return {
        "wave": wave.name,
        "seed": seed,
        "studies_sampled": len(rows),
        "instances_compared": sum(r["compared"] for r in results),
        "studies": sorted(r["study"] for r in results),
        "ledger_ids": sorted(row.pk for row in rows),
        "errors": [r["error"] for r in results if r["error"]],
        "discrepancies": found,
    }


def _manifests(rows):
    by_row, ledger = defaultdict(dict), {row.pk: row for row in rows}
    stored = StoredInstance.objects.filter(ledger__in=list(ledger), role=StoredInstance.Role.STORED)
    for item in stored:
        item.ledger = ledger[item.ledger_id]  # for its key, without a query each
        by_row[item.ledger_id][item.sop_uid] = item
    return by_row


def _open_conflicts(rows):
    by_row = defaultdict(list)
    for item in Conflict.objects.filter(
        ledger__in=[row.pk for row in rows], decision=Conflict.Decision.OPEN
    ):
        by_row[item.ledger_id].append(item)
    return by_row


class StudyCheck:
    """One sampled study: re-retrieve it from the PACS and compare each instance with its
    cloud copy as it arrives, in a few threads (memory stays at a few instances)."""

    def __init__(self, wave, row, manifest, conflicts, profile):
        self.wave, self.row, self.manifest, self.profile = wave, row, manifest, profile
        self.uid = row.study.study_uid
        self.conflicts = conflicts
        self.quarantined = set()
        self.store = open_store(wave.destination)
        self.lock = threading.Lock()
        self.seen = set()
        self.found = []
        self.compared = 0

    def run(self):
        error = None
        pipeline = Pipeline(
            self.compare, int(settings.VALIDATION_COMPARE_THREADS), 32 * 1024 * 1024
        )
        try:
            self._retrieve(pipeline.submit)
            pipeline.finish()
        except Exception as exc:  # the PACS failed, or a comparison did: report, go on
            detail = exception_text(exc)[:300]
            error = {"study": self.uid, "ledger_id": self.row.pk, "detail": detail}
            pipeline.abort()
        if error is None:
            self._unsent()
        self._conflicts()
        return {"study": self.uid, "compared": self.compared, "discrepancies": self.found,
                "error": error}  # fmt: skip

    def _retrieve(self, on_instance):
        """The study from the PACS, holding one of its association slots. The manifest's
        SOP classes are proposed, which saves an IMAGE-level C-FIND per study; without a
        manifest, the PACS is asked (`readback.each_source_instance`)."""
        classes = sorted({item.sop_class for item in self.manifest.values() if item.sop_class})
        if not classes:
            return readback.each_source_instance(self.wave.source, self.uid, on_instance)
        pacs = dicom.Pacs.from_source(self.wave.source)
        with readback.pacs_slot(self.wave.source):
            retrieved = dicom.retrieve(pacs, self.uid, classes, on_instance)
        if retrieved.failed:
            raise RetrieveError("pacs_refused", f"the PACS failed to send {retrieved.failed} "
                                "instance(s)")  # fmt: skip
        return retrieved

    def add(self, kind, detail, series="", sop="", subject=""):
        with self.lock:
            self.found.append(finding(self.uid, kind, detail, series, sop, self.row.pk, subject))

    def compare(self, data):
        try:
            sop = dicom.sop_instance_uid(data)
        except Exception:  # unreadable on the PACS: the engine quarantined it, reconcile says so
            return
        with self.lock:
            if sop in self.seen:
                return
            self.seen.add(sop)
        stored = self.manifest.get(sop)
        if stored is None:
            if sop not in self.quarantined:
                self.add("missing", "sent by the PACS but not in the manifest", sop=sop)
            return
        try:
            copy = self.store.read(stored.key)
        except (DestinationError, OSError) as exc:
            detail = f"cannot be read from the destination: {exc}"[:300]
            self.add("missing", detail, stored.series_uid, sop)
            return
        for kind, detail, subject in compare_instance(data, copy, stored.sha256, self.profile,
                                                      self.uid):  # fmt: skip
            self.add(kind, detail, stored.series_uid, sop, subject)
        with self.lock:
            self.compared += 1

    def _unsent(self):
        for sop in sorted(set(self.manifest) - self.seen):
            detail = "in the manifest but the PACS did not send it"
            self.add("missing", detail, self.manifest[sop].series_uid, sop)

    def _conflicts(self):
        for item in self.conflicts:
            self.add("conflict", CONFLICT_DETAIL, item.series_uid, item.sop_uid)


def compare_instance(source_bytes, copy_bytes, manifest_sha, profile, study_uid):
    """[(kind, detail, subject)] between one source instance and its cloud copy."""
    problems = []
    sha = sha256_hex(copy_bytes)
    if sha != manifest_sha:
        problems.append(("checksum", f"stored bytes SHA-256 {sha[:12]}… differ from the "
                         f"manifest's {manifest_sha[:12]}…", "sha256"))  # fmt: skip
    source = profile.apply(mapping.read(source_bytes), study_uid, len(source_bytes))
    try:
        copy = mapping.read(copy_bytes)
    except Exception as exc:
        detail = f"the stored object cannot be read as DICOM ({type(exc).__name__})"
        return [*problems, ("tag", detail, "dataset")]
    problems += [("tag", detail, name) for name, detail in tag_differences(source, copy)]
    problems += [("pixel", detail, frame) for frame, detail in pixel_differences(source, copy)]
    return problems


# --- tags ---------------------------------------------------------------------------------


def is_phi(tag, vr):
    """Tags whose values are never shown: patient module, person names, identifiers."""
    return tag.group == 0x0010 or vr == "PN" or keyword_for_tag(tag) in PHI_KEYWORDS


def tag_differences(source, copy):
    """[(tag name, detail)] for every top-level data element that differs (pixel data,
    file meta and group lengths aside); values shown only for non-PHI tags."""
    tags = sorted(t for t in set(source.keys()) | set(copy.keys()) if _compared(t))
    found = []
    for tag in tags:
        detail = _element_difference(source, copy, tag)
        if detail:
            found.append((mapping.tag_name(tag), detail))
        if len(found) >= MAX_TAGS_PER_INSTANCE:
            break
    return found


def _compared(tag):
    return tag.group not in SKIPPED_GROUPS and tag.element != 0x0000


def _element_difference(source, copy, tag):
    name = mapping.tag_name(tag)
    if tag not in copy:
        return f"tag {name}: missing in the destination"
    if tag not in source:
        return f"tag {name}: only in the destination"
    a, b = source[tag], copy[tag]
    if _same(a.value, b.value):
        return ""
    if is_phi(tag, a.VR) or is_phi(tag, b.VR):
        return f"tag {name}: value differs"
    return f"tag {name}: {_short(a)} → {_short(b)}"


def _same(a, b):
    if a == b:
        return True
    return _text(a) == _text(b)


def _text(value):
    if isinstance(value, bytes):
        return value.rstrip(b"\x00 ")
    return str(value).strip()


def _short(element):
    if element.VR == "SQ":
        return f"<sequence of {len(element.value)} item(s)>"
    if isinstance(element.value, bytes):
        return f"<{len(element.value)} bytes>"
    text = str(element.value)
    return repr(text if len(text) <= 40 else text[:37] + "…")


# --- pixels -------------------------------------------------------------------------------


def frame_hashes(ds):
    """SHA-256 of each decoded frame (values as little-endian, so syntaxes compare)."""
    return [hashlib.sha256(_canonical(frame)).hexdigest() for frame in iter_pixels(ds)]


def _canonical(frame):
    kind = frame.dtype.kind
    dtype = "<f8" if kind == "f" else ("<i8" if kind in "iu" else frame.dtype)
    return frame.astype(dtype, copy=False).tobytes()


def pixel_differences(source, copy):
    """[(subject, detail)]: the frames whose decoded pixels differ, naming lossy codecs.
    Byte-identical pixel data in the same transfer syntax needs no decoding."""
    has = ("PixelData" in source, "PixelData" in copy)
    if has == (False, False):
        return []
    if has != (True, True):
        where = "destination" if has[0] else "source"
        return [("PixelData", f"pixel data missing in the {where}")]
    ts_a, ts_b = str(source.file_meta.TransferSyntaxUID), str(copy.file_meta.TransferSyntaxUID)
    if ts_a == ts_b and source.PixelData == copy.PixelData:
        return []
    try:
        a = frame_hashes(source)
    except Exception as exc:
        return [("PixelData", f"source pixel data cannot be decoded ({type(exc).__name__})")]
    try:
        b = frame_hashes(copy)
    except Exception as exc:
        return [("PixelData", f"destination pixel data cannot be decoded ({type(exc).__name__})")]
    return _frame_report(a, b, ts_b)


def _frame_report(a, b, copy_syntax):
    if len(a) != len(b):
        return [("frames", f"{len(a)} frame(s) on the source, {len(b)} in the destination")]
    lossy = " (lossy transcoding)" if copy_syntax in LOSSY_SYNTAXES else ""
    return [
        (f"frame {n}", f"frame {n}: decoded pixels differ{lossy}")
        for n, (x, y) in enumerate(zip(a, b, strict=True), start=1)
        if x != y
    ]
