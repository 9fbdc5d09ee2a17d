"""Automatic registry backups: an archive (`supz.archive`) of the registry before each change,
kept under var/lib/supz/backups with a retention by count and age ([backups] in supz.conf).

The registry takes one inside its transaction, under its lock, before anything moves
(`before_change`), so every change can be undone: `supz registry restore ID` brings back the
registry as it was, as a new generation that the syncer carries to the standby. A backup that
cannot be written never stops the change (the next one tries again).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from supz import archive
from supz.config import BackupSettings
from supz.errors import BadArchive, StorageError
from supz.paths import HostPaths

_NAME = re.compile(r"^(\d{8}T\d{6}\d{6}Z)-g(\d+)" + re.escape(archive.SUFFIX) + "$")


@dataclass(frozen=True)
class Backup:
    id: str
    path: Path
    generation: int
    created: str  # ISO UTC
    size: int

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "generation": self.generation, "created": self.created, "size": self.size,
                "path": str(self.path)}


def listing(paths: HostPaths) -> list[Backup]:
    """The backups, oldest first."""
    try:
        names = os.listdir(paths.backups)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot list {paths.backups}: {exc.strerror}", thing=str(paths.backups)) from exc
    found = []
    for name in names:
        match = _NAME.match(name)
        if not match:
            continue
        stamp = _dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=_dt.timezone.utc)
        path = paths.backups / name
        with contextlib.suppress(OSError):
            found.append(Backup(name[: -len(archive.SUFFIX)], path, int(match.group(2)),
                                stamp.isoformat(timespec="seconds"), path.stat().st_size))
    return sorted(found, key=lambda b: b.id)


def find(paths: HostPaths, ident: str) -> Backup:
    """A backup by its id (or a unique prefix of it); BadArchive when none or several match."""
    ident = ident.strip()
    if ident.endswith(archive.SUFFIX):
        ident = ident[: -len(archive.SUFFIX)]
    matches = [b for b in listing(paths) if b.id == ident] or [b for b in listing(paths) if b.id.startswith(ident)]
    if len(matches) != 1:
        what = "no backup" if not matches else f"{len(matches)} backups"
        raise BadArchive(f"{ident}: {what} with that id in {paths.backups} (`supz registry backups` lists them)",
                         thing=ident)
    return matches[0]


def before_change(paths: HostPaths, folder: Path, host: str, generation: int, settings: BackupSettings,
                  now: float | None = None) -> Path | None:
    """Archive the registry version in `folder` (generation `generation`) unless backups are off,
    the newest one holds this generation already, or is younger than `every`; then apply the
    retention. Returns the new archive's path, or None."""
    if not settings.enabled or generation <= 0:
        return None
    now = time.time() if now is None else now
    existing = listing(paths)
    if existing:
        newest = existing[-1]
        if newest.generation == generation:
            return None
        with contextlib.suppress(OSError):
            if settings.every > 0 and now - newest.path.stat().st_mtime < settings.every:
                return None
    stamp = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = paths.backups / f"{stamp}-g{generation}{archive.SUFFIX}"
    paths.backups.mkdir(parents=True, exist_ok=True, mode=0o750)
    archive.write(path, archive.snapshot(folder, host))
    prune(paths, settings, now=now)
    return path


def prune(paths: HostPaths, settings: BackupSettings, now: float | None = None) -> list[Backup]:
    """Delete backups past the newest `keep` or older than `max_age` (the newest always stays)."""
    now = time.time() if now is None else now
    found = listing(paths)
    doomed = found[: max(0, len(found) - settings.keep)]
    if settings.max_age > 0:
        for backup in found[:-1]:
            with contextlib.suppress(OSError):
                if now - backup.path.stat().st_mtime > settings.max_age and backup not in doomed:
                    doomed.append(backup)
    for backup in doomed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(backup.path)
    return doomed
