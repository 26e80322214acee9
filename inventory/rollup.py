"""The inventory's rollup (StudyRollup): studies, problem studies, series and instances
per source, modality combination, StudyDate month and character set, kept by database
triggers (core/rollups.py) and read by inventory/reports.py, so the dashboard and the
summary API add up a few thousand rows instead of ten million studies."""

from core.rollups import Rollup

MONTH = {  # yyyymm of the StudyDate, 0 when undated
    "postgresql": "COALESCE(CAST(to_char({row}.study_date, 'YYYYMM') AS integer), 0)",
    "sqlite": "COALESCE(CAST(strftime('%Y%m', {row}.study_date) AS integer), 0)",
}

STUDIES = Rollup(
    name="study_rollup",
    tally_table="inventory_studyrollup",
    counted_table="inventory_study",
    keys={
        "source_id": "{row}.source_id",
        "vanished": "{row}.vanished",
        "modalities": "{row}.modalities",
        "month": MONTH,
        "charset": "{row}.charset",
    },
    sums={
        "studies": "1",
        "problems": "CASE WHEN {row}.has_problems THEN 1 ELSE 0 END",
        "series": "COALESCE({row}.num_series, 0)",
        "instances": "COALESCE({row}.num_instances, 0)",
    },
    watched=(
        "source_id",
        "vanished",
        "modalities",
        "study_date",
        "charset",
        "has_problems",
        "num_series",
        "num_instances",
    ),  # fmt: skip
    shards=4,
)
install, uninstall = STUDIES.install, STUDIES.uninstall
