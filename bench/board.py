"""Benchmark of the triage board: live delivery to 200 browsers, and the board page.

  .venv/bin/python bench/board.py [--clients 200] [--rate 10] [--seconds 20] [--tickets 10000]

Sets up its own SQLite database, an embedded Redis and the ASGI server (uvicorn, in a
subprocess), opens CLIENTS websockets subscribed to the `board` topic, then changes
tickets RATE times a second through `desk.tickets.transition` (the real path:
database write, card rendered once, one event) and records, for every client, the delay
from the start of each change to its receipt. Baseline, measured in the same run: the
same clients receiving a bare `events.publish` (no database, no rendering) at the same
rate. The board page's server time is measured in-process with 100 tickets (baseline) and
with TICKETS tickets. Targets (issue 6): p95 delivery < 250 ms, board page < 200 ms.
The last line of output is one JSON object.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.services.base import LOOPBACK, ManagedProcess, free_port, port_open  # noqa: E402
from devstack.services.redis import EmbeddedRedis  # noqa: E402

TARGET_P95_MS = 250.0
TARGET_PAGE_MS = 200.0


def setup_environment(database_url):
    """Own database, var dir and Redis, before Django reads its settings."""
    var = Path(tempfile.mkdtemp(prefix="bench-board-"))
    db = Path("/tmp/bench-board.sqlite3")
    for path in (db, Path(f"{db}-journal")):
        path.unlink(missing_ok=True)
    redis_server = EmbeddedRedis().start()
    os.environ.update(
        DATABASE_URL=database_url or f"sqlite:///{db}",
        VAR_DIR=str(var),
        REDIS_URL=redis_server.url,
        CHANNEL_PREFIX=f"bench{os.getpid()}",
        DJANGO_SETTINGS_MODULE="commandcenter.settings",
        LOG_LEVEL="WARNING",
        DEBUG="true",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if database_url:  # a server database may hold an earlier run: start empty
        call_command("flush", interactive=False, verbosity=0)
    return redis_server


class Web(ManagedProcess):
    """The ASGI application under uvicorn, as production serves it."""

    name = "uvicorn"
    start_timeout = 60.0

    def __init__(self):
        super().__init__()
        self.port = free_port()

    def command(self):
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "commandcenter.asgi:application",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--ws",
            "websockets-sansio",
            "--log-level",
            "warning",
            "--app-dir",
            str(REPO),
        ]

    def env(self):
        return dict(os.environ)

    def ready(self):
        return port_open(self.port)


# --- Data -----------------------------------------------------------------------------------


def staff_user():
    from django.contrib.auth.models import Group, User

    from core.access import STAFF, ensure_roles

    ensure_roles()
    user = User.objects.create_user("bench-staff", "bench@hospital.test", "x")
    user.groups.add(Group.objects.get(name=STAFF))
    return user


def add_tickets(count, start_index=0):
    """Bulk-insert tickets spread over statuses, priorities and categories, opened over
    the last two weeks (what a busy go-live board holds)."""
    from datetime import timedelta

    from django.utils import timezone

    from desk import catalog, sla, workflow
    from desk.models import Ticket
    from desk.priority import DEFAULT_MATRIX

    now = timezone.now()
    cells = list(DEFAULT_MATRIX.items())
    statuses = [*workflow.OPEN_STATUSES, "resolved", "closed"]
    categories = list(catalog.CATEGORIES)
    table = sla.targets()
    rows = []
    for i in range(start_index, start_index + count):
        (impact, urgency), priority = cells[i % len(cells)]
        opened = now - timedelta(minutes=(i * 7) % (14 * 24 * 60))
        ack_due, resolve_due = sla.deadlines(opened, priority, table=table)
        status = statuses[i % len(statuses)]
        done = status in ("resolved", "closed")
        rows.append(
            Ticket(
                title=f"Bench ticket {i}",
                category=categories[i % len(categories)],
                impact=impact,
                urgency=urgency,
                priority=priority,
                status=status,
                opened_at=opened,
                updated_at=opened,
                acknowledged_at=None if status == "new" else opened,
                resolved_at=opened if done else None,
                ack_due=ack_due,
                resolve_due=resolve_due,
                paused_since=now if status == "waiting" else None,
            )
        )
    Ticket.objects.bulk_create(rows, batch_size=1000)


def board_page_ms(user, runs=20):
    """Server time of GET /command-center/ (median of `runs`, after warm-up), in-process."""
    from django.test import Client

    client = Client(HTTP_HOST=LOOPBACK)
    client.force_login(user)
    times = []
    for i in range(runs + 3):
        start = time.perf_counter()
        response = client.get("/command-center/")
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"board page answered {response.status_code}")
        if i >= 3:
            times.append(elapsed)
    cards = response.content.decode().count('class="ticket-card')
    return statistics.median(times), cards


def session_cookie(user):
    from django.test import Client

    client = Client(HTTP_HOST=LOOPBACK)
    client.force_login(user)
    return client.cookies["sessionid"].value


# --- Websocket clients ----------------------------------------------------------------------


async def _client_main(url, origin, cookie, count, conn):
    """One client process: `count` websockets on the board; receipts go back on request."""
    from websockets.asyncio.client import connect

    headers = {"Cookie": f"sessionid={cookie}", "Origin": origin}
    received = []

    async def listen(ws):
        async for text in ws:
            now = time.time()
            received.append((json.loads(text)["data"].get("id"), now))

    sockets = []
    for batch in range(0, count, 25):
        opened = await asyncio.gather(
            *(
                connect(url, additional_headers=headers)
                for _ in range(batch, min(batch + 25, count))
            )
        )
        for ws in opened:
            await ws.send(json.dumps({"subscribe": ["board"]}))
            ack = json.loads(await ws.recv())
            if ack.get("subscribed") != ["board"]:
                raise SystemExit(f"subscription refused: {ack}")
        sockets += opened
    tasks = [asyncio.create_task(listen(ws)) for ws in sockets]
    loop = asyncio.get_running_loop()
    conn.send("ready")
    while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
        if command == "collect":
            conn.send(received[:])
            received.clear()
    for task in tasks:
        task.cancel()
    for ws in sockets:
        await ws.close()


def _client_process(url, origin, cookie, count, conn):
    asyncio.run(_client_main(url, origin, cookie, count, conn))


class Clients:
    """Websocket clients spread over a few processes, so that the clock that stamps each
    receipt is not held up by the process that makes the changes."""

    def __init__(self, url, origin, cookie, count, processes=2):
        ctx = multiprocessing.get_context("spawn")
        self.pipes, self.procs = [], []
        share = [count // processes + (i < count % processes) for i in range(processes)]
        for n in share:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_client_process, args=(url, origin, cookie, n, child))
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            if pipe.recv() != "ready":
                raise SystemExit("a client process failed to subscribe")

    def collect(self):
        """Receipts per client process since the last collect: [[(id, time), ...], ...]."""
        for pipe in self.pipes:
            pipe.send("collect")
        return [pipe.recv() for pipe in self.pipes]

    def stop(self):
        for pipe in self.pipes:
            pipe.send("stop")
        for proc in self.procs:
            proc.join(30)


def delays(receipts, started, clients):
    """Delay from each change's start to each client's receipt, in ms; and how many
    (change, client) pairs never arrived."""
    values = [(t - started[key]) * 1000 for batch in receipts for key, t in batch if key in started]
    return values, len(started) * clients - len(values)


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def drive(changes, rate, action):
    """Call action(i) `changes` times at `rate` per second; returns {key: start time}."""
    started = {}
    begin = time.perf_counter()
    for i in range(changes):
        wait = begin + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        key = action(i)
        started[key[0]] = key[1]
    return started


def bare_publish(i):
    from core.events import publish

    key = f"bare-{i}"
    t0 = time.time()
    publish("board", {"id": key}, html="<li>bare</li>")
    return key, t0


def ticket_changer(ticket_ids, user):
    from desk import tickets
    from desk.models import Ticket

    def change(i):
        ticket = Ticket.objects.get(pk=ticket_ids[i])
        target = "waiting" if ticket.status == "in_progress" else "in_progress"
        t0 = time.time()
        tickets.transition(ticket, target, user)
        return ticket.pk, t0

    return change


def changeable_tickets(count):
    from desk.models import Ticket

    rows = Ticket.objects.filter(status__in=["in_progress", "waiting"]).values_list("pk", flat=True)
    return list(rows[:count])


def cpu_seconds(pid):
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(clients, action, changes, rate, count, server_pid):
    """Drive the changes, wait until every client has caught up (or 30 s of silence-free
    waiting), and return (delays, missing, server CPU seconds per second of the run)."""
    clients.collect()  # drop anything from before
    cpu_before, begin = cpu_seconds(server_pid), time.monotonic()
    started = drive(changes, rate, action)
    receipts, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(1.0)
        batch = clients.collect()
        receipts += batch
        if not any(batch) and sum(len(b) for b in receipts) > 0:
            break
    load = (cpu_seconds(server_pid) - cpu_before) / (time.monotonic() - begin)
    values, missing = delays(receipts, started, count)
    return values, missing, load


def delivery(web, cookie, ids, user, args):
    origin = f"http://{LOOPBACK}:{web.port}"
    clients = Clients(f"ws://{LOOPBACK}:{web.port}/ws/events/", origin, cookie, args.clients)
    changes = int(args.rate * args.seconds)
    try:
        bare = measure(clients, bare_publish, changes, args.rate, args.clients, web.proc.pid)
        change = ticket_changer(ids, user)
        real = measure(
            clients, change, min(changes, len(ids)), args.rate, args.clients, web.proc.pid
        )
    finally:
        clients.stop()
    return {"bare": bare, "change": real}


def summarise(name, values, missing, server_load, expected):
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    print(
        f"{name}: {len(values)} receipts of {expected} expected ({missing} missing), "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(values):.1f} ms; "
        f"web server busy {server_load:.0%} of one core"
    )
    return p50, p95


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument(
        "--database-url",
        help="e.g. postgres://postgres@127.0.0.1:5432/bench_board "
        "(an existing, disposable database); default: a fresh SQLite file",
    )
    args = parser.parse_args()

    print("load average before the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    redis_server = setup_environment(args.database_url)
    web = None
    try:
        user = staff_user()
        add_tickets(100)
        small_ms, small_cards = board_page_ms(user)
        add_tickets(args.tickets - 100, start_index=100)
        page_ms, cards = board_page_ms(user)
        print(f"board page, 100 tickets (baseline): {small_ms:.1f} ms, {small_cards} cards")
        print(
            f"board page, {args.tickets} tickets: {page_ms:.1f} ms, {cards} cards rendered "
            f"(x{page_ms / small_ms:.2f} the baseline; x{page_ms / TARGET_PAGE_MS:.2f} the "
            f"{TARGET_PAGE_MS:.0f} ms target)"
        )
        web = Web().start()
        ids = changeable_tickets(int(args.rate * args.seconds))
        results = delivery(web, session_cookie(user), ids, user, args)
        expected = args.clients * int(args.rate * args.seconds)
        base50, base95 = summarise("bare publish (baseline)", *results["bare"], expected)
        p50, p95 = summarise("ticket change (real path)", *results["change"], expected)
        print(
            f"ticket change p95 is x{p95 / base95:.2f} the bare-publish baseline and "
            f"x{p95 / TARGET_P95_MS:.2f} the {TARGET_P95_MS:.0f} ms target "
            f"({args.clients} clients, {args.rate:g} changes/s)"
        )
        print(
            json.dumps(
                {
                    "clients": args.clients,
                    "changes_per_s": args.rate,
                    "tickets": args.tickets,
                    "delivery_p50_ms": round(p50, 1),
                    "delivery_p95_ms": round(p95, 1),
                    "delivery_missing": results["change"][1],
                    "bare_publish_p50_ms": round(base50, 1),
                    "bare_publish_p95_ms": round(base95, 1),
                    "board_page_ms": round(page_ms, 1),
                    "board_page_baseline_100_ms": round(small_ms, 1),
                    "board_page_cards": cards,
                }
            )
        )
    finally:
        if web is not None:
            web.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
