"""Damping: the failover layer must never make an outage worse.

- Hold-down: a host that just lost MASTER by its own failure (FAULT: its check failed, its
  supervisord died, the watchdog found keepalived silent) fails its check for `hold_down`
  seconds, so keepalived keeps it out of MASTER instead of bouncing back.
- Flapping: `flap_count` transitions to or from MASTER within `flap_window` seconds freeze the
  host's failover: while frozen, a host that is not MASTER fails its check (it will not take
  the VIP), a MASTER stays one. `supz status --cluster` reports it as an error until
  `supz failover thaw`.

The state lives in one small JSON file (`var/lib/supz/state/failover-damping.json`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from supz.fsutil import atomic_write
from supz.paths import HostPaths
from supz.role import HA_ROLE


@dataclass(frozen=True)
class Damping:
    hold_until: float = 0.0
    hold_reason: str = ""
    frozen_since: float = 0.0
    frozen_reason: str = ""

    @property
    def frozen(self) -> bool:
        return self.frozen_since > 0

    def holding(self, now: float | None = None) -> bool:
        return self.hold_until > (time.time() if now is None else now)


def read_damping(paths: HostPaths) -> Damping:
    try:
        data = json.loads(paths.failover_damping.read_text(encoding="utf-8"))
        return Damping(float(data.get("hold_until", 0)), str(data.get("hold_reason", "")),
                       float(data.get("frozen_since", 0)), str(data.get("frozen_reason", "")))
    except (OSError, ValueError, TypeError, AttributeError):
        return Damping()


def _write(paths: HostPaths, damping: Damping) -> None:
    atomic_write(paths.failover_damping, json.dumps(asdict(damping)))


def recent_transitions(paths: HostPaths, window: float, now: float) -> int:
    """Transitions to or from MASTER in the failover log within the last `window` seconds."""
    count = 0
    try:
        lines = paths.failover_log.read_text(encoding="utf-8").splitlines()[-200:]
    except OSError:
        return 0
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        at = entry.get("epoch")
        if not isinstance(at, (int, float)) or now - at > window:
            continue
        if entry.get("from") != entry.get("to") and HA_ROLE in (entry.get("from"), entry.get("to")):
            count += 1
    return count


def after_transition(paths: HostPaths, previous: str, to: str, hold_down: float, flap_count: int,
                     flap_window: float, now: float | None = None) -> Damping:
    """Update the damping state once a transition is logged; return it."""
    now = time.time() if now is None else now
    damping = read_damping(paths)
    changed = False
    if previous == HA_ROLE and to == "FAULT" and hold_down > 0:
        damping = Damping(now + hold_down, f"lost MASTER by its own failure at {time.strftime('%H:%M:%S')}",
                          damping.frozen_since, damping.frozen_reason)
        changed = True
    if not damping.frozen and flap_count > 0:
        seen = recent_transitions(paths, flap_window, now)
        if seen >= flap_count:
            damping = Damping(damping.hold_until, damping.hold_reason, now,
                              f"{seen} transitions in {flap_window:g}s: failover frozen "
                              "(fix the cause, then `supz failover thaw`)")
            changed = True
    if changed:
        _write(paths, damping)
    return damping


def thaw(paths: HostPaths) -> Damping:
    """End a freeze and a hold-down (an operator fixed the cause)."""
    _write(paths, Damping())
    return Damping()


def end_hold_down(paths: HostPaths) -> None:
    """End a hold-down but keep a flapping freeze (a switchover's FAULT was no failure)."""
    damping = read_damping(paths)
    if damping.hold_until:
        _write(paths, Damping(0.0, "", damping.frozen_since, damping.frozen_reason))


def refusal(paths: HostPaths, role: str, now: float | None = None) -> str | None:
    """Why this host must not be (or become) MASTER now, or None."""
    damping = read_damping(paths)
    if damping.frozen and role != HA_ROLE:
        return damping.frozen_reason
    if damping.holding(now) and role != HA_ROLE:
        left = damping.hold_until - (time.time() if now is None else now)
        return f"hold-down for {left:.0f}s more: {damping.hold_reason}"
    return None
