"""Crash-safe file operations: every registry and state write goes through here, and every
helper that makes a change durable, atomic or safe to repeat lives here."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from supz.errors import RegistryBusy, StorageError

# renameat2(2)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
# From this many paths on, fsync_together flushes the whole file system with one syncfs(2).
SYNCFS_FROM = 64
_flushers: ThreadPoolExecutor | None = None


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


def write_quick(path: Path, text: str) -> None:
    """Replace `path` atomically (temp file + rename) without fsync: for status files that are
    rewritten often and may be lost in a crash, never half written."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(f"cannot write {path}: {exc.strerror}", thing=str(path)) from exc


def replace_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` by renaming a new symlink over it (a reader sees the old or the
    new one, never none), then make its folder durable. Raises OSError; callers name the change."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(4)}.tmp")
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(link.parent)


def exchange(a: Path, b: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): swap two names atomically. False where the kernel/libc lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise StorageError(f"cannot exchange {a} and {b}: {os.strerror(err)}", thing=str(a))


def remove_path(path: str) -> bool:
    """Remove a file or a whole folder; False when there was nothing."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageError(f"cannot remove {path}: {exc.strerror}", thing=path) from exc
    return True


def fsync_path(path: Path) -> None:
    """fsync a file or a folder."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: Path) -> bool:
    """syncfs(2) on the file system holding `path`; False where libc lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if call(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


def fsync_together(paths: list[Path]) -> None:
    """fsync files and folders concurrently: the file system commits them in one journal flush
    instead of one after the other (the commit's durability costs one round, not six).
    Past SYNCFS_FROM paths (a burst), one syncfs(2) of the whole file system is cheaper still."""
    global _flushers
    if len(paths) >= SYNCFS_FROM:
        try:
            if syncfs(paths[0]):
                return
        except OSError as exc:
            raise StorageError(f"cannot flush {paths[0]}: {exc.strerror}", thing=str(paths[0])) from exc
    if len(paths) == 1:
        futures_or_none = None
    else:
        if _flushers is None:
            _flushers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fsync")
        futures_or_none = [_flushers.submit(fsync_path, p) for p in paths]
    try:
        if futures_or_none is None:
            fsync_path(paths[0])
        else:
            for future in futures_or_none:
                future.result()
    except OSError as exc:
        raise StorageError(f"cannot flush {exc.filename or paths[0]}: {exc.strerror}", thing=str(paths[0])) from exc


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
