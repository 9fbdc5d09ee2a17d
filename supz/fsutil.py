"""Crash-safe file operations: every registry and state write goes through here."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from supz.errors import RegistryBusy, StorageError


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write `data` to `path` so that a crash leaves either the old or the new file, never a mix."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}", thing=str(path)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StorageError(f"cannot write {path}: {exc.strerror}", thing=str(path)) from exc


def atomic_rename(src: Path, dst: Path) -> None:
    """Move `src` to `dst` (same file system) and make both folders durable."""
    try:
        os.replace(src, dst)
        fsync_dir(Path(dst).parent)
        if Path(src).parent != Path(dst).parent:
            fsync_dir(Path(src).parent)
    except OSError as exc:
        raise StorageError(f"cannot move {src} to {dst}: {exc.strerror}", thing=str(src)) from exc


def unlink_durable(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot remove {path}: {exc.strerror}", thing=str(path)) from exc
    fsync_dir(Path(path).parent)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 5.0, what: str = "registry", poll: float = 0.005) -> Iterator[None]:
    """Hold an exclusive flock on `path`; give up with RegistryBusy after `timeout` seconds.

    Polling with LOCK_NB keeps a hung holder from blocking supervisord's event loop forever;
    `poll` is the first pause between attempts, growing to 5 ms (the syncer, racing a
    transaction that is just ending, starts shorter than supervisord's loop needs).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)
    except OSError as exc:
        raise StorageError(f"cannot open lock {path}: {exc.strerror}", thing=str(path)) from exc
    try:
        deadline = time.monotonic() + timeout
        pause = poll
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise StorageError(f"cannot lock {path}: {exc.strerror}", thing=str(path)) from exc
                if time.monotonic() >= deadline:
                    raise RegistryBusy(
                        f"the {what} is locked by another operation (lock {path}); try again",
                        thing=str(path),
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 1.5, 0.005)
        yield
    finally:
        os.close(fd)
