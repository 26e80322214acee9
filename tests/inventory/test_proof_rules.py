"""The rules of proof as plain code: when a crawl may call itself complete, what its
`unproven` sentence says, how prefix partitions split, and when a C-FIND answer is lossy."""

from inventory.crawler import (
    BASE_ALPHABET,
    Coverage,
    Range,
    alphabet,
    extend,
    is_capped,
    lossy_fields,
    next_letters,
    partition_query,
    verdict,
)


def test_an_uncapped_universal_query_proves_completeness():
    assert verdict(Coverage(universal_capped=False, dated_only=False, open_nodes=0, cap=None)) == (
        True,
        "",
    )


def test_a_capped_crawl_is_never_complete_by_c_find_alone_whatever_its_partitions():
    for walked in [(), ("patient",), ("patient", "pid", "acc", "name")]:
        complete, unproven = verdict(
            Coverage(True, False, 0, 37, walked=walked, walk_settled=True, pruned=3)
        )
        assert complete is False
        assert unproven.startswith("The universal C-FIND was capped (at 37)")
        assert "second witness" in unproven


def test_the_unproven_sentence_says_what_the_walk_covered_and_what_was_pruned():
    _, sentence = verdict(Coverage(True, False, 0, 37, ("patient", "acc"), True, pruned=2))
    assert "the patient walk counted them" in sentence
    assert "whose PatientID is empty" in sentence
    assert "AccessionNumber prefix trees searched" in sentence and "(2 capped ranges" in sentence


def test_open_ranges_deny_completeness_even_to_a_dated_crawl():
    complete, sentence = verdict(Coverage(False, True, 2, 50))
    assert complete is False and sentence.startswith("2 ranges still answer at the C-FIND cap")
    assert verdict(Coverage(False, True, 0, 50)) == (True, "")


def test_prefixes_start_from_digits_letters_and_what_the_pacs_returned_but_never_wildcards():
    letters = alphabet(["Åström^Ingrid", "A*B", "x\\y", "id-7"])
    assert letters.startswith(BASE_ALPHABET)
    assert set(letters) - set(BASE_ALPHABET) == {"Å", "ö", "^", "-"}


def test_a_capped_prefix_splits_into_itself_exactly_and_the_letters_that_follow_it():
    assert next_letters("SYN9", ["SYN900-1", "SYN901-2", "SYN9", "ABC", "SYN9*"]) == "0"
    children = extend(Range("pid", "prefix", prefix="SY"), "N")
    assert [(c.level, c.prefix) for c in children] == [("exact", "SY"), ("prefix", "SYN")]


def test_partition_queries_use_wildcards_and_the_patient_walk_asks_patient_root():
    query, patient_root = partition_query(Range("patient", "prefix", prefix="S"))
    assert (query.QueryRetrieveLevel, query.PatientID, patient_root) == ("PATIENT", "S*", True)
    query, patient_root = partition_query(Range("patient", "studies", prefix="S-1"))
    assert (query.QueryRetrieveLevel, query.PatientID, patient_root) == ("STUDY", "S-1", True)
    query, patient_root = partition_query(Range("acc", "exact", prefix="A1"))
    assert (query.AccessionNumber, query.PatientID, patient_root) == ("A1", "", False)


def test_a_partition_label_never_shows_the_prefix():
    label = Range("name", "prefix", prefix="Doe^J").label
    assert "Doe" not in label and "5 characters" in label


def test_an_answer_is_lossy_where_the_stored_instance_says_otherwise():
    answered = {"PatientName": "^", "PatientID": "P1", "AccessionNumber": ""}
    stored = {"PatientName": "Иванова^Ольга", "PatientID": "P1", "AccessionNumber": None}
    assert lossy_fields(answered, stored) == ["PatientName"]
    assert lossy_fields({"PatientName": "Doe^John"}, {"PatientName": "Doe^John^^^"}) == []


def test_a_pacs_that_ends_capped_answers_with_cancel_is_believed_when_it_does_not():
    assert is_capped(37, truncated=False, cap=37) is True  # silent caps: at the cap is capped
    assert is_capped(37, truncated=False, cap=37, signals=True) is False
    assert is_capped(37, truncated=True, cap=37, signals=True) is True
    assert is_capped(100, truncated=False) is True and is_capped(99, truncated=False) is False
