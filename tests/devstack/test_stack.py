"""`make run`'s supervisor, for real: every process up, the demo admin can log in, a
second run on the same var/ reaches ready with the data of the first, and whatever
stops the supervisor (Ctrl-C, Ctrl-C twice, SIGHUP, SIGKILL) leaves no process behind.

The runs share one var/ (the module's `home`): only the first migrates and seeds, so
the others start faster. "Nothing left" is checked by the processes the pid files in
var/run/ name and by every port the stack printed."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devstack.services import pidfiles
from devstack.services.base import LOOPBACK, free_port, port_open
from devstack.stack import (
    DEMO_CALLING_AET,
    DEMO_PACS_AET,
    DEMO_STUDIES,
    Stack,
    StackError,
)
from dicomnet import scu
from dicomnet.association import Peer
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN = 15  # the bound for "no process of the stack alive"
DEAD_STATES = ("Z", "X")


class RunningStack:
    """`manage.py runstack` in `home` (var/ and an SQLite database), read line by line."""

    def __init__(self, home):
        self.home, self.var, self.port = home, home / "var", free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(VAR_DIR=str(self.var), DATABASE_URL=f"sqlite:///{home}/db.sqlite3")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runstack", "--port", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines, self.seen = [], {}

    @property
    def output(self):
        return "".join(self.lines)

    @property
    def base(self):
        return f"http://{LOOPBACK}:{self.port}"

    def read_until(self, marker, timeout=300):
        while marker not in self.output:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"the stack exited before {marker!r}:\n{self.output[-3000:]}")
            self.lines.append(line)
        return self.output

    def ready(self):
        self.read_until("[stack] ready:")
        self.pids = self.remember()
        self.ports = [self.port, *self._printed_ports()]
        assert set(self.pids) >= {"stack", "redis", "seaweedfs", "worker", "beat", "web", "hl7"}
        assert all(map(alive, self.pids.values())), self.pids
        return self

    def remember(self):
        """The pid files' processes now; every pid ever seen is checked by `leftovers`."""
        pids = recorded_pids(self.var)
        self.seen.update({pid: name for name, pid in pids.items()})
        return pids

    def _printed_ports(self):
        redis = re.search(r"embedded Redis on redis://127\.0\.0\.1:(\d+)", self.output)
        pacs = re.search(r"AE LEGACYPACS at 127\.0\.0\.1:(\d+)", self.output)
        s3 = re.search(r"S3: http://127\.0\.0\.1:(\d+)", self.output)
        hl7 = re.search(r"HL7 MLLP listener \(priors first\): 127\.0\.0\.1:(\d+)", self.output)
        return [int(found.group(1)) for found in (redis, pacs, s3, hl7)]

    def pacs_port(self):
        return self.ports[2]

    def signal(self, signum):
        os.kill(self.proc.pid, signum)

    def finish(self):
        """The supervisor's exit code and the rest of its output."""
        rest = self.proc.communicate(timeout=60)[0]
        self.lines.append(rest)
        return self.proc.returncode

    def leftovers(self):
        """What still runs of this stack: processes the pid files named (while it ran and
        now), open ports, and processes naming var/ on their command line."""
        self.remember()
        running = {name: pid for pid, name in self.seen.items() if alive(pid)}
        ports = [port for port in self.ports if port_open(port)]
        named = subprocess.run(["pgrep", "-f", str(self.var)], capture_output=True, text=True)
        return running, ports, named.stdout.split()

    def nothing_left(self):
        return wait_for(
            lambda: not any(self.leftovers()),
            timeout=GONE_WITHIN,
            message="every process and port of the stack to be gone",
        )


def recorded_pids(var):
    return {path.stem: pidfiles.read(path)[0] for path in (var / "run").glob("*.pid")}


def alive(pid):
    stat = pidfiles.process_stat(pid)
    return stat is not None and stat[0] not in DEAD_STATES


def log_in(stack, password):
    session = requests.Session()
    session.get(f"{stack.base}/accounts/login/")
    response = session.post(
        f"{stack.base}/accounts/login/",
        data={
            "username": "admin",
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
    )
    assert response.url == f"{stack.base}/" and "Dashboard" in response.text
    return session


def check_demo_s3(stack, session):
    listed = session.get(f"{stack.base}/migration/api/destinations/").json()
    listed = listed.get("results", listed) if isinstance(listed, dict) else listed
    demo_s3 = next(d["id"] for d in listed if d["name"] == "demo-s3")
    detail_url = f"{stack.base}/migration/api/destinations/{demo_s3}/"
    before = session.get(detail_url).json()["last_check_at"]
    check = session.post(
        f"{detail_url}check/",
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": stack.base},
    )
    assert check.status_code == 202, check.text  # the stack's worker checks it
    wait_for(
        lambda: session.get(detail_url).json()["last_check_at"] not in (None, before),
        message="the demo destination's check",
    )
    detail = session.get(detail_url).json()
    assert detail["last_check_ok"] is True, detail


def check_hl7_listener(stack):
    """The stack's MLLP listener answers a scheduling message with AA, and its worker
    looks the patient up (issue 18); waited for, so no task is in flight at the stop."""
    import sqlite3

    from tests.sync import support as hl7

    message = hl7.siu("STACK-1", "STACK-TEST-PATIENT")
    ack = wait_for(lambda: _try_send(hl7, stack.ports[4], message), timeout=60,
                   message="the HL7 AA")  # fmt: skip
    assert ack["MSA"][1:3] == ["AA", "STACK-1"], ack

    def processed():
        with sqlite3.connect(stack.home / "db.sqlite3", timeout=20) as db:
            row = db.execute("SELECT state FROM sync_appointment WHERE control_id = 'STACK-1'")
            return (row.fetchone() or ("",))[0] in ("no_priors", "queued")

    wait_for(processed, timeout=120, message="the worker to process the appointment")


def _try_send(hl7, port, message):
    try:
        return hl7.send(port, message)
    except OSError:
        return None


def demo_password(stack):
    return re.search(r"demo login: admin / (\S+)", stack.output).group(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("stack")


@pytest.fixture
def used_home(home):
    """`home` after at least one complete run (the first test's, or one made here)."""
    if not (home / "var" / "stack.json").exists():
        stack = RunningStack(home).ready()
        stack.signal(signal.SIGINT)
        assert stack.finish() == 0, stack.output
    return home


def test_the_stack_serves_the_product_and_stops_everything_on_ctrl_c(home):
    stack = RunningStack(home)
    try:
        stack.ready()
        health = requests.get(f"{stack.base}/healthz", timeout=10).json()
        assert health == {"status": "ok"}, health  # anonymous: the status alone
        check_demo_s3(stack, log_in(stack, demo_password(stack)))
        check_hl7_listener(stack)
    finally:
        stack.signal(signal.SIGINT)
    assert stack.nothing_left()
    assert stack.finish() == 0, stack.output
    assert not list((stack.var / "run").glob("*.pid")), "a clean stop removes its pid files"


def test_a_second_run_reaches_ready_with_the_data_of_the_first_and_two_ctrl_c_leave_nothing(
    used_home,
):
    password = json.loads((used_home / "var" / "demo-credentials.json").read_text())["password"]
    stack = RunningStack(used_home)
    try:
        stack.ready()
        assert demo_password(stack) == password
        assert "seeding the demo PACS" not in stack.output
        assert "created demo users" not in stack.output
        uids = scu.find_study_uids(
            Peer(LOOPBACK, stack.pacs_port(), DEMO_PACS_AET, DEMO_CALLING_AET)
        )
        assert len(uids) == DEMO_STUDIES
        check_demo_s3(stack, log_in(stack, password))
    finally:
        stack.signal(signal.SIGINT)
        stack.read_until("stopping…")
        stack.signal(signal.SIGINT)
    assert stack.nothing_left()
    assert stack.finish() == 0, stack.output
    assert "a second signal skipped the grace" in stack.output
    assert not list((stack.var / "run").glob("*.pid")), "the second Ctrl-C did not abort the stop"


def test_a_crashed_worker_is_reported_with_its_log_and_restarted(used_home):
    stack = RunningStack(used_home)
    try:
        stack.ready()
        os.kill(stack.pids["worker"], signal.SIGKILL)
        stack.read_until("restarted worker")
        log = stack.var / "log" / "worker.log"
        assert f"worker exited with code -9; the last lines of {log}:\n    " in stack.output
        restarted = int(re.search(r"restarted worker \(pid (\d+)\)", stack.output).group(1))
        assert stack.remember()["worker"] == restarted != stack.pids["worker"]
        wait_for(
            lambda: requests.get(f"{stack.base}/healthz", timeout=10).json() == {"status": "ok"},
            message="the restarted worker to answer /healthz",
        )
    finally:
        stack.signal(signal.SIGHUP)
    assert stack.nothing_left()
    assert stack.finish() == 0, stack.output


def test_a_killed_supervisor_leaves_nothing_and_the_next_start_stops_what_a_crash_left(
    used_home,
):
    leftover = subprocess.Popen(["sleep", "600"], start_new_session=True)
    pidfiles.write(used_home / "var" / "run" / "beat.pid", leftover.pid)
    stack = RunningStack(used_home)
    try:
        stack.ready()
        assert "stopped what an earlier run left running: beat" in stack.output
        assert leftover.poll() is not None
    finally:
        leftover.kill()
        stack.signal(signal.SIGKILL)
    assert stack.nothing_left()
    assert stack.finish() == -signal.SIGKILL


def test_a_worker_crashing_twice_ends_the_stack_with_the_last_lines_of_its_log(tmp_path):
    stack = Stack(REPO, tmp_path / "var", env=dict(os.environ))
    (stack.var / "log").mkdir(parents=True)
    crash = ["-c", "print('loading tasks'); print('lost the broker'); raise SystemExit(3)"]
    stack.spawn("worker", crash)
    try:
        first = stack.children[0].proc
        wait_for(lambda: first.poll() is not None, message="the first crash")
        stack.check_children()
        assert stack.children[0].proc is not first, "restarted once"
        wait_for(lambda: stack.children[0].proc.poll() is not None, message="the second crash")
        with pytest.raises(StackError) as raised:
            stack.check_children()
    finally:
        stack.stop()
    assert "worker exited with code 3" in str(raised.value)
    assert "    loading tasks\n    lost the broker" in str(raised.value)


def test_a_crashed_web_server_ends_the_stack_at_once(tmp_path):
    stack = Stack(REPO, tmp_path / "var", env=dict(os.environ))
    (stack.var / "log").mkdir(parents=True)
    stack.spawn("web", ["-c", "raise SystemExit('address already in use')"])
    try:
        wait_for(lambda: stack.children[0].proc.poll() is not None, message="the crash")
        with pytest.raises(StackError, match="web exited with code 1") as raised:
            stack.check_children()
    finally:
        stack.stop()
    assert "address already in use" in str(raised.value)


def test_a_pid_file_of_a_reused_pid_is_not_signalled(tmp_path):
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        pid_file = tmp_path / "worker.pid"
        pid_file.write_text(f"{stranger.pid} 1\n")  # another start time: another process
        assert pidfiles.stop_recorded([pid_file]) == {}
        assert stranger.poll() is None and not pid_file.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_recorded_process_group_is_stopped(tmp_path):
    leftover = subprocess.Popen(["sh", "-c", "sleep 600 & wait"], start_new_session=True)
    try:
        pidfiles.write(tmp_path / "beat.pid", leftover.pid)
        assert pidfiles.stop_recorded([tmp_path / "beat.pid"]) == {"beat": leftover.pid}
        assert leftover.wait(timeout=GONE_WITHIN) is not None
        wait_for(
            lambda: subprocess.run(["pgrep", "-g", str(leftover.pid)]).returncode != 0,
            timeout=GONE_WITHIN,
            message="the leftover's background sleep to be gone too",
        )
    finally:
        leftover.kill()
