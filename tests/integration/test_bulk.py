"""Bulk paths at a small scale: activate, deactivate, park and unpark leave exactly the right programs.

Correctness only (every program RUNNING or gone, none missing, none duplicated); speed is bench/'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supz.audit import current_who
from supz.registry import Registry
from supz.role import write_role
from supz.supervisord.client import context
from tests.conftest import SUPZ_PROGRAMS, SupzHost, destroy_host, make_host, sleep_program

COUNT = 50
NAMES = [f"bulk{i:03d}" for i in range(COUNT)]


def _admit(host: SupzHost, names: list[str], text=sleep_program) -> None:  # type: ignore[no-untyped-def]
    """Admit entries in-process: the registry's own add, without a CLI start per entry."""
    registry = Registry(host.paths, host=host.root.name)
    for name in names:
        registry.add(name, text(name), who=current_who(host.root.name))


def _infos(host: SupzHost) -> list[dict]:  # type: ignore[type-arg]
    """supervisord's process list without the host-local programs every host runs."""
    with host.client() as client:
        return [i for i in client.supervisor("getAllProcessInfo") if i["group"] not in SUPZ_PROGRAMS]


def _pids(host: SupzHost) -> dict[str, int]:
    return {f"{i['group']}:{i['name']}": i["pid"] for i in _infos(host)}


def _all_running(host: SupzHost, names: list[str]) -> dict[str, int]:
    """Every name RUNNING exactly once, nothing else loaded; returns the pids."""
    infos = _infos(host)
    specs = [f"{i['group']}:{i['name']}" for i in infos]
    assert len(specs) == len(set(specs)), "a program is loaded twice"
    assert sorted(specs) == sorted(f"{n}:{n}" for n in names)
    assert {i["statename"] for i in infos} == {"RUNNING"}
    pids = [i["pid"] for i in infos]
    assert len(set(pids)) == len(pids) and 0 not in pids
    return dict(zip(specs, pids))


@pytest.fixture
def ha_host() -> Iterator[SupzHost]:
    """An HA host, BACKUP, with COUNT entries and supervisord up: nothing loaded."""
    host = make_host("--ha", up=False)
    try:
        write_role(host.paths, "BACKUP")
        _admit(host, NAMES)
        host.supz("up", check=True)
        yield host
    finally:
        destroy_host(host)


def test_activate_then_deactivate_leaves_exactly_the_registry(ha_host: SupzHost) -> None:
    assert ha_host.states() == {}
    ha_host.supz("role", "set", "MASTER", check=True)
    with ha_host.client() as client:
        answer = client.supz("activate", context("activate"))
    assert [r["name"] for r in answer["results"]] == NAMES
    assert {(r["ok"], r["status"]) for r in answer["results"]} == {(True, "started")}
    first = _all_running(ha_host, NAMES)

    with ha_host.client() as client:
        again = client.supz("activate", context("activate"))
    assert {r["status"] for r in again["results"]} == {"already running"}
    assert _all_running(ha_host, NAMES) == first, "a second activate must not restart or duplicate"

    ha_host.supz("role", "set", "BACKUP", check=True)
    with ha_host.client() as client:
        answer = client.supz("deactivate", context("deactivate"))
    assert {(r["ok"], r["status"]) for r in answer["results"]} == {(True, "stopped")}
    assert ha_host.states() == {}
    listed = ha_host.supz("registry", "list", check=True).stdout.splitlines()[1:]
    assert [line.split() for line in listed] == [[n, "ACTIVE"] for n in NAMES], "entries stay active"

    ha_host.supz("role", "set", "MASTER", check=True)
    result = ha_host.supzcli("start", "all")
    assert result.returncode == 0, result.stdout
    second = _all_running(ha_host, NAMES)
    assert not set(first.values()) & set(second.values()), "programs must have been restarted, not left behind"


def test_activate_reports_the_one_program_that_fails(ha_host: SupzHost) -> None:
    broken = "bulkbroken"
    _admit(ha_host, [broken], lambda n: f"[program:{n}]\ncommand = /bin/false\nstartsecs = 1\nstartretries = 0\n")
    ha_host.supz("role", "set", "MASTER", check=True)
    with ha_host.client() as client:
        answer = client.supz("activate", context("activate"))
    failed = [r for r in answer["results"] if not r["ok"]]
    assert [(r["name"], r["status"]) for r in failed] == [(broken, "failed")]
    states = ha_host.states()
    assert states.pop(f"{broken}:{broken}") in ("BACKOFF", "FATAL", "EXITED")
    assert states == {f"{n}:{n}": "RUNNING" for n in NAMES}


def test_park_and_unpark_one_among_many(ha_host: SupzHost) -> None:
    ha_host.supz("role", "set", "MASTER", check=True)
    with ha_host.client() as client:
        client.supz("activate", context("activate"))
    before = _all_running(ha_host, NAMES)
    name = NAMES[17]

    result = ha_host.supzcli("stop", name)
    assert result.returncode == 0 and f"{name}: stopped and parked" in result.stdout
    rest = [n for n in NAMES if n != name]
    after = _all_running(ha_host, rest)
    assert after == {k: v for k, v in before.items() if k != f"{name}:{name}"}, "others must not be touched"
    assert (ha_host.paths.parked / f"{name}.conf").exists()

    result = ha_host.supzcli("start", name)
    assert result.returncode == 0 and f"{name}: unparked and started" in result.stdout
    back = _all_running(ha_host, NAMES)
    assert {k: v for k, v in back.items() if k != f"{name}:{name}"} == after


def test_an_entry_changed_on_the_standby_runs_its_new_content(ha_host: SupzHost) -> None:
    """The standby parsed its entries at start; an entry changed since is read again at activation."""
    name = NAMES[3]
    Registry(ha_host.paths, host=ha_host.root.name).write(
        name, sleep_program(name).replace("/bin/sleep 100000", "/bin/sleep 200000"), who=current_who())
    ha_host.supz("role", "set", "MASTER", check=True)
    with ha_host.client() as client:
        client.supz("activate", context("activate"))
        pid = client.supervisor("getProcessInfo", name)["pid"]
    _all_running(ha_host, NAMES)
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"/bin/sleep", b"200000"]
