"""Maintenance mode: an operator's freeze of this host's failover (Pacemaker's maintenance-mode).

While frozen, keepalived's announcements are still recorded (`failover-wanted.json`) but no
transition is applied: no application is started or stopped, the role file stays as it was.
This is not the flapping freeze of `supz.failover.damping` (which keeps a host out of MASTER
and is an error); the two are told apart in `supz status --cluster`. The state is one small
JSON file, `var/lib/supz/state/failover-maintenance.json`; the operator's actions (freeze,
unfreeze and bringing the host to keepalived's latest state) live in `supz.failover.operator`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from supz.fsutil import atomic_write
from supz.paths import HostPaths


@dataclass(frozen=True)
class Maintenance:
    since: float
    who: str
    reason: str = ""


def read_maintenance(paths: HostPaths) -> Maintenance | None:
    """The operator's freeze, or None when this host's failover is live."""
    try:
        data = json.loads(paths.failover_maintenance.read_text(encoding="utf-8"))
        return Maintenance(float(data["since"]), str(data.get("who", "")), str(data.get("reason", "")))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def write_maintenance(paths: HostPaths, maintenance: Maintenance) -> None:
    atomic_write(paths.failover_maintenance, json.dumps(asdict(maintenance)))


def clear_maintenance(paths: HostPaths) -> bool:
    """End the freeze; True if there was one."""
    try:
        paths.failover_maintenance.unlink()
        return True
    except FileNotFoundError:
        return False


def maintenance_view(paths: HostPaths) -> dict[str, Any]:
    """What `supz status --json` shows under "failover": the freeze and keepalived's latest word."""
    frozen = read_maintenance(paths)
    try:
        said = str(json.loads(paths.failover_wanted.read_text(encoding="utf-8"))["state"])
    except (OSError, ValueError, TypeError, KeyError):
        said = ""
    return {"maintenance": None if frozen is None else asdict(frozen), "keepalived": said}


def maintenance_notice(view: dict[str, Any]) -> str:
    """One line for a host's status view that an operator froze."""
    failover = view.get("failover") or {}
    frozen = failover.get("maintenance") or {}
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(frozen.get("since", 0))))
    why = f" ({frozen['reason']})" if frozen.get("reason") else ""
    said = failover.get("keepalived") or "nothing yet"
    return (f"{view.get('host')}: FROZEN for maintenance by {frozen.get('who', '?')} since {since}{why}: role "
            f"{view.get('role')}, keepalived says {said} (`supz failover unfreeze` applies it)")
