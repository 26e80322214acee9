"""Protecting the clinical PACS: association slots shared by every worker (in Redis, with
leases), the waves' weekly schedules, the global pause, and closed-loop AIMD throttling on
the PACS's measured response time.

A slot is a member of a sorted set per PACS whose score is its lease expiry: a worker that
dies stops renewing, and its slot is swept on the next acquire, so nothing leaks.
"""

import re
import time
import uuid
from dataclasses import dataclass

import redis
from django.conf import settings
from django.utils import timezone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = 24

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) + #ARGV - 4 <= tonumber(ARGV[2]) then
  for i = 5, #ARGV do redis.call('ZADD', KEYS[1], ARGV[3], ARGV[i]) end
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
"""
_RENEW = """
local expires = redis.call('ZSCORE', KEYS[1], ARGV[3])
if expires and tonumber(expires) >= tonumber(ARGV[2]) then
  for i = 3, #ARGV do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
  return 1
end
for i = 3, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
return 0
"""
_clients = {}


def client():
    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return _clients[url]


def key(*parts):
    return ":".join([settings.MIGRATION_REDIS_PREFIX, *map(str, parts)])


# --- association slots ----------------------------------------------------------------


class Slots:
    """Leased association slots of one PACS, one member per association:
    `acquire(limit, weight)` → token or None. A C-MOVE study takes two at once (its
    C-MOVE association and the PACS's C-STORE association back to us both count against
    the PACS's limit), so a crawl or a read-back taking one more never pushes the PACS
    over it."""

    def __init__(self, source_id, lease=None):
        self.key = key("assoc", source_id)
        default = settings.MIGRATION_SLOT_LEASE_SECONDS or settings.MIGRATION_LEASE_SECONDS
        self.lease = float(lease or default)
        self._acquire = client().register_script(_ACQUIRE)
        self._renew = client().register_script(_RENEW)

    def acquire(self, limit, weight=1):
        token = f"{uuid.uuid4().hex}*{int(weight)}"
        now = time.time()
        args = [now, int(limit), now + self.lease, int(self.lease * 4) + 60, *_members(token)]
        return token if self._acquire(keys=[self.key], args=args) == 1 else None

    def renew(self, token):
        """Extend a slot's lease; False when it was swept (we were presumed dead)."""
        now = time.time()
        return self._renew(keys=[self.key], args=[now + self.lease, now, *_members(token)]) == 1

    def release(self, token):
        client().zrem(self.key, *_members(token))

    def next_expiry(self):
        """Seconds until the first slot's lease runs out; None when none is held."""
        first = client().zrange(self.key, 0, 0, withscores=True)
        return max(0.0, first[0][1] - time.time()) if first else None

    def in_use(self):
        client().zremrangebyscore(self.key, "-inf", time.time())
        return client().zcard(self.key)


def _members(token):
    """The sorted-set members of a token: one per association it holds."""
    weight = int(token.rpartition("*")[2] or 1)
    return [token, *(f"{token}.{n}" for n in range(1, weight))]


def associations_per_study(source):
    """What one study in flight holds at the PACS: C-GET one association; C-MOVE two
    (the C-MOVE, and the PACS's own C-STORE association to our Storage SCP)."""
    return 2 if source.retrieve_method == "move" else 1


# --- weekly schedules -------------------------------------------------------------------

_ENTRY = re.compile(
    r"^\s*(?P<days>[a-z*,\-]+)\s+(?P<hours>[\d*,\-]+)\s*=\s*(?P<limit>\d+|pacs)\s*$"
)


class ScheduleError(ValueError):
    pass


def empty_schedule():
    """Every hour at the PACS's own limit (None)."""
    return [[None] * HOURS for _ in DAYS]


def parse_schedule(spec):
    """A weekly table from lines like `mon-fri 7-19=1`, `sat,sun *=4`, `* 0-6=pacs`.

    Hours are `start-end` with `end` exclusive, or one hour, or `*`. Later lines override
    earlier ones; hours no line names run at the PACS's limit. Raises ScheduleError.
    """
    table = empty_schedule()
    for raw in re.split(r"[;\n]", spec or ""):
        if not raw.strip():
            continue
        match = _ENTRY.match(raw.lower())
        if not match:
            raise ScheduleError(f"cannot read {raw.strip()!r}: write e.g. 'mon-fri 7-19=1'")
        limit = None if match["limit"] == "pacs" else int(match["limit"])
        for day in _expand(match["days"], DAYS):
            for hour in _expand(match["hours"], range(HOURS)):
                table[day][hour] = limit
    return table


def _expand(text, universe):
    """Indexes named by '*', 'a', 'a-b', joined by commas. Days are names and their
    ranges inclusive (mon-fri); hours are numbers and their ranges end-exclusive (7-19)."""
    names = list(universe)
    by_name = isinstance(names[0], str)
    picked = []
    for part in text.split(","):
        if part == "*":
            picked.extend(range(len(names)))
        elif "-" in part:
            start, end = (_index(p, names, end_ok=True) for p in part.split("-", 1))
            end = end + 1 if by_name else end
            if end <= start:
                raise ScheduleError(f"range {part!r} is empty or runs backwards")
            picked.extend(range(start, end))
        else:
            picked.append(_index(part, names))
    return picked


def _index(token, names, end_ok=False):
    if isinstance(names[0], str):
        if token not in names:
            raise ScheduleError(f"unknown day {token!r}: use {', '.join(DAYS)}")
        return names.index(token)
    top = HOURS if end_ok else HOURS - 1
    if not token.isdigit() or not 0 <= int(token) <= top:
        raise ScheduleError(f"hour {token!r} is not between 0 and {top}")
    return int(token)


def format_schedule(table):
    """The shortest line-per-day spec that `parse_schedule` reads back to `table`."""
    if not table:
        return ""
    lines = []
    for day, hours in zip(DAYS, table, strict=True):
        start = 0
        for hour in range(1, HOURS + 1):
            if hour == HOURS or hours[hour] != hours[start]:
                if hours[start] is not None:
                    lines.append(f"{day} {start}-{hour}={hours[start]}")
                start = hour
    return "\n".join(lines)


def scheduled_limit(table, when=None):
    """The wave's association limit at `when` (local time): None means the PACS limit."""
    if not table:
        return None
    when = timezone.localtime(when)
    return table[when.weekday()][when.hour]


# --- closed-loop throttling (AIMD) -----------------------------------------------------


@dataclass
class Aimd:
    limit: float
    latency_ms: float | None = None
    changed_at: float = 0.0


def aimd_step(state, sample_ms, *, bound_ms, ceiling, now, alpha=0.3, cooldown=5.0, step=0.25):
    """One latency sample: smooth it (EWMA); above the bound halve the limit (at most once
    per `cooldown` seconds); below it add `step`, up to `ceiling`. Pure."""
    smooth = (
        sample_ms
        if state.latency_ms is None
        else (1 - alpha) * state.latency_ms + alpha * sample_ms
    )
    limit = min(state.limit, ceiling)
    changed = state.changed_at
    if smooth > bound_ms and now - state.changed_at >= cooldown:
        limit, changed = max(1.0, limit / 2), now
    elif smooth <= bound_ms:
        limit = min(float(ceiling), limit + step)
    return Aimd(limit=limit, latency_ms=smooth, changed_at=changed)


def latency_bound_ms():
    from migration.models import EngineControl

    bound = EngineControl.get().latency_bound_ms
    return float(bound or settings.MIGRATION_LATENCY_BOUND_MS)


def load_aimd(source_id, ceiling):
    raw = client().hgetall(key("aimd", source_id))
    if not raw:
        return Aimd(limit=float(ceiling))
    latency = raw.get(b"latency_ms")
    return Aimd(
        limit=float(raw[b"limit"]),
        latency_ms=float(latency) if latency else None,
        changed_at=float(raw.get(b"changed_at", 0)),
    )


def record_latency(source_id, sample_ms, ceiling, bound_ms=None):
    """Feed one PACS response-time sample into the loop; returns the new state."""
    bound_ms = bound_ms if bound_ms is not None else latency_bound_ms()
    state = aimd_step(
        load_aimd(source_id, ceiling),
        sample_ms,
        bound_ms=bound_ms,
        ceiling=ceiling,
        now=time.time(),
    )
    client().hset(
        key("aimd", source_id),
        mapping={
            "limit": state.limit,
            "latency_ms": state.latency_ms,
            "changed_at": state.changed_at,
        },
    )
    return state


def pacs_limit(source, waves_limits):
    """Associations allowed now on `source`: its own cap, the AIMD limit, and the largest
    of the running waves' scheduled limits (0 when every wave is in a paused hour). The
    AIMD limit never drops below what one study holds (two for C-MOVE), or nothing would
    run and no sample would ever raise it again."""
    ceiling = source.max_associations
    aimd = int(load_aimd(source.pk, ceiling).limit)
    scheduled = [ceiling if limit is None else limit for limit in waves_limits] or [0]
    floor = associations_per_study(source)
    return max(0, min(ceiling, max(floor, aimd), max(scheduled)))


def status(source):
    """What the wave page shows: associations open now, the limit, smoothed latency."""
    state = load_aimd(source.pk, source.max_associations)
    return {
        "associations": Slots(source.pk).in_use(),
        "max_associations": source.max_associations,
        "aimd_limit": round(state.limit, 2),
        "latency_ms": None if state.latency_ms is None else round(state.latency_ms, 1),
    }


def globally_paused():
    from migration.models import EngineControl

    return EngineControl.get().paused
