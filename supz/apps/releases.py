"""Releases of an application: DIR/releases/VERSION folders, and the `current` and `previous`
links. A switch makes a new link and renames it over the old one, so a reader (supervisord
spawning a process) sees the old release or the new one, never none."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from supz.apps.conventions import RELEASES, AppLayout, validate_version, version_problem
from supz.errors import ConfigError, StorageError, UnknownEntry
from supz.fsutil import fsync_dir, replace_symlink


@dataclass(frozen=True)
class Links:
    """The versions `current` and `previous` point at (None: no link)."""

    current: str | None
    previous: str | None


def _natural_key(version: str) -> list[tuple[int, int | str]]:
    """1.9 before 1.10: digits compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"\d+|\D+", version)]


def list_releases(layout: AppLayout) -> list[str]:
    """Release folders, oldest version first (natural order)."""
    try:
        names = os.listdir(layout.releases)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot list {layout.releases}: {exc.strerror}", thing=str(layout.releases)) from exc
    found = [n for n in names if version_problem(n) is None and (layout.releases / n).is_dir()]
    return sorted(found, key=_natural_key)


def link_version(layout: AppLayout, link: Path) -> str | None:
    """The version `link` points at; None when there is no link. A link that is not a link
    into releases/ (a real folder, a foreign target) is a ConfigError: convention C is broken."""
    if not os.path.lexists(link):
        return None
    if not link.is_symlink():
        raise ConfigError(f"{link} is not a symlink (convention C: it must link to {RELEASES}/VERSION)",
                          thing=str(link))
    target = os.readlink(link)
    absolute = Path(os.path.normpath(layout.path / target))
    if absolute.parent != layout.releases or version_problem(absolute.name) is not None:
        raise ConfigError(f"{link} points at {target}, not at {RELEASES}/VERSION (convention C)", thing=str(link))
    return absolute.name


def read_links(layout: AppLayout) -> Links:
    return Links(link_version(layout, layout.current), link_version(layout, layout.previous))


def require_release(layout: AppLayout, version: str) -> str:
    """`version`, when DIR/releases/VERSION is a folder; else UnknownEntry (nothing is changed)."""
    validate_version(version)
    if not layout.release(version).is_dir():
        known = ", ".join(list_releases(layout)) or "none"
        raise UnknownEntry(f"{layout.name}: no release {version!r} in {layout.releases} (releases: {known})",
                           thing=version)
    return version


def _relink(layout: AppLayout, link: Path, version: str | None) -> None:
    """Point `link` at releases/VERSION (relative, so the folder can move) by renaming a new link over it."""
    try:
        if version is None:
            if os.path.lexists(link):
                os.unlink(link)
            fsync_dir(layout.path)
        else:
            replace_symlink(link, f"{RELEASES}/{version}")
    except OSError as exc:
        raise StorageError(f"cannot switch {link} to {version}: {exc.strerror}", thing=str(link)) from exc


def switch(layout: AppLayout, version: str) -> Links:
    """Make `current` point at `version` and `previous` at the release it left; return the links before."""
    before = read_links(layout)
    require_release(layout, version)
    if before.current == version:
        return before
    # current first: it is what a process spawned now runs; previous only records history.
    _relink(layout, layout.current, version)
    if before.current is not None:
        _relink(layout, layout.previous, before.current)
    return before


def restore(layout: AppLayout, links: Links) -> None:
    """Put both links back as they were (after a failed deploy)."""
    _relink(layout, layout.current, links.current)
    _relink(layout, layout.previous, links.previous)
