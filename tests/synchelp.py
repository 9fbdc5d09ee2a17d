"""Helpers for the syncer's tests: configure a pair, look at registries as a user would."""

from __future__ import annotations

import json
import signal
import os
from pathlib import Path

from supz.sync import layout
from supz.sync.manifests import read_version, scan_checksums
from supz.sync.state import read_status
from tests.conftest import SupzHost, sleep_program


def configure_sync(host: SupzHost, peers: str, **options: object) -> None:
    """Append a [sync] section; a running syncer notices the change and reloads."""
    lines = [f"peers = {peers}", "retry_min = 0.2", "retry_max = 1", "timeout = 10",
             *(f"{key} = {value}" for key, value in options.items())]
    with open(host.paths.config_file, "a", encoding="utf-8") as conf:
        conf.write("\n[sync]\n" + "\n".join(lines) + "\n")


def set_peers(host: SupzHost, peers: str) -> None:
    """Replace the peers line of the [sync] section (the syncer reloads)."""
    conf = host.paths.config_file
    lines = [f"peers = {peers}" if line.startswith("peers =") else line for line in conf.read_text().splitlines()]
    conf.write_text("\n".join(lines) + "\n")


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
