"""The health state file (var/lib/supz/state/health.json): written by `supz health run`, read by
`supz health status`, supzcli's status, `supz status --cluster` and the vrrp check.

Readers never talk to the daemon: a missing, unreadable or stale file means UNKNOWN, never an
error, so no view breaks because health checking is not running.
"""

from __future__ import annotations

import json
import time
from typing import Any

from supz.fsutil import atomic_write
from supz.paths import HostPaths

# A state file older than this says nothing about now (the daemon writes it every second or so).
STALE_AFTER = 30.0


def write_state(paths: HostPaths, data: dict[str, Any]) -> None:
    atomic_write(paths.health_state, json.dumps(data, separators=(",", ":")) + "\n", mode=0o644)


def read_state(paths: HostPaths) -> dict[str, Any] | None:
    """The last state the daemon wrote, or None (no daemon yet, unreadable)."""
    try:
        data = json.loads(paths.health_state.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def is_fresh(state: dict[str, Any] | None, now: float | None = None) -> bool:
    if not state:
        return False
    updated = state.get("updated")
    return isinstance(updated, (int, float)) and (now or time.time()) - updated < STALE_AFTER


def health_word(state: dict[str, Any] | None, namespec: str) -> str | None:
    """HEALTHY, UNHEALTHY (n/fails) or UNKNOWN for a process (GROUP:NAME or NAME); None when the
    application has no probe (or the daemon is not acting here), so nothing is shown."""
    if not is_fresh(state) or not state or not state.get("acting"):
        return None
    group, _, process = namespec.partition(":")
    key = namespec if process else f"{group}:{group}"
    target = state.get("targets", {}).get(key)
    if target is None:
        return None
    status = str(target.get("status", "UNKNOWN"))
    if status == "UNHEALTHY":
        fails = state.get("apps", {}).get(group, {}).get("settings", {}).get("fails", "?")
        return f"UNHEALTHY ({target.get('failures', 0)}/{fails})"
    return status if status in ("HEALTHY", "UNKNOWN") else "UNKNOWN"


def unhealthy_apps(state: dict[str, Any] | None) -> list[str]:
    """Applications with at least one UNHEALTHY process (from a fresh state file)."""
    if not is_fresh(state) or not state or not state.get("acting"):
        return []
    return sorted({str(t.get("app")) for t in state.get("targets", {}).values() if t.get("status") == "UNHEALTHY"})


def failover_reason(paths: HostPaths) -> str | None:
    """Why this host should hand over: a critical application (`supz_health_exhausted = failover`)
    used its restart budget and is still unhealthy. None otherwise (or when the state is stale)."""
    state = read_state(paths)
    if not is_fresh(state) or not state or not state.get("acting"):
        return None
    failing = state.get("failover") or []
    if not failing:
        return None
    return f"critical application(s) unhealthy after their restart budget: {', '.join(map(str, failing))}"
