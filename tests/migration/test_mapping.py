"""Mapping profiles: rule validation, each rule, character-set repair, lookup tables."""

import pytest

from devstack import synthetic
from migration import mapping


def one_instance(charset="ISO_IR 100", seed=600):
    (ds,) = next(synthetic.iter_studies(rows=8, cols=8, seed=seed, charset=charset))
    return ds


@pytest.mark.parametrize(
    "rules, problem",
    [
        ([{"op": "explode"}], "rule 1: 'op' must be one of"),
        ([{"op": "set", "tag": "PatientID"}], "set needs 'value'"),
        ([{"op": "set", "tag": "NoSuchKeyword", "value": "x"}], "unknown tag 'NoSuchKeyword'"),
        ([{"op": "remove", "tag": "SOPInstanceUID"}], "identifies the object"),
        ([{"op": "set", "tag": "PixelData", "value": "x"}], "cannot be mapped"),
        ([{"op": "set", "tag": "Rows", "value": "1"}], "only text values"),
        ([{"op": "map", "tag": "PatientID", "table": "nope"}], "unknown lookup table 'nope'"),
        ([{"op": "map", "tag": "PatientID", "table": "t", "missing": "x"}], "'missing' must be"),
        ([{"op": "charset_repair", "actual": "klingon"}], "unknown character encoding"),
        ([{"op": "set", "tag": "PatientID", "value": "1", "extra": 2}], "unknown field 'extra'"),
        ({"op": "set"}, "the rules must be a list"),
    ],
)
def test_invalid_rules_are_rejected_with_the_reason(rules, problem):
    problems = mapping.validate_rules(rules, table_names=["t"])
    assert any(problem in p for p in problems), problems


def test_a_valid_profile_has_no_problems():
    rules = [
        {"op": "set", "tag": "(0008,0080)", "value": "Cloud"},
        {"op": "replace", "tag": "StudyDescription", "old": "CT", "new": "Computed tomography"},
        {"op": "prefix", "tag": "AccessionNumber", "value": "L-"},
        {"op": "remove", "tag": "ReferringPhysicianName"},
        {"op": "copy", "from": "PatientID", "to": "OtherPatientIDs"},
        {"op": "map", "tag": "PatientID", "table": "mrn", "missing": "keep"},
        {"op": "issuer", "value": "MRN"},
        {"op": "charset_repair", "actual": "utf-8", "declared": "ISO_IR 100"},
    ]
    assert mapping.validate_rules(rules, ["mrn"]) == []


def test_each_rule_changes_the_instance_as_it_says():
    ds = one_instance()
    data = synthetic.dataset_bytes(ds)
    rules = [
        {"op": "set", "tag": "InstitutionName", "value": "Cloud"},
        {"op": "replace", "tag": "StudyDescription", "old": "CT ", "new": "Computed tomography "},
        {"op": "prefix", "tag": "AccessionNumber", "value": "L-"},
        {"op": "remove", "tag": "ReferringPhysicianName"},
        {"op": "copy", "from": "PatientID", "to": "OtherPatientIDs"},
        {"op": "map", "tag": "PatientID", "table": "mrn"},
        {"op": "issuer", "value": "MRN"},
    ]
    mapped = mapping.read(mapping.map_bytes(data, rules, {"mrn": {str(ds.PatientID): "E-1"}}))
    assert mapped.InstitutionName == "Cloud"
    assert mapped.StudyDescription.startswith("Computed tomography CHEST")
    assert mapped.AccessionNumber == f"L-{ds.AccessionNumber}"
    assert "ReferringPhysicianName" not in mapped
    assert mapped.OtherPatientIDs == ds.PatientID
    assert (mapped.PatientID, mapped.IssuerOfPatientID) == ("E-1", "MRN")
    assert mapped.PixelData == ds.PixelData
    assert mapped.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID


def test_a_missing_table_entry_keeps_the_value_or_raises_as_the_rule_says():
    data = synthetic.dataset_bytes(one_instance())
    keep = [{"op": "map", "tag": "PatientID", "table": "mrn"}]
    assert mapping.read(mapping.map_bytes(data, keep, {"mrn": {}})).PatientID.startswith("SYN")
    strict = [{"op": "map", "tag": "PatientID", "table": "mrn", "missing": "quarantine"}]
    with pytest.raises(mapping.MappingError, match="no entry in lookup table 'mrn'"):
        mapping.map_bytes(data, strict, {"mrn": {}})


def test_utf8_declared_as_latin1_is_re_decoded_and_written_as_iso_ir_192():
    ds = one_instance("ISO_IR 192", seed=601)
    lying = synthetic.dataset_bytes(ds).replace(b"ISO_IR 192", b"ISO_IR 100")
    assert str(mapping.read(lying).PatientName) != str(ds.PatientName)  # mojibake as read

    repaired = mapping.read(mapping.map_bytes(lying, [{"op": "charset_repair", "actual": "utf-8"}]))

    assert repaired.SpecificCharacterSet == "ISO_IR 192"
    assert str(repaired.PatientName) == str(ds.PatientName)
    assert repaired.InstitutionName == ds.InstitutionName


def test_real_latin1_survives_a_utf8_repair_rule():
    ds = one_instance("ISO_IR 100", seed=602)
    repaired = mapping.read(
        mapping.map_bytes(
            synthetic.dataset_bytes(ds), [{"op": "charset_repair", "actual": "utf-8"}]
        )
    )
    assert repaired.SpecificCharacterSet == "ISO_IR 192"
    assert str(repaired.PatientName) == str(ds.PatientName)


def test_the_preview_lists_every_tag_before_and_after():
    ds = one_instance()
    rows = mapping.preview(
        synthetic.dataset_bytes(ds), [{"op": "set", "tag": "InstitutionName", "value": "X"}]
    )
    by_name = {row["name"]: row for row in rows}
    assert by_name["InstitutionName"]["changed"]
    assert by_name["InstitutionName"]["after"] == "X"
    assert not by_name["Modality"]["changed"]
    assert by_name["PixelData"]["before"].startswith("<O")


def test_a_lookup_csv_skips_its_header_and_names_a_bad_line():
    assert mapping.parse_lookup_csv("legacy,mrn\nA1,M1\n\nA2 , M2\n") == {"A1": "M1", "A2": "M2"}
    with pytest.raises(ValueError, match="line 2"):
        mapping.parse_lookup_csv("A1,M1\nonly-one-column\n")
    with pytest.raises(ValueError, match="no rows"):
        mapping.parse_lookup_csv("\n\n")
