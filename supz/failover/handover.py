"""The switchover's lever: while `failover-handover.json` is there and not expired, this host's
vrrp check fails on purpose, so keepalived goes FAULT and the peer (BACKUP, nopreempt) takes the
VIP; once the marker is gone the check passes and keepalived brings the host back as BACKUP.
The marker carries a deadline, so a switchover that died half-way cannot keep a host out forever.
Kept tiny: `supz-check` imports it every second.
"""

from __future__ import annotations

import json
import time

from supz.fsutil import atomic_write
from supz.paths import HostPaths


def start_handover(paths: HostPaths, target: str, seconds: float) -> None:
    atomic_write(paths.failover_handover, json.dumps({"to": target, "until": time.time() + seconds}))


def end_handover(paths: HostPaths) -> None:
    try:
        paths.failover_handover.unlink()
    except FileNotFoundError:
        pass


def handing_over(paths: HostPaths, now: float | None = None) -> str | None:
    """Why the check fails on purpose now (a switchover under way), or None."""
    try:
        data = json.loads(paths.failover_handover.read_text(encoding="utf-8"))
        target, until = str(data["to"]), float(data["until"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if until <= (time.time() if now is None else now):
        return None
    return f"switchover to {target} under way: handing the VIP over"
