"""The alert spool: events on disk, in order, until every target has taken them.

Each event is one file `events/SEQ.json` (SEQ grows forever, `last-seq` remembers it) with an
`id` (a UUID a receiver de-duplicates by: delivery is at least once), the host, the time and the
kind. Each target has a cursor (`cursor.NAME`, the last SEQ it took): delivery walks a target's
events in SEQ order and stops at the first failure, so events arrive in order. An event every
target took is removed. Past `spool_max` events the oldest are dropped; the count rides on the
next event raised (`dropped`). `emit` never fails its caller: a failover must not stop because an
alert could not be written.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from supz.alerts.settings import AlertSettings, load_alert_settings
from supz.audit import now_iso
from supz.config import read_config
from supz.errors import SupzError
from supz.fsutil import atomic_write, file_lock
from supz.paths import HostPaths


def _events(paths: HostPaths) -> Path:
    return paths.alerts_spool / "events"


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text(encoding="ascii").strip() or 0)
    except (OSError, ValueError):
        return 0


def spooled(paths: HostPaths) -> list[int]:
    """The SEQs waiting, oldest first."""
    try:
        names = os.listdir(_events(paths))
    except FileNotFoundError:
        return []
    return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())


def read_event(paths: HostPaths, seq: int) -> dict[str, Any] | None:
    try:
        return dict(json.loads((_events(paths) / f"{seq:012d}.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def cursor(paths: HostPaths, target: str) -> int:
    return _read_int(paths.alerts_spool / f"cursor.{target}")


def set_cursor(paths: HostPaths, target: str, seq: int) -> None:
    atomic_write(paths.alerts_spool / f"cursor.{target}", f"{seq}\n")


def spool(paths: HostPaths, settings: AlertSettings, host: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Write one event to the spool (dropping the oldest past `spool_max`); return it."""
    _events(paths).mkdir(parents=True, exist_ok=True)
    with file_lock(paths.locks / "alerts.lock", timeout=10, what="alert spool"):
        seq = _read_int(paths.alerts_spool / "last-seq") + 1
        waiting = spooled(paths)
        dropped = _read_int(paths.alerts_spool / "dropped")
        while len(waiting) >= settings.spool_max:
            (_events(paths) / f"{waiting.pop(0):012d}.json").unlink(missing_ok=True)
            dropped += 1
        event: dict[str, Any] = {"id": str(uuid.uuid4()), "seq": seq, "time": now_iso(), "epoch": round(time.time(), 3),
                                 "host": host, "kind": kind, **fields}
        if dropped:
            event["dropped"] = dropped  # events lost before this one: the spool was full
        atomic_write(_events(paths) / f"{seq:012d}.json", json.dumps(event, sort_keys=True))
        atomic_write(paths.alerts_spool / "last-seq", f"{seq}\n")
        atomic_write(paths.alerts_spool / "dropped", "0\n")
    return event


def emit(paths: HostPaths, host: str, kind: str, **fields: Any) -> dict[str, Any] | None:
    """Raise an alert event if [alerts] has targets; never fails (returns None then)."""
    try:
        settings = load_alert_settings(read_config(paths.config_file))
        if not settings.targets:
            return None
        return spool(paths, settings, host, kind, fields)
    except (OSError, SupzError):
        return None


def collect(paths: HostPaths, settings: AlertSettings) -> int:
    """Remove the events every target took; return how many."""
    if not settings.targets:
        return 0
    done = min(cursor(paths, t.name) for t in settings.targets)
    removed = 0
    for seq in spooled(paths):
        if seq > done:
            break
        (_events(paths) / f"{seq:012d}.json").unlink(missing_ok=True)
        removed += 1
    return removed
