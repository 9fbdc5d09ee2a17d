"""Asking peers, without the daemon: one push, a comparison, their generations, a pull.

`peer_generations` and `pull_from` are what a host about to become MASTER uses (DESIGN
invariant 4): look at every reachable peer, and when one holds a newer registry, take it first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from supz.config import load_config, read_config
from supz.errors import ConfigError, PeerUnreachable, SupzError, SyncRefused
from supz.paths import HostPaths
from supz.sync import layout, lineage
from supz.sync.landing import PUSH_FILE, Landing, PushInfo
from supz.sync.manifests import Relation, differing, relate, scan_checksums
from supz.sync.pusher import PeerLink, PushReport
from supz.sync.reconcile import merge_with_peer
from supz.sync.settings import Peer, SyncSettings, load_sync_settings, parse_peer
from supz.sync.snapshot import local_version
from supz.sync.transport import connect


@dataclass(frozen=True)
class PeerView:
    """A peer's registry as seen now: `generation` is None when it could not be reached."""

    peer: str
    reachable: bool
    generation: int | None = None
    digest: str = ""
    host: str = ""
    role: str = ""
    error: str = ""


@dataclass(frozen=True)
class PullResult:
    peer: str
    result: str  # "pulled", "merged" or "same"
    generation_before: int
    generation_after: int
    set_aside: str | None = None


@dataclass(frozen=True)
class CheckResult:
    peer: str
    verdict: str  # "in sync", "different", "unreachable"
    local_generation: int
    peer_generation: int | None = None
    differing: list[str] = field(default_factory=list)
    detail: str = ""


def _context(paths: HostPaths) -> tuple[SyncSettings, str]:
    config = read_config(paths.config_file)
    return load_sync_settings(config), load_config(config).host


def find_peer(settings: SyncSettings, spec: str) -> Peer:
    """A configured peer by its spec (or its host name); else the spec parsed as a new peer."""
    for peer in settings.peers:
        if spec in (peer.spec, peer.host):
            return peer
    return parse_peer(spec)


def peer_generations(paths: HostPaths) -> list[PeerView]:
    """Every configured peer's generation (one short connection each; unreachable ones say why)."""
    settings, host = _context(paths)
    views = []
    for peer in settings.peers:
        try:
            channel = connect(peer, settings, paths)
            try:
                state = channel.state()
            finally:
                channel.close()
        except SupzError as exc:
            views.append(PeerView(peer.spec, False, error=str(exc)))
            continue
        views.append(PeerView(peer.spec, True, state.generation, state.digest, state.host, state.role))
    return views


def pull_from(paths: HostPaths, peer: Peer | str) -> PullResult:
    """Bring the local registry up to `peer`'s: take it when it descends from the local one (or
    the local one is empty), merge it when both changed since a common state.

    A taken registry sets the local copy aside under var/lib/supz/set-aside (its path is
    returned), verified file by file against its manifest and swapped in atomically. An older
    peer registry, or one with no state in common, is refused (SyncRefused); an unreachable peer
    raises PeerUnreachable.
    """
    settings, host = _context(paths)
    target = find_peer(settings, peer) if isinstance(peer, str) else peer
    landing = Landing(paths, host)
    landing.ensure_layout()
    local = local_version(paths)
    channel = connect(target, settings, paths)
    try:
        state = channel.hello(host)
        relation, base = relate(local.state, lineage.load(paths), (state.generation, state.digest),
                                list(state.lineage or ()))
        if relation is Relation.SAME:
            return PullResult(target.spec, "same", local.generation, local.generation)
        if relation is Relation.DIVERGED:
            assert base is not None
            merged = merge_with_peer(paths, host, channel, state, target.spec, target.key, base)
            return PullResult(target.spec, "merged", merged.generation_before, merged.generation_after,
                              merged.set_aside)
        if relation is not Relation.AHEAD and local.entries:
            if relation is Relation.UNRELATED:
                raise SyncRefused("unrelated", f"this host's registry and {target.spec}'s have no state in common: "
                                               f"resolve with `supz sync resolve --take {target.spec}` (dry run first)")
            raise SyncRefused("newer", f"this host's registry (generation {local.generation}) is newer than "
                                       f"{target.spec}'s ({state.generation}): nothing to pull")
        spare = landing.prepare_spare()
        try:
            channel.fetch(state.current, spare)
            push = PushInfo(sender=state.host, full=True, lineage=tuple(state.lineage or ()))
            (spare / PUSH_FILE).write_text(json.dumps(push.as_dict()), encoding="utf-8")
            result = landing.commit(spare, allow_master=True, set_aside=True, force=not local.entries)
        except BaseException:
            landing.discard(spare)
            raise
    finally:
        channel.close()
    return PullResult(target.spec, "pulled", result.generation_before, result.generation_after, result.set_aside)


def push_once(paths: HostPaths) -> list[tuple[str, PushReport | SupzError]]:
    """One full push to every peer now (the caller checks the role): (peer, report or error)."""
    settings, host = _context(paths)
    if not settings.peers:
        raise ConfigError(f"no peers in [sync] peers of {paths.config_file}", thing=str(paths.config_file))
    results: list[tuple[str, PushReport | SupzError]] = []
    for peer in settings.peers:
        link = PeerLink(paths, settings, peer, host)
        try:
            results.append((peer.spec, link.push(full=True)))
        except SupzError as exc:
            results.append((peer.spec, exc))
        finally:
            link.disconnect()
    return results


def check(paths: HostPaths) -> list[CheckResult]:
    """Compare the local registry with every peer: generation and every entry file's checksum."""
    settings, _ = _context(paths)
    if not settings.peers:
        raise ConfigError(f"no peers in [sync] peers of {paths.config_file}", thing=str(paths.config_file))
    local = local_version(paths)
    local_files = scan_checksums(layout.current_version(paths))
    results = []
    for peer in settings.peers:
        try:
            channel = connect(peer, settings, paths)
            try:
                state, files = channel.checksums()
            finally:
                channel.close()
        except (PeerUnreachable, SyncRefused) as exc:
            results.append(CheckResult(peer.spec, "unreachable", local.generation, detail=str(exc)))
            continue
        names = differing(local_files, files)
        if state.generation == local.generation and not names:
            results.append(CheckResult(peer.spec, "in sync", local.generation, state.generation))
            continue
        if state.generation > local.generation:
            detail = (f"the peer is newer (generation {state.generation} > {local.generation}): "
                      "this host does not push to it")
        elif state.generation < local.generation:
            detail = f"the peer is behind (generation {state.generation} < {local.generation})"
        else:
            detail = f"same generation {local.generation}, different files"
        results.append(CheckResult(peer.spec, "different", local.generation, state.generation, names, detail))
    return results
