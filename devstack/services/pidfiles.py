"""Pid files: which processes an earlier run started, so the next run can stop them.

A pid file holds the pid and the process's start time (field 22 of /proc/<pid>/stat,
in clock ticks since boot). A recorded process counts as alive only while a process
with that pid *and* that start time runs, so a pid the kernel has since given to an
unrelated process is never signalled.
"""

import contextlib
import os
import signal
import time
from pathlib import Path

DEAD_STATES = {"Z", "X", "x"}


def process_stat(pid):
    """(state, start time) of a running process, or None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def write(path, pid):
    stat = process_stat(pid)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {stat[1] if stat else '?'}\n")


def read(path):
    """(pid, start time) recorded in `path`, or None when it is missing or unreadable."""
    try:
        pid, started = Path(path).read_text().split()
        return int(pid), started
    except (OSError, ValueError):
        return None


def live_pid(path):
    """The recorded process's pid while it still runs, else None."""
    recorded = read(path)
    if recorded is None:
        return None
    stat = process_stat(recorded[0])
    if stat is None or stat[0] in DEAD_STATES or stat[1] != recorded[1]:
        return None
    return recorded[0]


def _target(pid):
    """The process's whole group when it leads one (as our children do), else the process:
    a negative pid for os.kill."""
    try:
        return -pid if os.getpgid(pid) == pid else pid
    except ProcessLookupError:
        return pid


def _kill(target, signum):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(target, signum)


def stop_recorded(paths, grace=5.0, poll=0.1):
    """Stop every live process recorded in `paths` (SIGTERM, SIGKILL after `grace`, to its
    whole group when it leads one) and remove the files. Returns {file stem: pid} of the
    processes that were running."""
    found = {Path(path).stem: pid for path in paths if (pid := live_pid(path))}
    targets = [_target(pid) for pid in found.values()]
    for target in targets:
        _kill(target, signal.SIGTERM)
    _wait_gone(found.values(), grace, poll)
    for target in targets:
        _kill(target, signal.SIGKILL)
    _wait_gone(found.values(), grace, poll)
    for path in paths:
        Path(path).unlink(missing_ok=True)
    return found


def _wait_gone(pids, timeout, poll):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(poll)


def _alive(pid):
    stat = process_stat(pid)
    return stat is not None and stat[0] not in DEAD_STATES
