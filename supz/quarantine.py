"""Invalid program files found in the registry's folders, moved aside with the reason.

A file dropped or edited by hand in the registry's folders is an entry only when supervisor's
own parser and the naming rules accept it. Otherwise it goes to var/lib/supz/quarantine/ (the
file as it was, and a `.why` beside it) instead of being adopted, loaded or pushed: nothing is
deleted, and supervisord never reads it.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from supz.errors import InvalidProgramFile, StorageError
from supz.fsutil import atomic_rename, atomic_write
from supz.paths import HostPaths
from supz.programfile import parse_program_text

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
