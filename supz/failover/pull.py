"""Before going MASTER: never activate a registry older than one a reachable peer holds.

A slow peer is not a dead one: a peer that does not answer is asked again until the pull budget
(`[failover] pull_budget`, 3 s) is spent, and the decision says how often it was asked and why it
was taken as dead. The transition log records that sentence.
"""

from __future__ import annotations

import time

from supz.errors import ConfigError, PeerUnreachable, SupzError
from supz.paths import HostPaths
from supz.registry import Registry

RETRY_PAUSE = 0.3


def _budget(paths: HostPaths) -> float:
    from supz.config import read_config
    from supz.failover.settings import load_failover_settings

    try:
        return load_failover_settings(read_config(paths.config_file)).pull_budget
    except ConfigError:
        return 3.0


def pull_if_newer(paths: HostPaths, budget: float | None = None) -> str:
    """Pull the newest reachable peer's registry when it is newer than ours; say what was decided and why."""
    from supz.sync.peers import peer_generations, pull_from

    budget = _budget(paths) if budget is None else budget
    started = time.monotonic()
    local = Registry(paths, host="").generation
    attempts = 0
    while True:
        attempts += 1
        views = peer_generations(paths)
        if not views:
            return "no peer configured"
        unreachable = [v for v in views if not v.reachable]
        newer = [v for v in views if v.reachable and v.generation is not None and v.generation > local]
        spent = time.monotonic() - started
        if newer:
            best = max(newer, key=lambda v: v.generation or 0)
            try:
                result = pull_from(paths, best.peer)
            except PeerUnreachable as exc:
                if spent + RETRY_PAUSE < budget:
                    time.sleep(RETRY_PAUSE)
                    continue
                return (f"pull from {best.peer} (generation {best.generation}) failed after {attempts} attempt(s) "
                        f"in {spent:.1f}s: {exc}; activating local generation {local}")
            except SupzError as exc:
                return f"pull from {best.peer} failed: {exc}; activating local generation {local}"
            aside = f", the older copy set aside in {result.set_aside}" if result.set_aside else ""
            return (f"pulled generation {result.generation_after} from {best.peer} (was {result.generation_before}"
                    f"{aside}) after {attempts} attempt(s) in {time.monotonic() - started:.1f}s")
        if not unreachable:
            return f"local generation {local} is the newest (every peer answered, attempt {attempts})"
        if spent + RETRY_PAUSE < budget:
            time.sleep(RETRY_PAUSE)
            continue
        silent = "; ".join(f"{v.peer}: {v.error}" for v in unreachable)
        return (f"local generation {local} activated: no newer peer, and {len(unreachable)} peer(s) silent for "
                f"{attempts} attempt(s) over {spent:.1f}s (budget {budget:g}s), taken as dead ({silent})")
