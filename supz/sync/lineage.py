"""The states (generation, digest) this host's registry held when it shared them with a peer.

A state is recorded when this host pushed it or received it, with a hard link to its manifest
(immutable: manifests are replaced by rename, never rewritten). Two registries that both moved
on since a state they shared are merged against that state (`supz.sync.merge`); a receiver
about to replace a version it made itself asks whether the sender ever held that version, and
sets its copy aside when not. `shared` remembers, per peer, the last state shared with it: a
peer that shared one before and now holds nothing was rebuilt, and is not silently refilled.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supz.errors import SupzError
from supz.fsutil import write_quick
from supz.paths import HostPaths
from supz.sync.manifests import State, VersionInfo, read_manifest

MAX_STATES = 256
MAX_BASES = 64
PRUNE_SLACK = 16


def _read(paths: HostPaths) -> dict[str, Any]:
    try:
        data = json.loads(paths.sync_lineage.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def load(paths: HostPaths) -> list[State]:
    try:
        return [(int(g), str(d)) for g, d in _read(paths).get("states", [])][-MAX_STATES:]
    except (ValueError, TypeError):
        return []


def shared_with(paths: HostPaths, peer: str) -> State | None:
    """The last state this host and `peer` both held (None: never shared one)."""
    try:
        g, d = _read(paths)["shared"][peer]
        return (int(g), str(d))
    except (KeyError, ValueError, TypeError):
        return None


def _base_path(paths: HostPaths, state: State) -> Path:
    return paths.sync_bases / f"g{state[0]}-{state[1][:24]}.json"


def record(paths: HostPaths, generation: int, digest: str, *, manifest: Path | None = None,
           peer: str | None = None, also: Sequence[State] = ()) -> None:
    """Remember one state (and `also`, states merged into it); a lost write only costs a needless
    set-aside or a refused merge later, so no fsync."""
    data = _read(paths)
    states = load(paths)
    for state in [*also, (generation, digest)]:
        if not states or states[-1] != state:
            states = [s for s in states if s != state] + [state]
    shared = dict(data.get("shared") or {})
    if peer is not None:
        shared[peer] = [generation, digest]
    before = (data.get("states"), data.get("shared"))
    after = ([list(s) for s in states[-MAX_STATES:]], shared)
    with contextlib.suppress(OSError):
        paths.sync_lineage.parent.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        _keep_manifest(paths, (generation, digest), manifest)
    if before != after:
        data.update(states=after[0], shared=after[1])
        write_quick(paths.sync_lineage, json.dumps(data))


def _keep_manifest(paths: HostPaths, state: State, manifest: Path) -> None:
    """Hard-link the manifest under its state's name (unique: no temp file needed); past
    MAX_BASES + PRUNE_SLACK kept, drop the oldest generations (amortized: not on every push)."""
    try:
        os.link(manifest, _base_path(paths, state))
    except FileExistsError:
        return
    except FileNotFoundError:
        try:
            paths.sync_bases.mkdir(parents=True, exist_ok=True)
            os.link(manifest, _base_path(paths, state))
        except OSError:
            return
    except OSError:
        return
    with contextlib.suppress(OSError):
        names = [n for n in os.listdir(paths.sync_bases) if n.startswith("g") and n.endswith(".json")]
        if len(names) > MAX_BASES + PRUNE_SLACK:
            names.sort(key=_generation_of)
            for old in names[:-MAX_BASES]:
                os.unlink(paths.sync_bases / old)


def _generation_of(name: str) -> int:
    try:
        return int(name[1:].split("-", 1)[0])
    except ValueError:
        return -1


def base(paths: HostPaths, state: State) -> VersionInfo | None:
    """The manifest of a shared state, when this host still keeps it."""
    path = _base_path(paths, state)
    try:
        info = read_manifest(path)
    except SupzError:
        return None
    if not path.exists() or info.state != state:
        return None
    return info


def overrule(paths: HostPaths, peer: str, state: State) -> None:
    """`supz sync resolve --keep-local`: push over `peer` while it holds `state` (it sets it aside)."""
    data = _read(paths)
    data["overrule"] = {**dict(data.get("overrule") or {}), peer: list(state)}
    write_quick(paths.sync_lineage, json.dumps(data))


def overruled(paths: HostPaths, peer: str) -> State | None:
    try:
        g, d = _read(paths)["overrule"][peer]
        return (int(g), str(d))
    except (KeyError, ValueError, TypeError):
        return None
