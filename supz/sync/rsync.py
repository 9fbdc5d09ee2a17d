"""Running rsync: its failures in supz's words, and an rsync started before it is needed.

A warm rsync is started right after a push with `--files-from=-` and waits on its stdin: its
processes exist, its ssh session (or local receiver) is set up. The next delta push only writes
the list of paths and closes stdin, which saves the start-up on the path of every change (about
half of rsync's time to land one file).
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from supz.errors import PeerUnreachable, SupzError, SyncRefused
from supz.sync.settings import Peer

# rsync exit codes that mean "could not talk to the peer" rather than "the peer said no".
_UNREACHABLE = {10, 12, 14, 20, 30, 35, 255}
_STORAGE = {11, 23, 24}

Watch = Callable[[], list[int]]


# ssh's words for the failures that matter, in the order they are looked for, and what supz says.
SSH_FAILURES = (
    ("Permission denied", "authentication refused"),
    ("Host key verification failed", "authentication refused: host key verification failed"),
    ("Connection timed out", "timeout: no answer to the connection"),
    ("Operation timed out", "timeout: no answer to the connection"),
    ("Connection refused", "connection refused"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network unreachable"),
    ("Could not resolve hostname", "unknown host"),
    ("Timeout, server", "timeout: the connection went silent"),
    ("Broken pipe", "the connection broke"),
)
# ssh's warnings, never the reason a transfer failed.
SSH_NOISE = ("Warning:", "ControlSocket", "disabling multiplexing", "mux_client", "Control socket connect")


def first_error(stderr: str) -> str:
    """The line of rsync's (or ssh's) complaints that says what went wrong: a known ssh failure
    in supz's words (timeout, refused, authentication) before any ssh warning."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("@ERROR") or "auth failed" in line:
            return line
    for needle, meaning in SSH_FAILURES:
        for line in lines:
            if needle in line:
                return f"{meaning}: {line}"
    lines = [ln for ln in lines if not any(noise in ln for noise in SSH_NOISE)] or lines
    for line in lines:
        if not line.startswith("rsync error:"):
            return line
    return lines[0] if lines else "no message"


def failure(peer: Peer, code: int, stderr: str) -> SupzError:
    """rsync's exit status and words as PeerUnreachable or SyncRefused."""
    why = first_error(stderr)
    if code == 5 and "auth failed" in stderr:
        return SyncRefused("auth", f"the rsync daemon refused the credentials ({why})", thing=peer.spec)
    if code == 5:
        return SyncRefused("config", f"the rsync daemon refused the request ({why})", thing=peer.spec)
    if code in _STORAGE:
        return SyncRefused("storage", f"rsync could not write everything ({why})", thing=peer.spec)
    if code in _UNREACHABLE:
        return PeerUnreachable(f"unreachable ({why})", thing=peer.spec)
    return PeerUnreachable(f"rsync failed with status {code} ({why})", thing=peer.spec)


@dataclass
class Job:
    """One rsync process, started; `spare` is where it pushes (for a warm one)."""

    peer: Peer
    proc: subprocess.Popen[bytes]
    errors: IO[bytes]
    spare: str = ""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def abandon(self) -> None:
        """A warm rsync no longer wanted: give it an empty list, so it ends by itself (reap it later)."""
        with contextlib.suppress(OSError, AttributeError):
            self.proc.stdin.close()  # type: ignore[union-attr]

    def reaped(self) -> bool:
        """True (and its files closed) once an abandoned rsync has ended."""
        if self.proc.poll() is None:
            return False
        self._close()
        return True

    def kill(self) -> None:
        """End it (SIGTERM first: rsync then takes its own children with it)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self._close()

    def _close(self) -> None:
        for stream in (self.proc.stdin, self.errors):
            with contextlib.suppress(OSError, AttributeError):
                stream.close()  # type: ignore[union-attr]

    def finish(self, *, timeout: float, feed: bytes | None = None, watch: Watch | None = None,
               on_ready: Callable[[], None] | None = None) -> None:
        """Give a warm rsync its list (`feed`), wait for the end, raise on failure.

        `watch` gives file descriptors to watch meanwhile; `on_ready` is called when one is
        readable (the local receiver watching its spare fill up).
        """
        try:
            if self.proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    if feed:
                        self.proc.stdin.write(feed)
                    self.proc.stdin.close()
            _wait(self.proc, timeout, watch, on_ready)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise PeerUnreachable(f"rsync gave no answer in {timeout:g} s", thing=self.peer.spec) from exc
        try:
            if self.proc.returncode != 0:
                self.errors.seek(0)
                raise failure(self.peer, self.proc.returncode, self.errors.read().decode("utf-8", "replace"))
        finally:
            self._close()


def start(peer: Peer, argv: list[str], *, env: dict[str, str] | None = None, fed: bool = False) -> Job:
    """Start rsync; with `fed`, it reads its list of paths from a pipe (--files-from=-)."""
    errors = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if fed else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=errors, env=env)
    except OSError as exc:
        errors.close()
        raise PeerUnreachable(f"cannot run {argv[0]}: {exc.strerror}", thing=peer.spec) from exc
    return Job(peer, proc, errors)


def run(peer: Peer, argv: list[str], *, timeout: float, env: dict[str, str] | None = None,
        watch: Watch | None = None, on_ready: Callable[[], None] | None = None) -> None:
    """Run one rsync to its end; map its failure to PeerUnreachable or SyncRefused."""
    start(peer, argv, env=env).finish(timeout=timeout, watch=watch, on_ready=on_ready)


def _wait(proc: subprocess.Popen[bytes], timeout: float, watch: Watch | None,
          on_ready: Callable[[], None] | None) -> None:
    if watch is None or on_ready is None:
        proc.wait(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    pidfd = os.pidfd_open(proc.pid)
    try:
        while proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            ready, _, _ = select.select([pidfd, *watch()], [], [], left)
            if any(fd != pidfd for fd in ready):
                on_ready()
    finally:
        os.close(pidfd)
    proc.wait()
