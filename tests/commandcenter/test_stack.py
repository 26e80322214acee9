"""`make run`'s supervisor, for real: every process up, the demo admin can log in,
and Ctrl-C stops everything it started."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from commandcenter.services.base import free_port, port_open

REPO = Path(__file__).resolve().parents[2]


def start_stack(tmp_path, port):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(VAR_DIR=str(tmp_path / "var"), DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    return subprocess.Popen(
        [sys.executable, "manage.py", "runstack", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until_ready(proc, timeout=300):
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if "[stack] ready:" in line:
            return "".join(lines)
    raise AssertionError("the stack never became ready:\n" + "".join(lines[-30:]))


def test_the_stack_serves_the_product_and_stops_everything_on_ctrl_c(tmp_path):
    port = free_port()
    proc = start_stack(tmp_path, port)
    try:
        output = read_until_ready(proc)
        password = re.search(r"demo login: admin / (\S+)", output).group(1)
        base = f"http://127.0.0.1:{port}"
        health = requests.get(f"{base}/healthz", timeout=10).json()
        assert health == {"status": "ok"}, health  # anonymous: the status alone
        session = requests.Session()
        session.get(f"{base}/accounts/login/")
        response = session.post(
            f"{base}/accounts/login/",
            data={
                "username": "admin",
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
        )
        assert response.url == f"{base}/" and "Dashboard" in response.text
        listed = session.get(f"{base}/migration/api/destinations/").json()
        listed = listed.get("results", listed) if isinstance(listed, dict) else listed
        demo_s3 = next(d["id"] for d in listed if d["name"] == "demo-s3")
        check = session.post(
            f"{base}/migration/api/destinations/{demo_s3}/check/",
            headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": base},
        )
        assert check.status_code == 200 and check.json()["ok"], check.text
        pacs_port = int(re.search(r"AE LEGACYPACS at 127\.0\.0\.1:(\d+)", output).group(1))
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, rest
    assert not port_open(port) and not port_open(pacs_port)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes left running"
