"""Before going MASTER: never activate a registry older than one a reachable peer holds."""

from __future__ import annotations

from supz.errors import SupzError
from supz.paths import HostPaths
from supz.registry import Registry


def pull_if_newer(paths: HostPaths) -> str:
    """Pull the newest reachable peer's registry when it is newer than ours; say what happened."""
    from supz.sync.peers import peer_generations, pull_from

    local = Registry(paths, host="").generation
    views = peer_generations(paths)
    if not views:
        return "no peer configured"
    unreachable = [v.peer for v in views if not v.reachable]
    newer = [v for v in views if v.reachable and v.generation is not None and v.generation > local]
    note = f" (unreachable: {', '.join(unreachable)})" if unreachable else ""
    if not newer:
        return f"local generation {local} is the newest{note}"
    best = max(newer, key=lambda v: v.generation or 0)
    try:
        result = pull_from(paths, best.peer)
    except SupzError as exc:
        return f"pull from {best.peer} failed: {exc}{note}"
    aside = f", the older copy set aside in {result.set_aside}" if result.set_aside else ""
    return f"pulled generation {result.generation_after} from {best.peer} (was {result.generation_before}{aside}){note}"
