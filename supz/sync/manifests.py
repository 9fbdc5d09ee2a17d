"""A registry version as the syncer sees it: its manifest, its entry files, their digest, and how
two versions relate (the same, one descended from the other, diverged from a common base, or
unrelated).

The manifest is the registry's commit point, so the syncer works from it: a version is the
manifest plus exactly the entry files it lists (editor droppings and dot files never count).
This module is the one place that validates a manifest, computes its digest and compares two
versions; the registry, the receiver, the sender and the merge all ask it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any

from supz import history
from supz.errors import RegistryCorrupt, StorageError
from supz.names import is_valid_name
from supz.programfile import ENTRY_SUFFIX, sha256_text

MANIFEST = "manifest.json"
STATES = ("active", "parked")

Entries = dict[str, dict[str, str]]
State = tuple[int, str]  # (generation, digest): one state a registry held


@dataclass(frozen=True)
class VersionInfo:
    """What one registry version holds, as far as the manifest says. `changed` is when each
    entry last changed (ISO UTC), the tie-breaker of a content conflict in a merge."""

    generation: int
    entries: Entries
    host: str = ""
    time: str = ""
    changed: dict[str, str] = field(default_factory=dict)
    merge: dict[str, Any] | None = None
    history: tuple[dict[str, Any], ...] = ()  # the registry's history (supz/history.py)
    notes: dict[str, dict[str, str]] = field(default_factory=dict)  # who parked an entry, when, why

    @cached_property
    def digest(self) -> str:
        """The entries' digest; with a history, its line ids too, so two registries whose entries
        agree but whose histories differ (a park and an unpark on each side of a partition) are
        not the same state and get merged."""
        plain = entries_digest(self.entries)
        if not self.history:
            return plain
        ids = ",".join(str(line.get("id", "")) for line in self.history)
        return hashlib.sha256(f"{plain}|{ids}".encode()).hexdigest()

    @property
    def state(self) -> State:
        return (self.generation, self.digest)


def entries_digest(entries: Entries) -> str:
    """One checksum for a whole registry content: equal digests, equal registries."""
    canonical = json.dumps(
        {name: [meta.get("state", ""), meta.get("sha256", "")] for name, meta in entries.items()},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_version(folder: Path) -> VersionInfo:
    """The manifest of the version in `folder`; a missing manifest is the empty generation 0."""
    return read_manifest(Path(folder) / MANIFEST)


def read_manifest(path: Path) -> VersionInfo:
    """A manifest file, validated: every entry a valid name with a known state."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return VersionInfo(0, {})
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"cannot read {path}: {exc}", thing=str(path)) from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RegistryCorrupt(f"{path} is not a valid manifest: {exc}", thing=str(path)) from exc
    return parse_manifest(data, path)


def parse_manifest(data: Any, path: Path) -> VersionInfo:
    """A manifest's JSON, validated (every entry a valid name with a known state and a checksum),
    or RegistryCorrupt naming `path`. The registry, the receiver and the sender all read it here."""
    try:
        entries = {
            str(name): {"state": str(meta["state"]), "sha256": str(meta["sha256"])}
            for name, meta in dict(data.get("entries", {})).items()
        }
        for name, meta in entries.items():
            if not is_valid_name(name) or meta["state"] not in STATES:
                raise ValueError(f"bad entry {name!r}")
        changed = {str(n): str(t) for n, t in dict(data.get("changed") or {}).items()}
        merge = data.get("merge")
        return VersionInfo(
            generation=int(data["generation"]),
            entries=entries,
            host=str(data.get("host", "")),
            time=str(data.get("time", "")),
            changed=changed,
            merge=dict(merge) if isinstance(merge, dict) else None,
            history=history.parse(data.get("history")),
            notes=history.parse_notes(data.get("notes")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RegistryCorrupt(f"{path} is not a valid manifest: {exc}", thing=str(path)) from exc


class VersionCache:
    """read_version, remembered while manifest.json is the same file (it is always replaced by rename)."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int, int], VersionInfo]] = {}

    def read(self, folder: Path) -> VersionInfo:
        try:
            st = os.stat(Path(folder) / MANIFEST)
        except FileNotFoundError:
            return VersionInfo(0, {})
        except OSError as exc:
            raise StorageError(f"cannot read {Path(folder) / MANIFEST}: {exc.strerror}") from exc
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._cache.get(folder)
        if cached is not None and cached[0] == key:
            return cached[1]
        info = read_version(folder)
        self._cache = {folder: (key, info)}
        return info


def entry_relpath(name: str, state: str) -> str:
    return f"{state}/{name}{ENTRY_SUFFIX}"


def file_sha(path: Path | str) -> str:
    """The checksum the registry records for an entry file (its text, as the Registry reads it:
    text mode, universal newlines)."""
    with open(path, encoding="utf-8") as handle:
        return sha256_text(handle.read())


def scan_checksums(folder: Path) -> Entries:
    """Every entry file really present in `folder`, hashed: what `supz sync check` compares."""
    found: Entries = {}
    for state in STATES:
        try:
            names = sorted(os.listdir(Path(folder) / state))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot list {Path(folder) / state}: {exc.strerror}") from exc
        for filename in names:
            name = filename[: -len(ENTRY_SUFFIX)] if filename.endswith(ENTRY_SUFFIX) else ""
            if not is_valid_name(name):
                continue
            try:
                sha = file_sha(Path(folder) / state / filename)
            except (OSError, UnicodeDecodeError) as exc:
                raise StorageError(f"{name}: cannot read {Path(folder) / state / filename}: {exc}", thing=name) from exc
            # An entry in both folders counts as active, as the Registry counts it.
            if name not in found or state == "active":
                found[name] = {"state": state, "sha256": sha}
    return dict(sorted(found.items()))


def differing(a: Entries, b: Entries) -> list[str]:
    """Names whose state or content differ between two entry maps (present in one only, too)."""
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def receiving(current: VersionInfo, new: VersionInfo) -> str:
    """The receiver's rule, checked under its lock whatever the sender believes: "same", "ok"
    (a higher generation), "newer" (the receiver's is newer: refused) or "diverged" (the same
    generation with other entries: refused)."""
    if new.generation > current.generation:
        return "ok"
    if new.generation < current.generation:
        return "newer"
    return "same" if new.digest == current.digest else "diverged"


class Relation(str, Enum):
    """How a peer's registry relates to this host's."""

    SAME = "same"
    BEHIND = "behind"  # the peer holds a state this host held: it only lacks what came since
    AHEAD = "ahead"  # this host's state is in the peer's history: the peer only has more
    DIVERGED = "diverged"  # both changed since a state they shared: merge against that base
    UNRELATED = "unrelated"  # no state in common: no merge possible, `supz sync resolve`
    FRESH = "fresh"  # the peer holds nothing and never shared a state with this host: fill it


def relate(local: State, local_history: list[State], peer: State, peer_history: list[State], *,
           peer_empty: bool = False, shared: State | None = None) -> tuple[Relation, State | None]:
    """The relation of two registries and, when they diverged, their newest common state.

    A history is the states a host held when it pushed or received (its lineage); `shared` is
    the last state this host shared with that peer. A peer that went back behind it was rebuilt
    or restored: UNRELATED, never silently refilled. A peer holding nothing, with no history,
    that this host never shared a state with, is a new standby (FRESH).
    """
    if local == peer:
        return Relation.SAME, local
    if shared is not None and peer[0] < shared[0]:
        return Relation.UNRELATED, None
    if peer in local_history:
        return Relation.BEHIND, peer
    if local in peer_history:
        return Relation.AHEAD, local
    mine = set(local_history)
    common = [s for s in peer_history if s in mine]
    if common:
        return Relation.DIVERGED, max(common, key=lambda s: s[0])
    if peer_empty and not peer_history and shared is None:
        return Relation.FRESH, None
    return Relation.UNRELATED, None
