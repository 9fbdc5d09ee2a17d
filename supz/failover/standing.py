"""A host's failover standing for `supz status`: frozen or not, ready or not, its last failover."""

from __future__ import annotations

from typing import Any

from supz.config import ConfigFile, load_config
from supz.errors import SupzError
from supz.failover.maintenance import maintenance_view
from supz.failover.transitions import read_log
from supz.paths import HostPaths
from supz.role import HA_ROLE

TAIL = 65536  # bytes of the transition log read from its end


def last_failover(paths: HostPaths) -> dict[str, Any] | None:
    """The last transition that changed the role: when, from, to, how long, its result."""
    try:
        entries = read_log(paths, None, tail=TAIL)
    except SupzError:
        return None
    for entry in reversed(entries):
        if entry.get("from") != entry.get("to"):
            return {key: entry.get(key) for key in ("time", "from", "to", "seconds", "result")}
    return None


def standing(paths: HostPaths, file: ConfigFile, role: str) -> dict[str, Any]:
    """Under "failover" in `supz status --json`: the maintenance freeze, keepalived's latest
    word, the last failover and, on an HA host that is not MASTER, whether it is ready to be."""
    view = maintenance_view(paths)
    view["last"] = last_failover(paths)
    view["ready"] = None
    if role != HA_ROLE and load_config(file).ha_enabled:
        from supz.failover.readiness import local_readiness

        try:
            answer = local_readiness(paths, file)
            view["ready"] = {"ok": answer.ready, "problems": len(answer.problems),
                             "first": answer.problems[0].line() if answer.problems else ""}
        except SupzError as exc:
            view["ready"] = {"ok": False, "problems": 1, "first": f"readiness unknown: {exc}"}
    return view


def standing_line(view: dict[str, Any]) -> str:
    """One line under a host's row in `supz status`: ready or not, the last failover."""
    failover = view.get("failover") or {}
    parts = []
    ready = failover.get("ready")
    if ready is not None:
        parts.append("ready" if ready.get("ok") else f"NOT READY ({ready.get('problems')}): {ready.get('first')}")
    last = failover.get("last")
    if last:
        parts.append(f"last failover {last.get('from')} -> {last.get('to')} at {last.get('time')} "
                     f"in {float(last.get('seconds') or 0):.3f}s: {last.get('result')}")
    return "; ".join(parts)
