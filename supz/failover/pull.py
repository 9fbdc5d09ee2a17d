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
    """Pull the newest reachable peer's registry when it is newer than ours; say what was decided and why.

    With several peers (a Pacemaker cluster) a newer registry on one peer does not end the wait
    for a silent one, which may hold a newer one still: every peer is asked until each has answered
    once or the budget is spent, then the newest answer is pulled (the next newest if that one
    fails). With one peer this is the pair's rule: pull as soon as it answers newer.
    """
    from supz.sync.peers import PeerView, peer_generations, pull_from

    budget = _budget(paths) if budget is None else budget
    started = time.monotonic()
    local = Registry(paths, host="").generation
    attempts = 0
    answered: dict[str, PeerView] = {}
    while True:
        attempts += 1
        views = peer_generations(paths)
        if not views:
            return "no peer configured"
        answered.update((v.peer, v) for v in views if v.reachable)
        unreachable = [v for v in views if not v.reachable and v.peer not in answered]
        newer = sorted((v for v in answered.values() if v.generation is not None and v.generation > local),
                       key=lambda v: v.generation or 0, reverse=True)
        spent = time.monotonic() - started
        if unreachable and spent + RETRY_PAUSE < budget:
            time.sleep(RETRY_PAUSE)
            continue
        if newer:
            failures = []
            lost = False
            for best in newer:
                try:
                    result = pull_from(paths, best.peer)
                except PeerUnreachable as exc:
                    failures.append(f"pull from {best.peer} (generation {best.generation}) failed: {exc}")
                    lost = True
                    continue
                except SupzError as exc:
                    failures.append(f"pull from {best.peer} failed: {exc}")
                    continue
                aside = f", the older copy set aside in {result.set_aside}" if result.set_aside else ""
                return (f"pulled generation {result.generation_after} from {best.peer} (was {result.generation_before}"
                        f"{aside}) after {attempts} attempt(s) in {time.monotonic() - started:.1f}s")
            if lost and spent + RETRY_PAUSE < budget:
                time.sleep(RETRY_PAUSE)  # a peer that stopped answering is asked again within the budget
                answered.clear()
                continue
            return f"{'; '.join(failures)} after {attempts} attempt(s) in {spent:.1f}s; activating local generation {local}"
        if not unreachable:
            return f"local generation {local} is the newest (every peer answered, attempt {attempts})"
        silent = "; ".join(f"{v.peer}: {v.error}" for v in unreachable)
        return (f"local generation {local} activated: no newer peer, and {len(unreachable)} peer(s) silent for "
                f"{attempts} attempt(s) over {spent:.1f}s (budget {budget:g}s), taken as dead ({silent})")
