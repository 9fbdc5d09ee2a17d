"""Helpers for the syncer's tests: configure a pair, look at registries as a user would."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from supz.sync import layout
from supz.sync.manifests import read_version, scan_checksums
from supz.sync.state import read_status
from tests.conftest import SupzHost, destroy_host, make_host, sleep_program


@contextlib.contextmanager
def master_and_backup() -> Iterator[tuple[SupzHost, SupzHost]]:
    """Two HA hosts with supervisord (and so their syncer) running: MASTER and BACKUP."""
    master = make_host("--ha")
    standby = None
    try:
        standby = make_host("--ha")
        standby.supz("role", "set", "BACKUP", check=True)
        master.supz("role", "set", "MASTER", check=True)
        yield master, standby
    finally:
        destroy_host(master)
        if standby is not None:
            destroy_host(standby)


def configure_sync(host: SupzHost, peers: str, **options: object) -> None:
    """Set keys of the [sync] section (written by init); a running syncer notices and reloads."""
    values = {"peers": peers, "retry_min": 0.2, "retry_max": 1, "timeout": 10, **options}
    lines = host.paths.config_file.read_text().splitlines()
    start = lines.index("[sync]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    kept = [ln for ln in lines[start + 1:end] if ln.split("=")[0].strip() not in values]
    section = ["[sync]", *(f"{key} = {value}" for key, value in values.items()), *kept]
    host.paths.config_file.write_text("\n".join(lines[:start] + section + lines[end:]) + "\n")


def set_peers(host: SupzHost, peers: str) -> None:
    """Replace the peers line of the [sync] section (the syncer reloads)."""
    configure_sync(host, peers)


def listing(host: SupzHost) -> dict:
    """`supz registry list --json`: what an operator sees of a registry."""
    return json.loads(host.supz("registry", "list", "--json", check=True).stdout)


def content(host: SupzHost) -> tuple[int, dict]:
    """Generation and every entry file's checksum (of the version `registry` points to now)."""
    current = layout.current_version(host.paths)
    return read_version(current).generation, scan_checksums(current)


def in_sync(master: SupzHost, standby: SupzHost) -> bool:
    try:
        return content(master) == content(standby)
    except Exception:  # noqa: BLE001 - mid-swap or not yet there: not in sync yet
        return False


def peer_status(host: SupzHost) -> dict:
    """The first peer's entry of `supz sync status --json`."""
    data = json.loads(host.supz("sync", "status", "--json").stdout)
    return data["peers"][0] if data.get("peers") else {}


def syncer_pid(host: SupzHost) -> int:
    status = read_status(host.paths)
    assert status is not None, "the syncer never wrote its status"
    return status.pid


def sync_log(host: SupzHost) -> str:
    path = host.paths.sync_log
    return path.read_text() if path.exists() else ""


def flood_events(folder: Path, count: int) -> None:
    """Queue `count` inotify events on a watched folder (temp files: never synced), then clean up."""
    for i in range(count):
        fd = os.open(folder / f".flood-{i}.tmp", os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    for i in range(count):
        os.unlink(folder / f".flood-{i}.tmp")


def pause(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


def resume(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)


def converge(master: SupzHost, standby: SupzHost, what: str) -> None:
    master.wait_for(lambda: in_sync(master, standby), timeout=30, what=what)


def exercise_changes(master: SupzHost, standby: SupzHost) -> None:
    """create / change / park / unpark / delete on the master; each shows on the standby."""
    master.add("web", sleep_program("web"))
    converge(master, standby, "a new entry on the standby")
    assert "web" in listing(standby)["active"]

    changed = master.root / "web.conf"
    changed.write_text(sleep_program("web", extra="environment = RELEASE=\"2\""))
    master.supz("registry", "add", "--replace", str(changed), check=True)
    converge(master, standby, "a changed entry on the standby")
    assert "RELEASE" in (layout.current_version(standby.paths) / "active" / "web.conf").read_text()

    master.supzcli("stop", "web", check=True)
    converge(master, standby, "a parked entry on the standby")
    assert "web" not in listing(standby)["active"] and listing(standby)["parked"] == ["web"]

    master.supzcli("start", "web", check=True)
    converge(master, standby, "an unparked entry on the standby")
    assert "web" in listing(standby)["active"] and listing(standby)["parked"] == []

    master.supzcli("--yes", "remove", "web", check=True)
    converge(master, standby, "a removed entry gone from the standby")
    assert "web" not in listing(standby)["active"] and listing(standby)["parked"] == []
    assert listing(standby)["generation"] == listing(master)["generation"]
