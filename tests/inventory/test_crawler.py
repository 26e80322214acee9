"""The crawl's plain logic: how ranges split, when an answer counts as capped, and what a
C-FIND response says about a study."""

from datetime import date

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from inventory import crawler
from inventory.crawler import Range

TODAY = date(2026, 6, 15)


def response(**values):
    ds = Dataset()
    ds.SpecificCharacterSet = values.pop("SpecificCharacterSet", "ISO_IR 100")
    defaults = {
        "StudyInstanceUID": "1.2.3",
        "PatientID": "P1",
        "PatientName": "Doe^Jane",
        "StudyDate": "20200102",
        "StudyTime": "101500",
        "ModalitiesInStudy": "CT",
    }
    for keyword, value in {**defaults, **values}.items():
        if value is not None:
            setattr(ds, keyword, value)
    return ds


def codes(problems):
    return {code for code, _ in problems}


def test_a_capped_universal_query_splits_into_a_dated_span_and_a_planned_studytime_tree():
    children = crawler.split(Range("all", "all"), today=TODAY)
    assert children == [
        Range("dated", "span", date(1900, 1, 1), date(2027, 12, 31)),
        Range("timed", "plan"),
    ]


def test_the_studytime_tree_is_planned_from_known_times_and_covers_the_whole_day():
    minutes = {7 * 60 + m: 3 for m in range(60)}  # 180 studies between 07:00 and 07:59
    minutes[12 * 60] = 70  # a busy minute at noon
    ranges = crawler.plan_times(minutes, target=50)
    assert (ranges[0].time_from, ranges[0].time_to) == ("00", "071559.999999")
    assert [r.study_time for r in ranges[1:4]] == [
        "0716-073159.999999",
        "0732-074759.999999",
        "0748-115959.999999",
    ]
    assert ranges[4].study_time == "12-120059.999999"  # the busy minute alone
    assert ranges[-1].time_to == "235959.999999"
    assert crawler.split(ranges[3]) == [
        Range("timed", "times", time_from="0748", time_to="075959.999999"),
        *[Range("timed", "times", time_from=f"{h:02d}", time_to=f"{h:02d}5959.999999")
          for h in (8, 9, 10, 11)],
    ]  # fmt: skip
    assert len(crawler.split(ranges[4])) == 1 and crawler.split(ranges[4])[0].level == "minute"


def test_a_recrawl_plans_the_dated_span_from_the_dates_it_already_knows():
    span = Range("dated", "span", date(1900, 1, 1), date(2027, 12, 31))
    known = {date(2020, 1, d): 10 for d in range(1, 11)}
    planned = crawler.split(span, known_days=known, target=30)
    assert [(r.date_from, r.date_to) for r in planned] == [
        (date(1900, 1, 1), date(2020, 1, 3)),
        (date(2020, 1, 4), date(2020, 1, 6)),
        (date(2020, 1, 7), date(2020, 1, 9)),
        (date(2020, 1, 10), date(2027, 12, 31)),
    ]
    assert [r.level for r in crawler.split(planned[0])][:2] == ["year", "year"]
    within = crawler.split(planned[1])
    assert [r.study_date for r in within] == ["20200104", "20200105", "20200106"]


def test_dated_ranges_split_decades_years_months_days_hours_then_ten_minutes_and_minutes():
    span = Range("dated", "span", date(1998, 3, 1), date(2027, 12, 31))
    decades = crawler.split(span, today=TODAY)
    assert [d.label for d in decades[:2]] == ["1998-03-01 – 1999-12-31", "2000–2009"]
    years = crawler.split(decades[1])
    assert len(years) == 10 and years[0].study_date == "20000101-20001231"
    months = crawler.split(years[0])
    assert len(months) == 12 and months[1].date_to == date(2000, 2, 29)
    days = crawler.split(months[1])
    assert len(days) == 29 and days[-1].study_date == "20000229"
    hours = crawler.split(days[0])
    assert len(hours) == 24 and hours[0].study_date == "20000201"
    tens = crawler.split(hours[9])
    assert [t.study_time for t in tens[:2]] == ["0900-090959.999999", "0910-091959.999999"]
    minutes = crawler.split(tens[1])
    assert [m.study_time for m in minutes[:2]] == ["0910-091059.999999", "0911-091159.999999"]
    by_modality = crawler.split(minutes[0], modalities={"MR", "CT"})
    assert [m.modality for m in by_modality] == ["CT", "MR"]
    assert crawler.split(by_modality[0]) == []


def test_a_crawl_since_a_date_starts_from_that_date_and_skips_undated_studies():
    assert crawler.roots(since=date(2024, 5, 1), today=TODAY) == [
        Range("dated", "span", date(2024, 5, 1), date(2027, 12, 31))
    ]


def test_an_answer_is_capped_when_cancelled_at_a_known_cap_or_at_a_round_number():
    assert crawler.is_capped(3, truncated=True)
    assert crawler.is_capped(50, False, cap=50) and not crawler.is_capped(49, False, cap=50)
    assert crawler.is_capped(500, False) and not crawler.is_capped(499, False)


def test_a_good_response_becomes_a_record_without_problems():
    record, problems = crawler.parse_study(
        response(NumberOfStudyRelatedSeries="3", NumberOfStudyRelatedInstances="120")
    )
    assert problems == []
    assert (record["study_date"], record["num_series"], record["num_instances"]) == (
        date(2020, 1, 2),
        3,
        120,
    )


def test_odd_responses_become_problems_that_name_no_patient():
    assert crawler.parse_study(response(StudyInstanceUID=None))[0] is None
    assert codes(crawler.parse_study(response(StudyInstanceUID="1.2.x"))[1]) == {"invalid_uid"}
    assert codes(crawler.parse_study(response(StudyDate="20231345"))[1]) == {"odd_date"}
    assert codes(crawler.parse_study(response(PatientID=""))[1]) == {"missing_patient_id"}
    assert codes(crawler.parse_study(response(NumberOfStudyRelatedInstances="0"))[1]) == {
        "zero_instances"
    }
    lots = response()
    lots[0x00201206] = RawDataElement(Tag(0x00201206), "IS", 4, b"lots", 0, False, True)
    assert codes(crawler.parse_study(lots)[1]) == {"odd_number"}
    record, problems = crawler.parse_study(response(AccessionNumber="A" * 20))
    assert codes(problems) == {"too_long"} and len(record["accession_number"]) == 16
    garbled = response(SpecificCharacterSet="ISO_IR 192")
    latin1 = "Jörg".encode("latin-1")
    garbled[0x00100010] = RawDataElement(Tag(0x00100010), "PN", len(latin1), latin1, 0, False, True)
    record, problems = crawler.parse_study(garbled)
    assert codes(problems) == {"charset"}
    assert all("Doe" not in detail and "P1" not in detail for _, detail in problems)


def test_answers_are_deduplicated_by_study_instance_uid():
    parsed = crawler.parse_answer([response(), response(), response(StudyInstanceUID="1.2.4")])
    assert sorted(parsed.studies) == ["1.2.3", "1.2.4"] and parsed.duplicates == 1
    ignored = crawler.parse_answer(
        [response(ModalitiesInStudy="")], Range("dated", "modality", modality="CT")
    )
    assert ignored.ignores_modality
