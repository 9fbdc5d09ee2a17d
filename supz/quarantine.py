"""Invalid program files found in the registry's folders, moved aside with the reason.

A file dropped or edited by hand in the registry's folders is an entry only when supervisor's
own parser and the naming rules accept it. Otherwise it goes to var/lib/supz/quarantine/ (the
file as it was, and a `.why` beside it) instead of being adopted, loaded or pushed: nothing is
deleted, and supervisord never reads it.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

from supz.errors import InvalidProgramFile, StorageError
from supz.fsutil import atomic_rename, atomic_write
from supz.names import is_valid_name
from supz.paths import HostPaths
from supz.programfile import ENTRY_SUFFIX, parse_program_text, sha256_text

WHY_SUFFIX = ".why"


@dataclass(frozen=True)
class Quarantined:
    path: Path
    why: str


def problem(name: str, text: str | None, label: str) -> str | None:
    """Why the file `label` (program `name`, content `text`, None if not UTF-8) cannot be an
    entry; None when it can."""
    if text is None:
        return f"{label}: not UTF-8 text"
    try:
        parse_program_text(text, name, label=label)
    except InvalidProgramFile as exc:
        return exc.message
    return None


def move_aside(paths: HostPaths, path: Path, why: str) -> Path:
    """Move `path` into the quarantine folder under a stamped name, with `why` beside it."""
    folder = paths.quarantine
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    target = folder / f"{path.parent.name}.{path.name}.{stamp}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(Path(f"{target}{WHY_SUFFIX}"), why + "\n", mode=0o640)
        atomic_rename(path, target)
    except OSError as exc:
        raise StorageError(f"cannot quarantine {path}: {exc.strerror}", thing=str(path)) from exc
    return target


def listing(paths: HostPaths) -> list[Quarantined]:
    """What sits in quarantine, oldest first."""
    try:
        files = sorted(p for p in paths.quarantine.iterdir() if not p.name.endswith(WHY_SUFFIX))
    except FileNotFoundError:
        return []
    found = []
    for path in files:
        try:
            why = Path(f"{path}{WHY_SUFFIX}").read_text(encoding="utf-8").strip()
        except OSError:
            why = "(no reason recorded)"
        found.append(Quarantined(path, why))
    return found


def sweep(paths: HostPaths, folders: list[Path],
          known: dict[str, dict[str, str]]) -> tuple[tuple[tuple[str, str], ...], set[str]]:
    """Check every file whose content the manifest does not vouch for with supervisor's parser
    and the naming rules. An invalid file of a name the manifest does not know (dropped by
    hand) is moved aside: never adopted, loaded or pushed. Returns (moved, held): held are
    known entries whose invalid edit stays in place, not adopted."""
    moved = []
    held: set[str] = set()
    for folder in folders:
        try:
            filenames = sorted(os.listdir(folder))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot list {folder}: {exc.strerror}") from exc
        for filename in filenames:
            if not filename.endswith(ENTRY_SUFFIX) or filename.startswith("."):
                continue
            path = folder / filename
            name = filename[: -len(ENTRY_SUFFIX)]
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                text = None
            except OSError as exc:
                raise StorageError(f"{name}: cannot read {path}: {exc.strerror}", thing=name) from exc
            if text is not None and known.get(name, {}).get("sha256") == sha256_text(text):
                continue
            why = problem(name, text, str(path))
            if why is None:
                continue
            if name in known and is_valid_name(name):
                held.add(name)
            else:
                moved.append((str(move_aside(paths, path, why)), why))
    return tuple(moved), held
