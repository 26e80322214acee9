"""Proposing every transfer syntax an archive may hold within 128 presentation contexts."""

from dicomnet import syntaxes

BIG_ENDIAN, RLE = "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5"


def classes(n):
    return [f"1.2.840.10008.5.1.4.1.1.{k}" for k in range(1, n + 1)]


def proposed_per_class(contexts):
    found = {}
    for sop_class, uids in contexts:
        found.setdefault(sop_class, []).append(uids)
    return found


def test_one_class_gets_a_context_per_syntax_with_the_stored_one_first():
    contexts = syntaxes.contexts(["1.2.3"], {"1.2.3": [RLE]})

    assert contexts[0] == ("1.2.3", [RLE])
    assert all(len(uids) == 1 for _c, uids in contexts)
    assert sorted(uid for _c, (uid,) in contexts) == sorted(syntaxes.UIDS)


def test_many_classes_fit_the_budget_each_stored_syntax_alone_and_every_syntax_offered():
    many = classes(40)
    first = {many[7]: [BIG_ENDIAN], many[39]: [RLE, BIG_ENDIAN]}

    contexts = syntaxes.contexts(many, first)

    assert len(contexts) == 127
    per_class = proposed_per_class(contexts)
    assert per_class[many[7]][0] == [BIG_ENDIAN]
    assert per_class[many[39]][:2] == [[RLE], [BIG_ENDIAN]]
    for sop_class in many:
        offered = [uid for uids in per_class[sop_class] for uid in uids]
        assert sorted(offered) == sorted(syntaxes.UIDS)
        assert per_class[sop_class][0] in ([syntaxes.UIDS[0]], [BIG_ENDIAN], [RLE])


def test_more_classes_than_contexts_keep_one_context_each_with_the_common_syntaxes():
    contexts = syntaxes.contexts(classes(200), {classes(200)[3]: [RLE]})

    assert len(contexts) == 127
    assert sum(len(uids) for _c, uids in contexts) <= syntaxes.MAX_ENTRIES
    assert all(uids[:3] == list(syntaxes.UIDS[:3]) for _c, uids in contexts if _c != classes(4)[3])
    assert contexts[3][1][0] == RLE and BIG_ENDIAN in contexts[3][1]


def test_the_vocabulary_holds_every_syntax_family_the_issue_names():
    names = " ".join(syntaxes.NAMES.values())
    for family in ("Big Endian", "Implicit", "Deflated", "JPEG Baseline", "JPEG-LS",
                   "JPEG 2000 Part 2", "HTJ2K", "JPEG XL", "RLE", "MPEG-2", "MPEG-4", "HEVC",
                   "Encapsulated Uncompressed", "retired"):  # fmt: skip
        assert family in names
    assert len(set(syntaxes.UIDS)) == len(syntaxes.UIDS)
