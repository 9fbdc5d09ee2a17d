"""Alerts about the pair itself, raised by `supz alerts deliver` between rounds: a peer that is
unreachable, holds a newer registry, has diverged (same generation, other content), or is MASTER
at the same time as this host (split brain), for longer than `peer_threshold` seconds.

Edge-triggered: one event when a condition has lasted the threshold (`peer`, with `condition`),
one when it ends (`peer`, condition `ok`, with what it was). Asked over the syncer's own channel
(`supz.sync.peers.peer_generations`), one short connection per peer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from supz.alerts.spool import emit
from supz.errors import SupzError
from supz.paths import HostPaths
from supz.role import HA_ROLE, read_role
from supz.sync.peers import PeerView, peer_generations
from supz.sync.snapshot import local_version


@dataclass
class PeerWatch:
    """What each peer looked like, since when, and what was already raised."""

    threshold: float
    seen: dict[str, tuple[str, float]] = field(default_factory=dict)  # peer -> (condition, since)
    raised: dict[str, str] = field(default_factory=dict)  # peer -> condition raised


def condition(role: str, generation: int, digest: str, view: PeerView) -> str:
    """What is wrong with this peer, as this host sees it ("" when nothing)."""
    if not view.reachable:
        return "unreachable"
    if role == HA_ROLE and view.role == HA_ROLE:
        return "split brain"
    if view.generation is not None and view.generation > generation:
        return "newer"
    if view.generation == generation and view.digest and digest and view.digest != digest:
        return "diverged"
    return ""


def look(paths: HostPaths, host: str, watch: PeerWatch, views: list[PeerView],
         now: float | None = None) -> list[dict[str, Any]]:
    """Compare every peer's view with the last ones; raise what crossed the threshold or ended."""
    now = time.monotonic() if now is None else now
    role = read_role(paths)
    try:
        mine = local_version(paths)
        generation, digest = mine.generation, mine.digest
    except SupzError:
        generation, digest = 0, ""
    events: list[dict[str, Any]] = []
    for view in views:
        found = condition(role, generation, digest, view)
        before, since = watch.seen.get(view.peer, ("", now))
        if found != before:
            since = now
        watch.seen[view.peer] = (found, since)
        fields: dict[str, Any] = {"peer": view.peer, "peer_host": view.host, "peer_role": view.role,
                                  "peer_generation": view.generation, "generation": generation,
                                  "role": role, "error": view.error}
        if found and now - since >= watch.threshold and watch.raised.get(view.peer) != found:
            watch.raised[view.peer] = found
            event = emit(paths, host, "split-brain" if found == "split brain" else "peer", condition=found,
                         seconds=round(now - since, 1), **fields)
        elif not found and view.peer in watch.raised:
            event = emit(paths, host, "peer", condition="ok", was=watch.raised.pop(view.peer), **fields)
        else:
            continue
        if event is not None:
            events.append(event)
    return events


def watch_peers(paths: HostPaths, host: str, watch: PeerWatch) -> list[dict[str, Any]]:
    """One look at every sync peer (no peers, no events)."""
    try:
        views = peer_generations(paths)
    except SupzError:
        return []
    return look(paths, host, watch, views)
