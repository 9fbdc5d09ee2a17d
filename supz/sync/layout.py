"""The versioned registry: `var/lib/supz/registry` is a symlink to one version directory.

A push lands in a fresh directory beside the current one and becomes the registry in one
rename(2) of a new symlink over the old, so a reader that resolves `registry` once sees either
the whole old version or the whole new one, never a mix. Published versions are not modified
by the syncer (only by this host's own Registry transactions, in place, when it is MASTER), so
old ones stay readable until they are collected a while later.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from supz.errors import StorageError
from supz.fsutil import exchange, fsync_dir, replace_symlink
from supz.paths import HostPaths

VERSION_PREFIX = "v-"
INCOMING = "incoming"
HOOK_ANSWERS = "hook"
# Versions no longer current are kept this long, so a slow reader can finish with them.
VERSION_GRACE_SECONDS = 60.0
# Spares (assembly directories) abandoned by a crashed sender are removed after this.
STALE_SPARE_SECONDS = 3600.0


def new_version_name() -> str:
    """Names sort by creation time; the random tail keeps two hosts' names apart."""
    return f"{VERSION_PREFIX}{time.time_ns():x}-{secrets.token_hex(3)}"


def incoming_dir(paths: HostPaths) -> Path:
    return paths.registry_versions / INCOMING


def hook_dir(paths: HostPaths) -> Path:
    return paths.registry_versions / HOOK_ANSWERS


def _link_text(paths: HostPaths, version: str) -> str:
    # Relative, so a whole root can be moved or bind-mounted elsewhere.
    return os.path.join(os.path.relpath(paths.registry_versions, paths.registry.parent), version)


def current_version(paths: HostPaths) -> Path:
    """The real directory `registry` points to now (the registry itself when it is a plain dir)."""
    try:
        # Path.resolve(strict=True), not os.path.realpath(strict=True): that is Python 3.10+.
        return paths.registry.resolve(strict=True)
    except OSError as exc:
        raise StorageError(f"cannot resolve {paths.registry}: {exc.strerror}", thing=str(paths.registry)) from exc
    except RuntimeError as exc:  # a symlink loop, before Python 3.13
        raise StorageError(f"cannot resolve {paths.registry}: {exc}", thing=str(paths.registry)) from exc


def is_versioned(paths: HostPaths) -> bool:
    return paths.registry.is_symlink()


def ensure_versioned(paths: HostPaths) -> Path:
    """Make `registry` a symlink to a version directory; return that directory.

    A fresh host gets an empty version; an existing plain directory is converted in place with
    one atomic exchange (readers see the same files before and after). Call it holding the
    registry lock when the registry may be in use.
    """
    registry = paths.registry
    if registry.is_symlink():
        return current_version(paths)
    versions = paths.registry_versions
    try:
        versions.mkdir(parents=True, exist_ok=True)
        incoming_dir(paths).mkdir(exist_ok=True)
        name = new_version_name()
        target = versions / name
        if not registry.exists():
            (target / "active").mkdir(parents=True)
            (target / "parked").mkdir()
            os.chmod(target, 0o750)
            publish(paths, name)
            return target
        placeholder = versions / name
        os.symlink(_link_text(paths, name), placeholder)
        if not exchange(registry, placeholder):
            os.unlink(placeholder)
            os.rename(registry, target)
            publish(paths, name)
        fsync_dir(versions)
        fsync_dir(paths.lib)
    except OSError as exc:
        raise StorageError(f"cannot version {registry}: {exc.strerror}", thing=str(registry)) from exc
    return target


def publish(paths: HostPaths, version: str) -> None:
    """Point `registry` at `version` with one rename of a new symlink: the atomic step."""
    previous = current_version(paths) if paths.registry.is_symlink() else None
    try:
        replace_symlink(paths.registry, _link_text(paths, version))
        if previous is not None and previous.name != version:
            # The grace period of a retired version counts from now.
            with contextlib.suppress(OSError):
                os.utime(previous)
    except OSError as exc:
        raise StorageError(f"cannot switch {paths.registry} to {version}: {exc.strerror}", thing=version) from exc


@dataclass(frozen=True)
class Collected:
    versions: int
    spares: int


def collect(paths: HostPaths, *, keep: tuple[Path, ...] = (), now: float | None = None) -> Collected:
    """Remove versions past their grace period (keeping the newest two) and abandoned spares."""
    now = time.time() if now is None else now
    versions = paths.registry_versions
    try:
        current = current_version(paths)
    except StorageError:
        return Collected(0, 0)
    kept = {current, *keep}
    removed_versions = removed_spares = 0
    try:
        old = sorted(
            (p for p in versions.iterdir() if p.name.startswith(VERSION_PREFIX) and p not in kept),
            key=lambda p: p.name,
        )
    except OSError:
        return Collected(0, 0)
    for path in old[:-2]:
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime > VERSION_GRACE_SECONDS:
                shutil.rmtree(path)
                removed_versions += 1
    for parent in (incoming_dir(paths), hook_dir(paths)):
        with contextlib.suppress(OSError):
            for path in parent.iterdir():
                age = now - path.lstat().st_mtime
                limit = STALE_SPARE_SECONDS if parent.name == INCOMING else VERSION_GRACE_SECONDS
                if path not in kept and age > limit:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink()
                    removed_spares += 1
    return Collected(removed_versions, removed_spares)
