"""A consistent picture of the local registry to push: the manifest and the files it lists.

Taken under the registry lock by hard-linking, so it costs one link per file sent (not a copy)
and no transaction can interleave: the manifest always matches the files beside it. The lock is
held only for the links; rsync then reads the snapshot at leisure while the registry moves on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from supz.errors import RegistryCorrupt, StorageError, SyncRefused
from supz.fsutil import file_lock
from supz.paths import HostPaths
from supz.sync import layout, lineage
from supz.sync.landing import JOURNAL, PUSH_FILE, PushInfo
from supz.sync.manifests import (
    MANIFEST,
    STATES,
    Entries,
    VersionCache,
    VersionInfo,
    differing,
    entry_relpath,
    file_sha,
)


@dataclass(frozen=True)
class Snapshot:
    folder: Path
    info: VersionInfo
    names: tuple[str, ...]
    full: bool

    @property
    def paths(self) -> list[str]:
        """Every file this snapshot brings, relative to its folder (what a receiver waits for)."""
        return [PUSH_FILE, MANIFEST, *(entry_relpath(n, self.info.entries[n]["state"]) for n in self.names)]

    def discard(self) -> None:
        empty(self.folder)


_local = VersionCache()


def local_version(paths: HostPaths) -> VersionInfo:
    """The local registry's manifest, read without the lock (for deciding, not for sending)."""
    try:
        return _local.read(layout.current_version(paths))
    except RegistryCorrupt as exc:
        raise SyncRefused("mismatch", f"local registry: {exc}") from exc


def clear_work(paths: HostPaths) -> None:
    """Remove snapshots (and daemon answers) a stopped syncer left behind."""
    with contextlib.suppress(FileNotFoundError):
        for leftover in paths.sync_work.iterdir():
            if leftover.name.startswith(("out-", "answer-")):
                shutil.rmtree(leftover, ignore_errors=True)


def empty(folder: Path) -> None:
    """Remove what a folder holds, keeping the folder (a warm rsync has it as its source)."""
    with contextlib.suppress(FileNotFoundError):
        for child in os.scandir(folder):
            if child.is_dir(follow_symlinks=False):
                shutil.rmtree(child.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(child.path)


def take(paths: HostPaths, folder: Path, *, sender: str, known: Entries | None, lock_timeout: float = 5.0) -> Snapshot:
    """Snapshot into `folder` what differs from `known` (everything when `known` is None: a full push)."""
    try:
        folder.mkdir(mode=0o750, parents=True, exist_ok=True)  # rsync -p gives the spare this mode
        empty(folder)
        # Woken by the manifest's rename, the syncer usually finds the transaction still closing.
        with file_lock(paths.registry_lock, timeout=lock_timeout, poll=0.0002):
            current = layout.current_version(paths)
            if (current / JOURNAL).exists():
                raise SyncRefused("busy", "the local registry has an unfinished transaction (run `supz doctor`)")
            try:
                info = _local.read(current)
            except RegistryCorrupt as exc:
                raise SyncRefused("mismatch", f"local registry: {exc}") from exc
            names = tuple(info.entries) if known is None else tuple(
                n for n in differing(info.entries, known) if n in info.entries
            )
            os.link(current / MANIFEST, folder / MANIFEST)
            for state in {info.entries[n]["state"] for n in names} if known is not None else STATES:
                (folder / state).mkdir()
            src, dst = str(current), str(folder)
            for name in names:
                rel = entry_relpath(name, info.entries[name]["state"])
                try:
                    os.link(f"{src}/{rel}", f"{dst}/{rel}")
                except FileNotFoundError:
                    raise SyncRefused(
                        "mismatch", f"{name}: listed in the local manifest but missing (run `supz doctor`)", thing=name
                    ) from None
    except OSError as exc:
        empty(folder)
        raise StorageError(f"cannot snapshot the registry into {folder}: {exc.strerror}", thing=str(folder)) from exc
    except BaseException:
        empty(folder)
        raise
    snap = Snapshot(folder, info, names, known is None)
    try:
        root = str(folder)
        for name in names:
            if file_sha(f"{root}/{entry_relpath(name, info.entries[name]['state'])}") != info.entries[name]["sha256"]:
                raise SyncRefused(
                    "mismatch",
                    f"{name}: the local file does not match the manifest (edited by hand? run `supz doctor`)",
                    thing=name,
                )
        history = tuple(lineage.load(paths)) + ((info.generation, info.digest),)
        push = PushInfo(sender=sender, full=known is None, names=names, lineage=history)
        (folder / PUSH_FILE).write_text(json.dumps(push.as_dict()), encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        snap.discard()
        raise StorageError(f"cannot prepare the push in {folder}: {exc}", thing=str(folder)) from exc
    except BaseException:
        snap.discard()
        raise
    return snap
