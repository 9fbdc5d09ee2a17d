"""The Sup registry: one program file per application, active or parked, and a manifest.

Every change is a journaled transaction under one lock: stage new content, write the intent
(the journal), move files, write the manifest with the next generation, drop the journal.
A crash at any point leaves a journal that `recover()` rolls forward, so readers see the old
state or the new one, and the manifest always ends up matching the files beside it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from supz import backups, history, quarantine
from supz.audit import Who, now_iso
from supz.config import BackupSettings
from supz.errors import EntryExists, RegistryCorrupt, StorageError, SupzError, UnknownEntry
from supz.fsutil import atomic_rename, atomic_write, file_lock, fsync_together, unlink_durable
from supz.names import is_valid_name, validate_name
from supz.paths import HostPaths
from supz.programfile import ENTRY_SUFFIX, sha256_text
from supz.sync.manifests import parse_manifest

JOURNAL = ".journal.json"
STAGING = ".staging"
MANIFEST_FORMAT = 1


def _unlink(path: Path) -> bool:
    """Remove a file if it is there (the caller makes its folder durable); True when removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


class EntryState(str, Enum):
    ACTIVE = "active"
    PARKED = "parked"


@dataclass(frozen=True)
class Entry:
    name: str
    state: EntryState
    path: Path


@dataclass(frozen=True)
class Manifest:
    generation: int = 0
    host: str = ""
    user: str = ""
    time: str = ""
    op: str = ""
    names: tuple[str, ...] = ()
    entries: dict[str, dict[str, str]] = field(default_factory=dict)
    changed: dict[str, str] = field(default_factory=dict)  # name -> when it last changed (a merge's tie-break)
    history: tuple[dict[str, Any], ...] = ()  # one line per change, the newest last (supz/history.py)
    notes: dict[str, dict[str, str]] = field(default_factory=dict)  # parked entries: who, when, why

    def as_dict(self) -> dict[str, object]:
        return {
            "changed": self.changed,
            "history": list(self.history),
            "notes": self.notes,
            "format": MANIFEST_FORMAT,
            "generation": self.generation,
            "host": self.host,
            "user": self.user,
            "time": self.time,
            "op": self.op,
            "names": list(self.names),
            "entries": self.entries,
        }


@dataclass(frozen=True)
class Change:
    """The result of one registry transaction."""

    op: str
    names: tuple[str, ...]
    generation_before: int
    generation_after: int
    # (where the file was put, why) for each invalid file moved aside by recovery.
    quarantined: tuple[tuple[str, str], ...] = ()


class Registry:
    """The registry of one host. Safe to use from supervisord and from the CLIs at once."""

    def __init__(self, paths: HostPaths, *, host: str, lock_timeout: float = 5.0,
                 backups: BackupSettings | None = None) -> None:
        self.paths = paths
        self.host = host
        self.lock_timeout = lock_timeout
        self.backups = backups  # archive the registry before each change (None: never)

    # ---- reading -------------------------------------------------------------------------

    def _dir(self, state: EntryState) -> Path:
        return self.paths.active if state is EntryState.ACTIVE else self.paths.parked

    def entry_path(self, name: str, state: EntryState) -> Path:
        return self._dir(state) / f"{name}{ENTRY_SUFFIX}"

    def _scan(self, state: EntryState) -> Iterator[str]:
        try:
            names = os.listdir(self._dir(state))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot list {self._dir(state)}: {exc.strerror}") from exc
        for filename in names:
            if filename.endswith(ENTRY_SUFFIX):
                name = filename[: -len(ENTRY_SUFFIX)]
                # Editor droppings and temp files are not entries.
                if is_valid_name(name):
                    yield name

    def entries(self) -> dict[str, Entry]:
        """Every entry on disk, by name. An entry in both folders (a torn write) counts as active."""
        found: dict[str, Entry] = {}
        for state in (EntryState.PARKED, EntryState.ACTIVE):
            for name in self._scan(state):
                found[name] = Entry(name, state, self.entry_path(name, state))
        return dict(sorted(found.items()))

    def active_names(self) -> list[str]:
        return sorted(self._scan(EntryState.ACTIVE))

    def parked_names(self) -> list[str]:
        return sorted(self._scan(EntryState.PARKED))

    def get(self, name: str) -> Entry:
        validate_name(name)
        for state in (EntryState.ACTIVE, EntryState.PARKED):
            path = self.entry_path(name, state)
            if path.exists():
                return Entry(name, state, path)
        raise UnknownEntry(f"{name}: no such application in the registry", thing=name)

    def read_text(self, name: str) -> str:
        entry = self.get(name)
        try:
            return entry.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError(f"{name}: cannot read {entry.path}: {exc}", thing=name) from exc

    def manifest(self) -> Manifest:
        try:
            raw = self.paths.manifest.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Manifest()
        except OSError as exc:
            raise StorageError(f"cannot read {self.paths.manifest}: {exc.strerror}") from exc
        try:
            data = json.loads(raw)
            info = parse_manifest(data, self.paths.manifest)  # the one validation (supz/sync/manifests.py)
            return Manifest(
                generation=info.generation,
                host=info.host,
                user=str(data.get("user", "")),
                time=info.time,
                op=str(data.get("op", "")),
                names=tuple(data.get("names", ())),
                entries=info.entries,
                changed=info.changed,
                history=info.history,
                notes=info.notes,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryCorrupt(f"{self.paths.manifest} is not a valid manifest: {exc}") from exc

    @property
    def generation(self) -> int:
        return self.manifest().generation

    # ---- transactions --------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with file_lock(self.paths.registry_lock, timeout=self.lock_timeout):
            self._roll_forward()
            yield

    def add(self, name: str, text: str, *, who: Who, replace: bool = False, op: str = "add",
            note: history.Note | None = None) -> Change:
        """Make `text` the active entry `name`. An existing active entry needs `replace`;
        a parked one is always replaced (starting an application brings it back)."""
        validate_name(name)
        with self.locked():
            existing = self._find(name)
            if existing is EntryState.ACTIVE and not replace:
                raise EntryExists(f"{name}: already an active entry (use replace)", thing=name)
            return self._commit(op, who, stage={name: text}, moves={name: EntryState.ACTIVE}, note=note)

    def add_many(self, texts: dict[str, str], *, who: Who, op: str = "add", replace: bool = False,
                 note: history.Note | None = None) -> Change:
        """Make every `texts` entry active in one transaction (one generation). An existing active
        entry needs `replace`; a parked one is replaced (as `add`)."""
        names = [validate_name(n) for n in texts]
        with self.locked():
            for name in names:
                if self._find(name) is EntryState.ACTIVE and not replace:
                    raise EntryExists(f"{name}: already an active entry (use replace)", thing=name)
            return self._commit(op, who, stage=dict(texts), moves={n: EntryState.ACTIVE for n in names}, note=note)

    def replace_all(self, wanted: dict[str, tuple[EntryState, str]], *, who: Who, op: str,
                    note: history.Note | None = None, notes: dict[str, dict[str, str]] | None = None) -> Change | None:
        """Make the registry hold exactly `wanted` (name -> (state, text)) in one transaction, an
        import or a restore: only what differs moves, entries not wanted are removed, `notes` are
        the parked ones' notes. None when the registry already holds exactly that."""
        for name in wanted:
            validate_name(name)
        with self.locked():
            before = self.manifest()
            stage: dict[str, str] = {}
            moves: dict[str, EntryState] = {}
            for name, (state, text) in wanted.items():
                now = before.entries.get(name)
                sha = sha256_text(text)
                if now == {"state": state.value, "sha256": sha}:
                    continue
                if now is None or now["sha256"] != sha:
                    stage[name] = text
                moves[name] = state
            removes = sorted(set(before.entries) - set(wanted))
            if not moves and not removes:
                return None
            return self._commit(op, who, stage=stage, moves=moves, removes=removes, note=note,
                                notes={n: v for n, v in (notes or {}).items() if n in moves})

    def write(self, name: str, text: str, *, who: Who, op: str = "edit", note: history.Note | None = None) -> Change:
        """Replace the content of an existing entry, keeping it active or parked."""
        validate_name(name)
        with self.locked():
            state = self._find(name)
            if state is None:
                raise UnknownEntry(f"{name}: no such application in the registry", thing=name)
            return self._commit(op, who, stage={name: text}, moves={name: state}, note=note)

    def park(self, names: Iterable[str], *, who: Who, note: history.Note | None = None) -> Change:
        return self._move(list(names), EntryState.PARKED, "park", who, note)

    def unpark(self, names: Iterable[str], *, who: Who, note: history.Note | None = None) -> Change:
        return self._move(list(names), EntryState.ACTIVE, "unpark", who, note)

    def remove(self, names: Iterable[str], *, who: Who, keep_in: Path | None = None,
               note: history.Note | None = None) -> Change:
        """Delete entries; their last content is kept in `keep_in` (never lost) when given."""
        names = [validate_name(n) for n in names]
        with self.locked():
            for name in names:
                if self._find(name) is None:
                    raise UnknownEntry(f"{name}: no such application in the registry", thing=name)
            if keep_in is not None:
                keep_in.mkdir(parents=True, exist_ok=True)
                stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
                for name in names:
                    atomic_write(keep_in / f"{name}.{stamp}{ENTRY_SUFFIX}", self.read_text(name))
            return self._commit("remove", who, removes=names, note=note)

    def _move(self, names: list[str], target: EntryState, op: str, who: Who, note: history.Note | None) -> Change:
        names = [validate_name(n) for n in names]
        with self.locked():
            for name in names:
                if self._find(name) is None:
                    raise UnknownEntry(f"{name}: no such application in the registry", thing=name)
            moves = {name: target for name in names}
            return self._commit(op, who, moves=moves, note=note)

    def _find(self, name: str) -> EntryState | None:
        for state in (EntryState.ACTIVE, EntryState.PARKED):
            if self.entry_path(name, state).exists():
                return state
        return None

    def _commit(
        self,
        op: str,
        who: Who,
        *,
        stage: dict[str, str] | None = None,
        moves: dict[str, EntryState] | None = None,
        removes: Iterable[str] = (),
        note: history.Note | None = None,
        notes: dict[str, dict[str, str]] | None = None,
    ) -> Change:
        """One transaction; `note` says which command asked and why (the history line), `notes`
        are given park notes (an import's) instead of this change's."""
        stage = stage or {}
        moves = moves or {}
        removes = list(removes)
        before = self.manifest()
        staging = self.paths.registry / STAGING
        journal_path = self.paths.registry / JOURNAL
        staged: list[Path] = []
        if self.backups is not None:
            # A backup that cannot be written never stops the change; the next change tries again.
            with contextlib.suppress(SupzError, OSError):
                backups.before_change(self.paths, self.paths.registry, self.host, before.generation, self.backups)
        try:
            if stage:
                staging.mkdir(exist_ok=True)
            # Staged files are private until the journal names them: written plainly, then made
            # durable together (one round of fsyncs, or one syncfs for a bulk add) before it.
            for name, text in stage.items():
                path = staging / f"{name}{ENTRY_SUFFIX}"
                staged.append(path)
                try:
                    path.write_text(text, encoding="utf-8")
                    os.chmod(path, 0o644)
                except OSError as exc:
                    raise StorageError(f"cannot write {path}: {exc.strerror}", thing=str(path)) from exc
            if staged:
                fsync_together([*staged, staging])
            when = now_iso()
            line = history.make_line(op=op, who=who, host=self.host, names=list(moves) + removes,
                                     generation_before=before.generation, note=note, time=when)
            journal = {
                "op": op,
                "who": who.as_dict(),
                "time": when,
                "generation_before": before.generation,
                "moves": {name: state.value for name, state in moves.items()},
                "removes": removes,
                "history": line,
            }
            if notes is not None:
                journal["notes"] = notes
            atomic_write(journal_path, json.dumps(journal))
        except StorageError:
            for path in staged:
                with contextlib.suppress(StorageError):
                    unlink_durable(path)
            raise
        # From here on the journal makes the transaction happen, now or at the next recovery.
        after = self._apply(journal, before)
        return Change(op, tuple(list(moves) + removes), before.generation, after.generation)

    def _apply(self, journal: dict[str, Any], before: Manifest) -> Manifest:
        staging = self.paths.registry / STAGING
        changed: list[str] = []
        touched: set[Path] = set()  # folders whose renames must be durable before the manifest
        try:
            for name, state_value in journal["moves"].items():
                target = EntryState(state_value)
                other = EntryState.PARKED if target is EntryState.ACTIVE else EntryState.ACTIVE
                dst = self.entry_path(name, target)
                staged = staging / f"{name}{ENTRY_SUFFIX}"
                if staged.exists():
                    os.replace(staged, dst)
                    touched.update((dst.parent, staging))
                    if _unlink(self.entry_path(name, other)):
                        touched.add(self._dir(other))
                elif self.entry_path(name, other).exists():
                    os.replace(self.entry_path(name, other), dst)
                    touched.update((dst.parent, self._dir(other)))
                changed.append(name)
            for name in journal["removes"]:
                for state in EntryState:
                    if _unlink(self.entry_path(name, state)):
                        touched.add(self._dir(state))
                changed.append(name)
        except OSError as exc:
            raise StorageError(f"cannot apply the registry transaction: {exc.strerror}", thing=exc.filename) from exc
        if touched:
            fsync_together(sorted(touched))
        entries = dict(before.entries)
        times = dict(before.changed)
        notes = dict(before.notes)
        when = journal.get("time") or now_iso()
        line = journal.get("history") if isinstance(journal.get("history"), dict) else None
        for name in changed:
            found = self._find(name)
            times.pop(name, None)
            if found is None:
                entries.pop(name, None)
                notes.pop(name, None)
            else:
                times[name] = when
                text = self.entry_path(name, found).read_text(encoding="utf-8")
                was = entries.get(name, {}).get("state")
                entries[name] = {"state": found.value, "sha256": sha256_text(text)}
                given = journal.get("notes")
                if found is EntryState.ACTIVE:
                    notes.pop(name, None)
                elif isinstance(given, dict) and isinstance(given.get(name), dict):
                    notes[name] = {str(k): str(v) for k, v in given[name].items()}
                elif was != found.value and line is not None:
                    notes[name] = history.park_note(line)
        who = Who.from_dict(journal.get("who"))
        manifest = Manifest(
            generation=int(journal["generation_before"]) + 1,
            host=who.host or self.host,
            user=who.real_user,
            time=journal.get("time") or now_iso(),
            op=str(journal["op"]),
            names=tuple(changed),
            entries=dict(sorted(entries.items())),
            changed=dict(sorted(times.items())),
            history=history.append(before.history, [line] if line is not None else []),
            notes=dict(sorted(notes.items())),
        )
        current = self.manifest()
        if current.generation <= int(journal["generation_before"]):
            atomic_write(self.paths.manifest, json.dumps(manifest.as_dict(), indent=1, sort_keys=True))
        else:
            manifest = current
        unlink_durable(self.paths.registry / JOURNAL)
        return manifest

    def _roll_forward(self) -> bool:
        """Finish a transaction a crash interrupted; drop staged files no journal claims."""
        journal_path = self.paths.registry / JOURNAL
        rolled = False
        if journal_path.exists():
            try:
                journal = json.loads(journal_path.read_text(encoding="utf-8"))
                journal["moves"], journal["removes"], journal["generation_before"]
            except (ValueError, KeyError, TypeError):
                # A journal torn before its rename cannot exist (atomic_write); treat as garbage.
                unlink_durable(journal_path)
            else:
                self._apply(journal, self.manifest())
                rolled = True
        staging = self.paths.registry / STAGING
        if staging.is_dir():
            for leftover in staging.iterdir():
                unlink_durable(leftover)
        return rolled

    def recover(self, *, who: Who) -> Change | None:
        """Complete any interrupted transaction and make the manifest match the files.

        Run by the extension at every start of supervisord and by `supz doctor`.
        Returns the reconciling change, or None when all was consistent.
        """
        with file_lock(self.paths.registry_lock, timeout=self.lock_timeout):
            before = self.manifest()
            rolled = self._roll_forward()
            after_roll = self.manifest()
            # Files both active and parked (a hand copy): the active one wins, the parked is set aside.
            for name in set(self._scan(EntryState.ACTIVE)) & set(self._scan(EntryState.PARKED)):
                aside = self.paths.set_aside
                aside.mkdir(parents=True, exist_ok=True)
                atomic_rename(self.entry_path(name, EntryState.PARKED), aside / f"{name}.parked{ENTRY_SUFFIX}")
            quarantined, held = self._quarantine_invalid(after_roll.entries)
            actual = self._checksums()
            # An entry the manifest knows, edited by hand into an invalid file, is not adopted: the
            # manifest keeps vouching for the valid content (still running), the edit is reported.
            actual.update({name: after_roll.entries[name] for name in held})
            if actual == after_roll.entries:
                if rolled or quarantined:
                    return Change("recover", after_roll.names, before.generation, after_roll.generation,
                                  quarantined=quarantined)
                return None
            differing = sorted(
                set(actual) ^ set(after_roll.entries)
                | {n for n in actual if n in after_roll.entries and actual[n] != after_roll.entries[n]}
            )
            when = now_iso()
            line = history.make_line(op="reconcile", who=who, host=self.host, names=differing,
                                     generation_before=after_roll.generation, time=when,
                                     note=history.Note("recover", tuple(differing),
                                                       detail="the registry's files were changed by hand: adopted"))
            manifest = Manifest(
                generation=after_roll.generation + 1,
                host=who.host or self.host,
                user=who.real_user,
                time=when,
                op="reconcile",
                names=tuple(differing),
                entries=actual,
                changed={n: t for n, t in after_roll.changed.items() if n in actual},
                history=history.append(after_roll.history, [line]),
                notes={n: v for n, v in after_roll.notes.items() if actual.get(n, {}).get("state") == "parked"},
            )
            atomic_write(self.paths.manifest, json.dumps(manifest.as_dict(), indent=1, sort_keys=True))
            return Change("reconcile", tuple(differing), before.generation, manifest.generation,
                          quarantined=quarantined)

    def _quarantine_invalid(self, known: dict[str, dict[str, str]]) -> tuple[tuple[tuple[str, str], ...], set[str]]:
        """Invalid files the manifest does not vouch for: moved aside, or held (quarantine.sweep)."""
        return quarantine.sweep(self.paths, [self._dir(EntryState.ACTIVE), self._dir(EntryState.PARKED)], known)

    def _checksums(self) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        for name, entry in self.entries().items():
            try:
                text = entry.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise StorageError(f"{name}: cannot read {entry.path}: {exc}", thing=name) from exc
            result[name] = {"state": entry.state.value, "sha256": sha256_text(text)}
        return result
