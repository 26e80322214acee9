"""The migration forecast: when it finishes, what link and hosts it needs, what the cloud
costs per month, and network against shipping devices. Pure: every input (measured
history, waves, link, prices, the clock) is passed in; `migration/planning.py` gathers
them from the database.

The model, in words:
- **Throughput** comes from the ledger's history of finished studies. Their busy time is
  the union of their [start, finish] intervals (gaps under `GAP_SECONDS` count as busy:
  claiming and dispatching are part of the cost). The engine's rate is bytes / busy time
  over the most recent half of the history (warm-up and drift: see `recent`); per
  association slot it is that rate over the peak number of studies in flight, per host
  that rate over the hosts seen. The spread comes from cutting the history into
  `CHUNKS` runs of consecutive studies and taking the 10th and 90th percentile of their
  rates (relative to the median).
- **Capacity** at any hour = min(association slots × MB/s per slot, hosts × MB/s per host,
  link Mbps × the share free at that hour / 8). Slots come from the wave's 7×24 schedule
  (None = the PACS limit, 0 = off), or from `hours_per_day` starting at `WINDOW_START`.
- **Waves** run one after the other in priority order (they share the PACS, hosts and
  link); growth (new studies arriving at the trend's rate) is added until the end.
- **Cost** per month: storage by class after the lifecycle rule (bytes stored more than
  `transition_days` ago are in the colder class), PUT and transition requests, and the
  viewers' reads (a share of the archive per month: GET requests, retrieval from the
  colder class, egress). Prices are per GiB (2^30 bytes), as cloud price lists bill.
"""

import bisect
import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

GAP_SECONDS = 60.0
RECENT_MINIMUM = 5
CHUNKS = 6
WINDOW_START = 20  # a day's migration window of `hours_per_day` opens at 20:00
HORIZON_DAYS = 3650
MB = 1e6
GIB = 2**30
TB = 1e12
STANDARD = "STANDARD"
PRICE_KEYS = {
    "storage_gb_month": "per storage class, per GiB-month",
    "put_per_1000": "PUT requests per 1,000, per class",
    "get_per_1000": "GET requests per 1,000, per class",
    "transition_per_1000": "lifecycle transitions per 1,000, per target class",
    "retrieval_gb": "retrieval per GiB read, per class",
    "egress_gb": "data transfer out to the internet, per GiB",
    "device_job": "one shipping device job (fee)",
}


def price_problem(prices):
    """Why `prices` cannot be costed with ("" when it can): every key of PRICE_KEYS, each a
    non-negative number or an object of storage class -> non-negative number."""
    if not isinstance(prices, dict):
        return "an object of prices"
    missing = sorted(set(PRICE_KEYS) - set(prices))
    if missing:
        return f"missing: {', '.join(missing)}"
    for key in PRICE_KEYS:
        value = prices[key]
        values = value.values() if isinstance(value, dict) else [value]
        if not all(_price(v) for v in values):
            return f"{key}: non-negative numbers, or an object of class -> number"
    return ""


def _price(value):
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and 0 <= value < 1e9


# AWS S3 list prices in us-east-1 (first tiers), as published on the AWS pricing pages in
# 2024 and not re-checked since: an example to edit, never a quote.
EXAMPLE_PRICES = {
    "storage_gb_month": {"STANDARD": 0.023, "STANDARD_IA": 0.0125, "GLACIER_IR": 0.004},
    "put_per_1000": {"STANDARD": 0.005, "STANDARD_IA": 0.01, "GLACIER_IR": 0.02},
    "get_per_1000": {"STANDARD": 0.0004, "STANDARD_IA": 0.001, "GLACIER_IR": 0.01},
    "transition_per_1000": {"STANDARD_IA": 0.01, "GLACIER_IR": 0.02},
    "retrieval_gb": {"STANDARD": 0.0, "STANDARD_IA": 0.01, "GLACIER_IR": 0.03},
    "egress_gb": 0.09,
    "device_job": 300.0,
}
COST_PARTS = ("storage_standard", "storage_cold", "requests", "retrieval", "egress")


# --- throughput from the ledger's history -----------------------------------------------


@dataclass(frozen=True)
class Study:
    """One finished study of the history: when it ran, its bytes, its worker host."""

    started: datetime
    finished: datetime
    size: int
    host: str = ""


@dataclass(frozen=True)
class Throughput:
    mb_s: float  # the engine's rate while busy
    per_slot: float  # MB/s per association slot
    per_host: float  # MB/s per worker host
    per_association: float  # MB/s of one study while it transfers
    low: float  # p10 of the runs' rates / median
    high: float  # p90 of the runs' rates / median
    slots: int
    hosts: int
    studies: int
    busy_seconds: float


def busy_seconds(studies, gap=GAP_SECONDS):
    """Length of the union of the studies' intervals, gaps under `gap` counted as busy."""
    total, start, end = 0.0, None, None
    for study in sorted(studies, key=lambda s: s.started):
        if end is not None and (study.started - end).total_seconds() <= gap:
            end = max(end, study.finished)
            continue
        if end is not None:
            total += (end - start).total_seconds()
        start, end = study.started, study.finished
    if end is not None:
        total += (end - start).total_seconds()
    return total


def peak_in_flight(studies):
    events = sorted([(s.started, 1) for s in studies] + [(s.finished, -1) for s in studies],
                    key=lambda e: (e[0], e[1]))  # fmt: skip
    peak = running = 0
    for _when, step in events:
        running += step
        peak = max(peak, running)
    return peak


def quantile(values, q):
    """Linear-interpolated quantile of a non-empty list."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _run_rates(studies, chunks):
    ordered = sorted(studies, key=lambda s: s.finished)
    size = max(1, len(ordered) // chunks)
    runs = [ordered[i : i + size] for i in range(0, len(ordered), size)]
    if len(runs) > 1 and len(runs[-1]) < size:
        runs[-2].extend(runs.pop())
    rates = []
    for run in runs:
        busy = busy_seconds(run)
        if busy > 0:
            rates.append(sum(s.size for s in run) / MB / busy)
    return rates


def recent(studies, minimum=RECENT_MINIMUM):
    """The most recent half of the history (by finish) when it holds at least `minimum`
    studies: the engine warms up (connections, caches) and conditions drift, so the
    latest runs predict the next ones best."""
    ordered = sorted(studies, key=lambda s: s.finished)
    half = ordered[len(ordered) // 2 :]
    return half if len(half) >= minimum else ordered


def measure(studies, chunks=CHUNKS, slots_cap=None):
    """Throughput from finished studies, or None without any history. The rate, per
    slot and per host, is the recent half's; the spread is over the whole history.

    `slots_cap` bounds the slots the history held: a stream overlaps a study's last
    uploads with the next one's retrieval, so more studies are in flight than hold the
    PACS's association slots."""
    studies = [s for s in studies if s.finished > s.started]
    if not studies or busy_seconds(studies) <= 0:
        return None
    latest = recent(studies)
    busy = busy_seconds(latest)
    rate = sum(s.size for s in latest) / MB / busy
    rates = _run_rates(studies, chunks) or [rate]
    median = quantile(rates, 0.5) or rate
    slots = max(1, min(peak_in_flight(latest), slots_cap or math.inf))
    hosts = max(1, len({s.host for s in latest if s.host}))
    transferring = sum((s.finished - s.started).total_seconds() for s in studies)
    return Throughput(
        mb_s=rate, per_slot=rate / slots, per_host=rate / hosts,
        per_association=sum(s.size for s in studies) / MB / transferring,
        low=quantile(rates, 0.1) / median, high=quantile(rates, 0.9) / median,
        slots=slots, hosts=hosts, studies=len(studies), busy_seconds=busy,
    )  # fmt: skip


# --- capacity over time -----------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    mbps: float
    by_hour: tuple = ()  # 24 shares of the link free for the migration (empty: all)

    def mb_s(self, hour):
        share = self.by_hour[hour] if len(self.by_hour) == 24 else 1.0
        return self.mbps * share / 8


@dataclass(frozen=True)
class Plan:
    """What the capacity depends on besides the measured throughput."""

    link: Link
    hosts: int = 1
    slots_limit: int = 2  # the PACS's association limit
    schedule: tuple = ()  # 7×24 slots (None = the limit, 0 = off); empty: always the limit
    hours_per_day: float | None = None  # overrides the schedule's hours when given

    def slots(self, when):
        if self.hours_per_day is not None:
            return self.slots_limit * _window_share(when.hour, self.hours_per_day)
        if not self.schedule:
            return self.slots_limit
        value = self.schedule[when.weekday()][when.hour]
        return self.slots_limit if value is None else min(value, self.slots_limit)


def _window_share(hour, hours_per_day):
    """Share of `hour` inside the daily window of `hours_per_day` opening at WINDOW_START."""
    offset = (hour - WINDOW_START) % 24
    return max(0.0, min(1.0, hours_per_day - offset))


def capacity(plan, throughput, when, factor=1.0, link=True):
    """MB/s the migration moves during the hour of `when`."""
    engine = min(plan.slots(when) * throughput.per_slot, plan.hosts * throughput.per_host)
    engine *= factor
    return min(engine, plan.link.mb_s(when.hour)) if link else engine


def _next_hour(when):
    return when.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def advance(start, amount_mb, rate, horizon=HORIZON_DAYS):
    """When `amount_mb` has moved at `rate(when)` MB/s from `start`, hour by hour; None
    beyond the horizon. Returns (finish, [(day start, MB moved by then)])."""
    when, moved, daily = start, 0.0, []
    end = start + timedelta(days=horizon)
    while when < end:
        boundary = _next_hour(when)
        speed = rate(when)
        span = (boundary - when).total_seconds()
        if speed > 0 and moved + speed * span >= amount_mb:  # speed < 0: the backlog grows
            return when + timedelta(seconds=(amount_mb - moved) / speed), daily
        moved += speed * span
        if boundary.hour == 0:
            daily.append((boundary, moved))
        when = boundary
    return None, daily


# --- the forecast -----------------------------------------------------------------------


@dataclass(frozen=True)
class Wave:
    name: str
    remaining_bytes: float
    plan: Plan


@dataclass
class Outcome:
    finish: datetime | None
    finish_p10: datetime | None
    finish_p90: datetime | None
    waves: list = field(default_factory=list)
    plan_series: list = field(default_factory=list)  # [(datetime, bytes moved from now)]


def _finishes(waves, throughput, now, factor, growth_mb_day):
    """([(wave, finish)], series) running the waves one after another at `factor` × the
    rate. The last wave also takes the growth: its backlog shrinks at the rate less the
    arrivals (so it never ends when the archive grows faster than the engine)."""
    results, when, series, moved_before = [], now, [], 0.0
    growth = growth_mb_day / 86400
    for wave in waves:
        if when is None:
            results.append((wave, None))
            continue
        last = wave is waves[-1] and growth > 0
        amount = wave.remaining_bytes / MB
        if last:
            amount += growth * (when - now).total_seconds()
        drain = growth if last else 0.0
        start = when
        finish, daily = advance(
            when, amount, lambda t, p=wave.plan, d=drain: capacity(p, throughput, t, factor) - d
        )
        for day, mb in daily:
            series.append((day, (moved_before + mb + drain * (day - start).total_seconds()) * MB))
        if finish is not None:
            moved_before += amount + drain * (finish - start).total_seconds()
        results.append((wave, finish))
        when = finish
    if when is not None:
        series.append((when, moved_before * MB))
    return results, series


def forecast(waves, throughput, now, growth_bytes_per_day=0.0):
    """Finish of each wave and of all, with the p10/p90 band of the measured spread."""
    if throughput is None or not waves:
        finish = now if not waves else None
        return Outcome(finish, finish, finish)
    growth = growth_bytes_per_day / MB
    middle, series = _finishes(waves, throughput, now, 1.0, growth)
    early, _ = _finishes(waves, throughput, now, throughput.high, growth)
    late, _ = _finishes(waves, throughput, now, throughput.low, growth)
    rows = [
        {"name": w.name, "remaining_bytes": w.remaining_bytes, "finish": f, "finish_p10": e,
         "finish_p90": lt}
        for (w, f), (_w1, e), (_w2, lt) in zip(middle, early, late, strict=True)
    ]  # fmt: skip
    return Outcome(middle[-1][1], early[-1][1], late[-1][1], rows, [(now, 0.0)] + series)


def window_hours(plan, now, target):
    """Hours of migration window (weighted by the share of slots open) from now to target."""
    hours, when = 0.0, now
    end = datetime.combine(target, datetime.min.time(), tzinfo=now.tzinfo)
    while when < end:
        boundary = min(_next_hour(when), end)
        if plan.slots_limit:
            hours += (boundary - when).total_seconds() / 3600 * plan.slots(when) / plan.slots_limit
        when = boundary
    return hours


def needed(total_bytes, plan, throughput, now, target):
    """{"required_mbps", "hosts_needed", "slots_needed", "window_hours"} to move
    `total_bytes` by the start of `target` within the plan's migration window."""
    hours = window_hours(plan, now, target)
    if hours <= 0:
        return {"required_mbps": None, "hosts_needed": None, "slots_needed": None,
                "window_hours": 0.0}  # fmt: skip
    mb_s = total_bytes / MB / (hours * 3600)
    per_host = throughput.per_host if throughput else 0
    per_slot = throughput.per_slot if throughput else 0
    return {
        "required_mbps": mb_s * 8,
        "hosts_needed": math.ceil(mb_s / per_host - 1e-9) if per_host else None,
        "slots_needed": math.ceil(mb_s / per_slot - 1e-9) if per_slot else None,
        "window_hours": hours,
    }


# --- cost -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Storage:
    """What the bill depends on besides the prices."""

    stored_bytes: float  # already in the cloud now
    bytes_per_object: float
    transition_days: int | None = None
    cold_class: str = "STANDARD_IA"
    reads_per_month: float = 0.02  # share of the archive the viewers read each month
    egress_share: float = 1.0
    growth_bytes_per_day: float = 0.0


def month_starts(first, count):
    months, year, month = [], first.year, first.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def stored_at(series, when, storage, finish):
    """Bytes in the cloud at `when`: already stored + moved by then (the plan's series,
    interpolated) + growth after the finish."""
    moved = 0.0
    index = bisect.bisect_right([t for t, _b in series], when)
    if index >= len(series) and series:
        moved = series[-1][1]
    elif index > 0:
        (t0, b0), (t1, b1) = series[index - 1], series[index]
        moved = b0 + (b1 - b0) * (when - t0).total_seconds() / (t1 - t0).total_seconds()
    after = max(0.0, (when - finish).total_seconds() / 86400) if finish else 0.0
    return storage.stored_bytes + moved + after * storage.growth_bytes_per_day


def month_cost(month, next_month, series, storage, prices, finish, tz=None):
    """{"month", parts of COST_PARTS, "total"} for one calendar month."""
    start = datetime.combine(month, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(next_month, datetime.min.time(), tzinfo=tz)
    total_end, total_start = (stored_at(series, t, storage, finish) for t in (end, start))
    cold_end = cold_start = 0.0
    if storage.transition_days is not None:
        shift = timedelta(days=storage.transition_days)
        cold_end = _stored_before(series, end - shift, storage, finish)
        cold_start = _stored_before(series, start - shift, storage, finish)
    cold = storage.cold_class
    storage_gib = prices["storage_gb_month"]
    put_objects = max(0.0, total_end - total_start) / storage.bytes_per_object
    moved_cold = max(0.0, cold_end - cold_start) / storage.bytes_per_object
    reads = storage.reads_per_month * total_end
    cold_share = cold_end / total_end if total_end else 0.0
    read_objects = reads / storage.bytes_per_object
    parts = {
        "storage_standard": (total_end - cold_end) / GIB * storage_gib[STANDARD],
        "storage_cold": cold_end / GIB * storage_gib.get(cold, 0.0),
        "requests": put_objects / 1000 * prices["put_per_1000"][STANDARD]
        + moved_cold / 1000 * prices["transition_per_1000"].get(cold, 0.0)
        + read_objects * (1 - cold_share) / 1000 * prices["get_per_1000"][STANDARD]
        + read_objects * cold_share / 1000 * prices["get_per_1000"].get(cold, 0.0),
        "retrieval": reads * cold_share / GIB * prices["retrieval_gb"].get(cold, 0.0),
        "egress": reads * storage.egress_share / GIB * prices["egress_gb"],
    }
    return {"month": month.isoformat()[:7], **parts, "total": sum(parts.values())}


def _stored_before(series, when, storage, finish):
    """Bytes stored by `when` and so old enough for the colder class (already stored
    bytes count as uploaded at the series' start)."""
    if series and when < series[0][0]:
        return 0.0
    return stored_at(series, when, storage, finish)


def monthly_costs(series, storage, prices, finish, now, months_after=12):
    """One row per month from this month to `months_after` months after the finish."""
    last = finish or now
    count = (last.year - now.year) * 12 + last.month - now.month + 1 + months_after
    months = month_starts(now.date(), count + 1)
    return [
        month_cost(m, n, series, storage, prices, finish, now.tzinfo)
        for m, n in zip(months, months[1:], strict=False)
    ]


# --- network against shipping devices ---------------------------------------------------


def shipping(waves, throughput, now, device_tb, turnaround_days, prices):
    """Copy onto devices at the engine's rate (no link), then ship: the last device
    arrives `turnaround_days` after it is full. {"devices", "finish", "cost"}."""
    total = sum(w.remaining_bytes for w in waves)
    devices = math.ceil(total / (device_tb * TB) - 1e-9) if total else 0
    if throughput is None or not waves:
        return {"devices": devices, "finish": None, "cost": devices * prices["device_job"]}
    when = now
    for wave in waves:
        unlinked = replace(wave.plan, link=Link(math.inf))
        when, _ = advance(when, wave.remaining_bytes / MB,
                          lambda t, p=unlinked: capacity(p, throughput, t, link=False))  # fmt: skip
        if when is None:
            break
    finish = when + timedelta(days=turnaround_days) if when else None
    return {"devices": devices, "finish": finish, "cost": devices * prices["device_job"]}
