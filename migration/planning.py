"""The forecast's inputs from the database, and its result as plain data.

`plan(now, **overrides)` reads the waves still to run, the ledger's history of finished
studies, the inventory's volumes and growth, the editable assumptions and prices, runs
`migration.forecast` and returns the dict that the page, the API, the CSV, the report and
`manage.py plan --json` show. Overrides (hosts, link_mbps, hours_per_day, target_date)
are the what-if page's sliders; nothing is saved.
"""

import math
from datetime import date, timedelta

from django.db.models import Sum
from django.db.models.functions import ExtractYear
from django.utils import timezone

from cutover.models import Task
from inventory import reports
from inventory.models import PacsSource
from migration import forecast as fc
from migration.models import (
    TERMINAL_STATES,
    DestinationDesign,
    ForecastAssumptions,
    PriceList,
    StudyState,
    Wave,
    WaveState,
    WaveStudy,
)
from migration.throttle import associations_per_study

HISTORY_LIMIT = 5000
HISTORY_DAYS = 30
EXAMPLE_PRICE_LIST = {
    "name": "aws-s3-us-east-1-example",
    "region": "us-east-1",
    "currency": "USD",
    "taken_on": date(2024, 6, 1),
    "source": "AWS S3 and Snowball list prices (us-east-1, first tiers) as published in 2024; "
    "an example, not re-checked: edit before relying on it",
    "prices": fc.EXAMPLE_PRICES,
}


def price_list(assumptions=None):
    """The assumptions' price list, else the newest, else the example (created once)."""
    if assumptions is not None and assumptions.price_list_id:
        return assumptions.price_list
    newest = PriceList.objects.first()
    if newest is not None:
        return newest
    fields = {k: v for k, v in EXAMPLE_PRICE_LIST.items() if k != "name"}
    return PriceList.objects.get_or_create(name=EXAMPLE_PRICE_LIST["name"], defaults=fields)[0]


def pending_waves():
    return list(
        Wave.objects.exclude(state__in=[WaveState.DONE, WaveState.CANCELLED])
        .select_related("source", "destination")
        .order_by("-priority", "name")
    )


def history(now, limit=HISTORY_LIMIT, days=HISTORY_DAYS):
    """The most recent finished studies as forecast.Study (the ledger's own timings)."""
    rows = (
        WaveStudy.objects.filter(
            state=StudyState.DONE,
            started_at__isnull=False,
            finished_at__isnull=False,
            finished_at__gte=now - timedelta(days=days),
            bytes_stored__gt=0,
        )  # fmt: skip
        .order_by("-finished_at")
        .values_list("started_at", "finished_at", "bytes_stored", "host")[:limit]
    )
    return [fc.Study(*row) for row in rows]


def study_slots(now, days=HISTORY_DAYS):
    """How many studies the PACS sources of the recent history let hold association slots
    at once (each source's limit over what one study holds)."""
    sources = PacsSource.objects.filter(
        waves__ledger__state=StudyState.DONE,
        waves__ledger__finished_at__gte=now - timedelta(days=days),
    ).distinct()
    return sum(max(1, s.max_associations // associations_per_study(s)) for s in sources) or None


def _bytes_per_instance(rows):
    sums = rows.filter(state=StudyState.DONE).aggregate(
        size=Sum("bytes_stored"), count=Sum("instances_stored")
    )
    return sums["size"] / sums["count"] if sums["count"] and sums["size"] else None


def remaining_bytes(wave, fallback=None):
    """Bytes still to move: the instances of its unfinished studies times the wave's own
    measured bytes per instance (else `fallback`, else the inventory's size by modality)."""
    measured = _bytes_per_instance(wave.ledger.all()) or fallback
    open_rows = wave.ledger.exclude(state__in=TERMINAL_STATES)
    grouped = open_rows.values("study__modalities").annotate(n=Sum("study__num_instances"))
    total = 0.0
    for row in grouped:
        modality = (row["study__modalities"] or "").split("\\")[0]
        size = measured or reports.TYPICAL_BYTES.get(modality, reports.DEFAULT_BYTES)
        total += (row["n"] or 0) * size
    return total


def volumes():
    """[{"year", "modality", "studies", "bytes"}] of the inventory (sizes as its reports)."""
    rows = (
        reports.studies()
        .annotate(year=ExtractYear("study_date"))
        .values("year", "modalities")
        .annotate(instances=Sum("num_instances"))
    )
    table = {}
    for row in rows:
        modality = (row["modalities"] or "?").split("\\")[0] or "?"
        key = (row["year"] or "undated", modality)
        size = reports.TYPICAL_BYTES.get(modality, reports.DEFAULT_BYTES)
        table[key] = table.get(key, 0) + (row["instances"] or 0) * size
    return [{"year": y, "modality": m, "bytes": b} for (y, m), b in sorted(table.items(), key=str)]


def growth_bytes_per_day():
    """The inventory's growth trend (studies per month) at its mean estimated study size."""
    trend = reports.growth()
    totals = reports.totals()
    if not trend["per_month"] or not totals["studies"]:
        return 0.0
    return trend["per_month"] * totals["estimated_bytes"] / totals["studies"] / 30.44


def _assumption(assumptions, overrides, name):
    """An override, else the saved assumption; `hours_per_day` 0 means "the waves' own
    schedules" (None)."""
    value = overrides.get(name)
    value = getattr(assumptions, name) if value is None else value
    return None if name == "hours_per_day" and value == 0 else value


def _plan_for(wave, assumptions, overrides):
    link = fc.Link(_assumption(assumptions, overrides, "link_mbps"),
                   tuple(assumptions.link_by_hour or ()))  # fmt: skip
    return fc.Plan(
        link=link, hosts=int(_assumption(assumptions, overrides, "hosts")),
        slots_limit=wave.source.max_associations, schedule=tuple(wave.schedule or ()),
        hours_per_day=_assumption(assumptions, overrides, "hours_per_day"),
    )  # fmt: skip


def _storage(assumptions, stored, per_object, growth):
    design = DestinationDesign.objects.filter(transition_days__isnull=False).first()
    return fc.Storage(
        stored_bytes=stored, bytes_per_object=per_object,
        transition_days=design.transition_days if design else None,
        cold_class=(design.transition_class if design else "") or "STANDARD_IA",
        reads_per_month=assumptions.reads_per_month, egress_share=assumptions.egress_share,
        growth_bytes_per_day=growth,
    )  # fmt: skip


def _iso(value):
    return value.isoformat() if value is not None else None


def _day(value):
    return timezone.localtime(value).date().isoformat() if value is not None else None


def plan(now=None, **overrides):
    """The whole forecast as plain data (see the module docstring)."""
    now = timezone.localtime(now or timezone.now())
    assumptions = ForecastAssumptions.get()
    throughput = fc.measure(history(now), slots_cap=study_slots(now))
    models = wave_models(assumptions, overrides)
    growth = growth_bytes_per_day()
    outcome = fc.forecast(models, throughput, now, growth)
    target = overrides.get("target_date") or assumptions.target_date
    first = models[0].plan if models else _plan_for_default(assumptions, overrides)
    total = sum(w.remaining_bytes for w in models)
    need = fc.needed(total, first, throughput, now, target) if target else {}
    return {
        "now": _iso(now),
        **_finishes(outcome, now),
        "remaining_bytes": total,
        "growth_bytes_per_day": growth,
        "target_date": _iso(target),
        "required_mbps": _round(need.get("required_mbps")),
        "hosts_needed": need.get("hosts_needed"),
        "slots_needed": need.get("slots_needed"),
        "window_hours": need.get("window_hours"),
        **_money_part(outcome, models, throughput, now, assumptions, growth),
        "throughput": _throughput_row(throughput),
        "assumptions": _assumptions_row(assumptions, overrides),
        "plan_series": [(_iso(t), b) for t, b in outcome.plan_series],
        "actual_series": actual_series(now),
    }


def wave_models(assumptions, overrides):
    """The waves still to run as forecast.Wave, in the order the engine takes them."""
    per_instance = _bytes_per_instance(WaveStudy.objects.all())
    return [
        fc.Wave(w.name, remaining_bytes(w, per_instance), _plan_for(w, assumptions, overrides))
        for w in pending_waves()
    ]


def _finishes(outcome, now):
    return {
        "finish_date": _day(outcome.finish),
        "finish_p10": _day(outcome.finish_p10),
        "finish_p90": _day(outcome.finish_p90),
        "finish_at": _iso(outcome.finish),
        "finish_p10_at": _iso(outcome.finish_p10),
        "finish_p90_at": _iso(outcome.finish_p90),
        "waves": [_wave_row(row, now) for row in outcome.waves],
    }


def _money_part(outcome, models, throughput, now, assumptions, growth):
    """Cost per month, network against shipping, and the price list used."""
    prices = price_list(assumptions)
    sums = WaveStudy.objects.filter(state=StudyState.DONE).aggregate(
        size=Sum("bytes_stored"), count=Sum("instances_stored")
    )
    stored, instances = sums["size"] or 0, sums["count"] or 0
    per_object = stored / instances if instances else _inventory_bytes_per_instance()
    storage = _storage(assumptions, stored, per_object, growth)
    series = outcome.plan_series or [(now, 0.0)]
    costs = fc.monthly_costs(series, storage, prices.prices, outcome.finish, now,
                             assumptions.months_after)  # fmt: skip
    ship = fc.shipping(models, throughput, now, assumptions.device_tb,
                       assumptions.device_turnaround_days, prices.prices)  # fmt: skip
    return {
        "stored_bytes": stored,
        "monthly_cost": [{k: _money(v) for k, v in row.items()} for row in costs],
        "comparison": _comparison(outcome, ship),
        "prices": {
            "name": prices.name,
            "region": prices.region,
            "currency": prices.currency,
            "taken_on": prices.taken_on.isoformat(),
            "source": prices.source,
        },  # fmt: skip
    }


def _inventory_bytes_per_instance():
    totals = reports.totals()
    return totals["estimated_bytes"] / totals["instances"] if totals["instances"] else 1e6


def _assumptions_row(assumptions, overrides):
    return {
        "link_mbps": _assumption(assumptions, overrides, "link_mbps"),
        "hosts": int(_assumption(assumptions, overrides, "hosts")),
        "hours_per_day": _assumption(assumptions, overrides, "hours_per_day"),
        "reads_per_month": assumptions.reads_per_month,
        "device_tb": assumptions.device_tb,
        "device_turnaround_days": assumptions.device_turnaround_days,
    }


def _plan_for_default(assumptions, overrides):
    return fc.Plan(link=fc.Link(_assumption(assumptions, overrides, "link_mbps")),
                   hosts=int(_assumption(assumptions, overrides, "hosts")),
                   hours_per_day=_assumption(assumptions, overrides, "hours_per_day"))  # fmt: skip


def _round(value, digits=1):
    return None if value is None else round(value, digits)


def _money(value):
    return round(value, 2) if isinstance(value, float) else value


def _wave_row(row, now):
    finish = row["finish"]
    return {
        "name": row["name"],
        "remaining_bytes": row["remaining_bytes"],
        "finish_date": _day(finish),
        "finish_at": _iso(finish),
        "finish_p10_at": _iso(row["finish_p10"]),
        "finish_p90_at": _iso(row["finish_p90"]),
        "remaining_seconds": (finish - now).total_seconds() if finish else None,
    }


def _throughput_row(throughput):
    if throughput is None:
        return None
    fields = ("mb_s", "per_slot", "per_host", "per_association", "low", "high")
    row = {name: round(getattr(throughput, name), 3) for name in fields}
    row.update(slots=throughput.slots, hosts=throughput.hosts, studies=throughput.studies,
               busy_seconds=round(throughput.busy_seconds, 1))  # fmt: skip
    row["per_slot_p10"] = round(throughput.per_slot * throughput.low, 3)
    row["per_slot_p90"] = round(throughput.per_slot * throughput.high, 3)
    return row


def _comparison(outcome, ship):
    return [
        {"method": "network transfer", "finish_date": _day(outcome.finish), "devices": None,
         "cost": 0.0, "note": "ingress is not billed; the link is the bound"},
        {"method": "shipping storage devices", "finish_date": _day(ship["finish"]),
         "devices": ship["devices"], "cost": round(ship["cost"], 2),
         "note": "copied at the engine's rate (no link), then the turnaround"},
    ]  # fmt: skip


def actual_series(now, points=60):
    """[(ISO time, cumulative bytes stored)] from the ledger, at most `points` points."""
    rows = list(
        WaveStudy.objects.filter(state=StudyState.DONE, finished_at__isnull=False)
        .order_by("finished_at")
        .values_list("finished_at", "bytes_stored")
    )
    if not rows:
        return []
    step = max(1, math.ceil(len(rows) / points))
    series, total = [], 0
    for index, (when, size) in enumerate(rows):
        total += size
        if index % step == 0 or index == len(rows) - 1:
            series.append((_iso(when), total))
    return series


def roadmap_tasks(result):
    """The roadmap's live-bound migration tasks with the forecast finish of their waves,
    against their scheduled finish and deadline (the slip, in days)."""
    finishes = {w["name"]: w["finish_date"] for w in result["waves"]}
    rows = []
    for task in Task.objects.filter(measure="migration.waves").select_related("roadmap"):
        ids = (task.measure_params or {}).get("waves") or []
        names = list(Wave.objects.filter(pk__in=ids).values_list("name", flat=True)) if ids else []
        chosen = (
            [finishes.get(n) for n in names if n in finishes] if names else list(finishes.values())
        )
        forecast = None if not chosen or None in chosen else max(chosen)
        planned = task.deadline or task.early_finish
        slip = (date.fromisoformat(forecast) - planned).days if forecast and planned else None
        rows.append(
            {
                "code": task.code,
                "name": task.name,
                "roadmap": task.roadmap.name,
                "planned": _iso(planned),
                "forecast": forecast,
                "slip_days": slip,
            }
        )
    return rows
