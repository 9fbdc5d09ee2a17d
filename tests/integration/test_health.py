"""Application health end to end: a real supervisord running real HTTP applications on loopback,
the health daemon `supz init` puts in host.d, restarts seen in the audit trail and supervisord.
"""

from __future__ import annotations

import json
import random
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SupzHost, destroy_host, make_host

APP = REPO / "tests" / "healthapp.py"
FAST = {"interval": "0.3", "timeout": "0.5", "fails": "2", "rises": "1", "start_period": "0.5"}


def free_prefix(count: int) -> str:
    """A port prefix P with ports P01 .. P<count> free on loopback (P in 200..599)."""
    for _ in range(200):
        prefix = random.randint(200, 599)
        socks = []
        try:
            for num in range(1, count + 1):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", int(f"{prefix}{num:02d}")))
            return str(prefix)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free ports")


def app_entry(name: str, flags: Path, *, numprocs: int = 1, probe: str = "url",
              health: dict[str, str] | None = None) -> str:
    """A program file running healthapp.py on port P01, P02... (one per instance), with
    supz_health_* keys whose probe names the same port through %(process_num)02d."""
    port = free_prefix(numprocs) + "%(process_num)02d"
    lines = [f"[program:{name}]", f"command = {sys.executable} {APP} {port} {flags}",
             "startsecs = 0", "stopwaitsecs = 2", "numprocs_start = 1", f"numprocs = {numprocs}"]
    if numprocs > 1:
        lines.append("process_name = %(program_name)s_%(process_num)02d")
    settings = dict(FAST, **(health or {}))
    if probe == "url":
        settings.setdefault("url", f"http://127.0.0.1:{port}/health")
    elif probe == "tcp":
        settings.setdefault("tcp", f"127.0.0.1:{port}")
    lines += [f"supz_health_{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def health_host() -> Iterator[SupzHost]:
    h = make_host()
    try:
        yield h
    finally:
        destroy_host(h)


def state(host: SupzHost) -> dict[str, Any]:
    result = host.supz("health", "status", "--json")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def target(host: SupzHost, namespec: str) -> dict[str, Any]:
    return state(host).get("targets", {}).get(namespec, {})


def restarts(host: SupzHost, process: str | None = None) -> list[dict[str, Any]]:
    return [line for line in host.audit_lines() if line["command"] == "health restart"
            and (process is None or line["args"][0] == process)]


def wait_status(host: SupzHost, namespec: str, status: str, timeout: float = 30) -> None:
    host.wait_for(lambda: target(host, namespec).get("status") == status, timeout=timeout,
                  what=f"{namespec} {status}: {target(host, namespec)}")


def test_500_unhealthy_after_fails_restarted_once_then_healthy(health_host: SupzHost, tmp_path: Path) -> None:
    host = health_host
    text = app_entry("web", tmp_path)
    host.add("web", text)
    wait_status(host, "web:web", "HEALTHY")
    pid = host.pid_of("web:web")
    assert "HEALTHY" in host.supzcli("status", "web").stdout
    (tmp_path / str(pid)).write_text("500")
    host.wait_for(lambda: restarts(host, "web"), timeout=30, what="a health restart of web")
    wait_status(host, "web:web", "HEALTHY")
    line = restarts(host, "web")[0]
    assert line["result"] == "ok"
    assert line["args"][1].startswith("2 failures, HTTP 500 in ")
    assert host.pid_of("web:web") != pid
    assert len(restarts(host)) == 1
    shown = host.supz("health", "status")
    assert shown.returncode == 0, shown.stderr
    assert "web:web" in shown.stdout and "HEALTHY" in shown.stdout and "restarts 1/3" in shown.stdout
