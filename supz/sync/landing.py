"""The receiving side: assemble a pushed version in a spare directory, then swap it in atomically.

A spare is a hard-linked copy of the current version, prepared before the sender needs it.
The sender rsyncs only what changed into it (or everything, for a full resync), with a small
push description (`.supz-push.json`). `commit()` checks every file the manifest names against
its checksum, removes what the manifest no longer lists, makes it durable, and then, under the
registry lock, compares generations and publishes it with one rename. The generation check is
here, on the receiver, so no sender (stale, confused or racing another) can replace a newer
registry with an older one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supz import quarantine
from supz.errors import RegistryCorrupt, StorageError, SupzError, SyncRefused
from supz.fsutil import file_lock, fsync_together, remove_path, write_quick
from supz.paths import HostPaths
from supz.programfile import ENTRY_SUFFIX
from supz.role import HA_ROLE, read_role
from supz.sync import layout, lineage
from supz.sync.manifests import (
    MANIFEST,
    STATES,
    Entries,
    State,
    VersionCache,
    VersionInfo,
    file_sha,
    read_version,
    receiving,
)

PUSH_FILE = ".supz-push.json"
BASE_SUFFIX = ".base.json"
LINEAGE_SENT = 64  # the newest states a hello carries: enough to find a common base
JOURNAL = ".journal.json"


@dataclass(frozen=True)
class PushInfo:
    """The sender's description of a push, carried inside the spare."""

    sender: str
    full: bool
    names: tuple[str, ...] = ()
    lineage: tuple[tuple[int, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"sender": self.sender, "full": self.full, "names": list(self.names),
                "lineage": [list(s) for s in self.lineage]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PushInfo:
        return cls(
            sender=str(data.get("sender", "")),
            full=bool(data["full"]),
            names=tuple(str(n) for n in data.get("names", ())),
            lineage=tuple((int(g), str(d)) for g, d in data.get("lineage", ())),
        )


@dataclass(frozen=True)
class ReceiverState:
    """What a receiver says about its registry; `spare` is where the next push may go."""

    host: str
    role: str
    generation: int
    digest: str
    version: str
    current: str
    spare: str | None = None
    entries: Entries | None = None
    lineage: tuple[State, ...] | None = None  # the states it shared (with a hello)

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "role": self.role, "generation": self.generation, "digest": self.digest,
                "version": self.version, "current": self.current, "spare": self.spare, "entries": self.entries,
                "lineage": None if self.lineage is None else [list(s) for s in self.lineage]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReceiverState:
        entries = data.get("entries")
        history = data.get("lineage")
        return cls(
            host=str(data["host"]),
            role=str(data["role"]),
            generation=int(data["generation"]),
            digest=str(data["digest"]),
            version=str(data["version"]),
            current=str(data["current"]),
            spare=None if data.get("spare") is None else str(data["spare"]),
            entries=None if entries is None else {str(k): dict(v) for k, v in dict(entries).items()},
            lineage=None if history is None else tuple((int(g), str(d)) for g, d in history),
        )


@dataclass(frozen=True)
class CommitResult:
    result: str  # "committed" or "same" (the receiver already held exactly this version)
    generation_before: int
    generation_after: int
    set_aside: str | None = None


@dataclass
class Landing:
    """The receiving side of one host (`paths`), named `host` in the states it reports."""

    paths: HostPaths
    host: str
    _versions: VersionCache = field(default_factory=VersionCache, repr=False)

    # ---- reading ---------------------------------------------------------------------------

    def _version(self, folder: Path) -> VersionInfo:
        """A version's manifest; an unreadable one counts as generation -1, so that any valid
        push repairs it (and the broken copy is set aside)."""
        try:
            return self._versions.read(folder)
        except RegistryCorrupt:
            return VersionInfo(-1, {}, host="(unreadable manifest)")

    def state(self, spare: Path | None = None, *, with_entries: bool = False) -> ReceiverState:
        current = layout.current_version(self.paths)
        info = self._version(current)
        return ReceiverState(
            host=self.host,
            role=read_role(self.paths),
            generation=info.generation,
            digest=info.digest,
            version=current.name,
            current=str(current),
            spare=None if spare is None else str(spare),
            entries=dict(info.entries) if with_entries else None,
            lineage=tuple(lineage.load(self.paths)[-LINEAGE_SENT:]) if with_entries else None,
        )

    # ---- the spare -------------------------------------------------------------------------

    def ensure_layout(self) -> None:
        if not layout.is_versioned(self.paths):
            with file_lock(self.paths.registry_lock):
                layout.ensure_versioned(self.paths)
        layout.incoming_dir(self.paths).mkdir(parents=True, exist_ok=True)

    def prepare_spare(self) -> Path:
        """A fresh hard-linked copy of the current version, where the next push will land."""
        self.ensure_layout()
        current = layout.current_version(self.paths)
        info = self._version(current)
        spare = layout.incoming_dir(self.paths) / layout.new_version_name()
        try:
            for state in STATES:
                (spare / state).mkdir(parents=True)
            os.chmod(spare, 0o750)
            src, dst = str(current), str(spare)
            for name, meta in info.entries.items():
                rel = f"{meta['state']}/{name}{ENTRY_SUFFIX}"
                # A file its own manifest lists but that is missing shows up as an incomplete delta.
                with contextlib.suppress(FileNotFoundError):
                    os.link(f"{src}/{rel}", f"{dst}/{rel}")
            base = {"version": current.name, "generation": info.generation, "digest": info.digest}
            Path(str(spare) + BASE_SUFFIX).write_text(json.dumps(base), encoding="utf-8")
        except OSError as exc:
            self.discard(spare)
            raise StorageError(f"cannot prepare {spare}: {exc.strerror}", thing=str(spare)) from exc
        layout.collect(self.paths, keep=(spare,))
        return spare

    def spare_path(self, name_or_path: str) -> Path:
        """A spare named by a (remote) sender: only a version name inside incoming/ is accepted."""
        name = Path(name_or_path).name
        spare = layout.incoming_dir(self.paths) / name
        if not name.startswith(layout.VERSION_PREFIX) or "/" in name or not spare.is_dir():
            raise SyncRefused("bad-request", f"no such spare {name_or_path!r} on {self.host}", thing=name_or_path)
        return spare

    def discard(self, spare: Path) -> None:
        shutil.rmtree(spare, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(str(spare) + BASE_SUFFIX)

    # ---- commit ----------------------------------------------------------------------------

    def commit(self, spare: Path, *, allow_master: bool = False, set_aside: bool = False,
               force: bool = False) -> CommitResult:
        """Verify the assembled spare and make it the registry, or refuse with SyncRefused.

        `set_aside` keeps the replaced version in any case (a pull); otherwise it is kept only
        when this host made it and the sender never held it (both sides changed the registry).
        `force` skips the generation rule (`supz sync resolve --take`: an operator's decision).
        """
        try:
            base = json.loads(Path(str(spare) + BASE_SUFFIX).read_text(encoding="utf-8"))
            push = PushInfo.from_dict(json.loads((spare / PUSH_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SyncRefused("bad-request", f"{spare.name}: no valid push description ({exc})") from exc
        try:
            new = read_version(spare)
        except RegistryCorrupt as exc:
            raise SyncRefused("mismatch", f"pushed manifest refused: {exc}") from exc
        current = layout.current_version(self.paths)
        if current.name != base["version"]:
            raise SyncRefused("stale-base", f"{self.host}: the registry changed while the push was in flight")
        base_entries = None if push.full else self._version(current).entries
        touched, changed_dirs = self._assemble(spare, new, base_entries, push)
        self._make_durable(spare, touched, changed_dirs)
        with file_lock(self.paths.registry_lock):
            return self._swap(spare, new, base, push, allow_master, set_aside, force)

    def _assemble(self, spare: Path, new: VersionInfo, base: Entries | None,
                  push: PushInfo) -> tuple[list[Path], set[Path]]:
        """Make the spare hold exactly the manifest's entries; return the files the push wrote and
        the folders where something was removed. A delta costs in proportion to what it carries."""
        root = str(spare)
        touched: list[Path] = []
        changed_dirs: set[Path] = set()
        sent = set(new.entries) if base is None else set(push.names)
        for name in sent:
            meta = new.entries.get(name)
            if meta is None:
                continue
            path = os.path.join(root, meta["state"], name + ENTRY_SUFFIX)
            try:
                sha = file_sha(path)
            except FileNotFoundError:
                raise SyncRefused("incomplete", f"{name}: listed in the manifest but not pushed", thing=name) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise SyncRefused("mismatch", f"{name}: unreadable pushed file: {exc}", thing=name) from exc
            if sha != meta["sha256"]:
                raise SyncRefused("mismatch", f"{name}: content does not match the pushed manifest", thing=name)
            if base is None and os.stat(path).st_nlink > 1:
                continue  # unchanged: still the current version's (already durable) file
            why = quarantine.problem(name, Path(path).read_text(encoding="utf-8"), f"{name}{ENTRY_SUFFIX} (pushed)")
            if why is not None:
                raise SyncRefused("invalid", f"{name}: {why}: the sender's entry is not a valid program file",
                                  thing=name)
            touched.append(Path(path))
        if base is not None:
            for name, meta in new.entries.items():
                if name not in sent and base.get(name) != meta:
                    raise SyncRefused("incomplete", f"{name}: changed but not pushed", thing=name)
            # Only what moved, went or came can leave a file where the manifest wants none.
            candidates = {n: None for n in set(base) - set(new.entries)} | {n: None for n in sent}
            listed = {state: [n + ENTRY_SUFFIX for n in candidates] for state in STATES}
        else:
            listed = {}
            for state in STATES:
                try:
                    listed[state] = os.listdir(os.path.join(root, state))
                except OSError as exc:
                    raise StorageError(f"cannot list {spare / state}: {exc.strerror}") from exc
        for state, filenames in listed.items():
            for filename in filenames:
                entry = filename[: -len(ENTRY_SUFFIX)] if filename.endswith(ENTRY_SUFFIX) else None
                meta = new.entries.get(entry) if entry else None
                if meta is not None and meta["state"] == state:
                    continue
                if remove_path(os.path.join(root, state, filename)):
                    changed_dirs.add(spare / state)
        for leftover in os.listdir(root):
            if leftover not in (*STATES, MANIFEST):
                remove_path(os.path.join(root, leftover))
        touched.append(spare / MANIFEST)
        return touched, changed_dirs

    def _make_durable(self, spare: Path, touched: list[Path], changed_dirs: set[Path]) -> None:
        """fsync what this push wrote (rsync does not), so a crash never publishes empty files."""
        fsync_together([*touched, *sorted(changed_dirs | {p.parent for p in touched})])

    def _swap(self, spare: Path, new: VersionInfo, base: dict[str, Any], push: PushInfo,
              allow_master: bool, set_aside: bool, force: bool = False) -> CommitResult:
        current = layout.current_version(self.paths)
        cur = self._version(current)
        if current.name != base["version"] or cur.generation != base["generation"] or cur.digest != base["digest"]:
            raise SyncRefused("stale-base", f"{self.host}: the registry changed while the push was in flight")
        role = read_role(self.paths)
        if role == HA_ROLE and not allow_master:
            raise SyncRefused("master", f"{self.host} is MASTER: it does not take a registry from {push.sender}")
        if (current / JOURNAL).exists():
            raise SyncRefused("stale-base", f"{self.host}: the registry has an unfinished transaction")
        rule = receiving(cur, new)
        if force and rule != "same":
            pass  # an operator's choice (`supz sync resolve --take`): the generation rule does not apply
        elif rule == "newer":
            raise SyncRefused(
                "newer",
                f"{self.host} holds generation {cur.generation}, newer than {push.sender}'s {new.generation}: "
                "refused, both copies kept",
            )
        elif rule == "same":
            self.discard(spare)
            with contextlib.suppress(SupzError):
                lineage.record(self.paths, cur.generation, cur.digest, manifest=current / MANIFEST,
                               peer=push.sender if push.sender != self.host else None)
            self._note_master(push)
            return CommitResult("same", cur.generation, cur.generation)
        elif rule == "diverged":
            raise SyncRefused(
                "diverged",
                f"{self.host} and {push.sender} both hold generation {cur.generation} with different entries: "
                "refused, both copies kept",
            )
        aside = None
        made_here = (cur.generation, cur.digest) not in push.lineage  # the sender never held it
        if (set_aside or made_here or cur.generation < 0) and (cur.entries or cur.generation != 0):
            aside = self._set_aside(current, cur)
        published = self.paths.registry_versions / spare.name
        try:
            os.rename(spare, published)
            fsync_together([self.paths.registry_versions, spare.parent])
        except OSError as exc:
            raise StorageError(f"cannot publish {spare.name}: {exc.strerror}", thing=str(spare)) from exc
        with contextlib.suppress(OSError):
            os.unlink(str(spare) + BASE_SUFFIX)
        layout.publish(self.paths, spare.name)
        with contextlib.suppress(SupzError):
            lineage.record(self.paths, new.generation, new.digest, manifest=published / MANIFEST,
                           peer=push.sender if push.sender != self.host else None)
        self._note_master(push)
        if aside is not None and push.sender != self.host:
            with contextlib.suppress(SupzError):
                _audit_set_aside(self.paths, self.host, push.sender, cur.generation, new.generation, aside)
        if new.merge is not None and push.sender != self.host:
            from supz.sync.reconcile import received_merge

            with contextlib.suppress(SupzError, OSError):
                received_merge(self.paths, self.host, cur, current, new)
        return CommitResult("committed", cur.generation, new.generation, aside)

    def _note_master(self, push: PushInfo) -> None:
        """Only a MASTER pushes: remember who, so a refused change on this host can name it."""
        with contextlib.suppress(OSError, SupzError):
            write_quick(self.paths.last_master, json.dumps({"host": push.sender, "time": time.time()}))

    def _set_aside(self, version: Path, info: VersionInfo) -> str:
        """Keep the version being replaced, whole (hard links: it is no longer written to)."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        dest = self.paths.set_aside / f"registry-g{info.generation}-{self.host}-{stamp}-{version.name[-6:]}"
        try:
            self.paths.set_aside.mkdir(parents=True, exist_ok=True)
            shutil.copytree(version, dest, copy_function=os.link, symlinks=True)
        except (OSError, shutil.Error) as exc:
            raise StorageError(f"cannot set aside {version} in {dest}: {exc}", thing=str(version)) from exc
        return str(dest)


def _audit_set_aside(paths: HostPaths, host: str, sender: str, before: int, after: int, where: str) -> None:
    from supz.audit import AuditLog, AuditRecord, current_who

    AuditLog(paths.audit_log).append(AuditRecord(
        "sync set-aside", [sender], "ok", current_who(host), before, after,
        detail=f"{sender}'s push replaced a registry it never held; the replaced one is kept in {where}"))

