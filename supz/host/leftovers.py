"""No program outlives its supervisord: find and end what a dead supervisord of this root left.

Every supervisord of a supz host carries `SUPZ_SUPERVISORD=<root>` in its environment (the
extension sets it when it loads, `supz up` passes it), and supervisor hands its environment to
every program it spawns, so each process a supervisord of this root started, and their own
children, carry the mark. `/proc/PID/environ` keeps a process's environment as it was at exec, so
the mark survives its parent's death, a reparenting to pid 1 and a new process group. Before a
supervisord starts (`supz up`, the extension's own start: the systemd drop-in, a restart after a
crash) and when a FAULT finds supervisord dead, every marked process that is not this process or
one of its ancestors is ended: TERM, then KILL after a grace period.

Why a mark and not process groups or a cgroup: supervisor puts every program in a process group of
its own (so groups do not name the host), and a cgroup per root needs a writable cgroup v2 tree,
which containers and systemd-managed hosts do not give a second manager. On a real host the
systemd drop-in also sets `KillMode=control-group`, so systemd ends the unit's whole cgroup too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

from supz.paths import HostPaths

MARK = "SUPZ_SUPERVISORD"


def mark(paths: HostPaths) -> tuple[str, str]:
    """The (name, value) of the environment mark a supervisord of this root hands its programs."""
    return MARK, str(paths.root)


def _marked(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return needle in handle.read().split(b"\0")
    except OSError:
        return False


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = _parent(pid)
    return seen


def pid_alive(pid: int) -> bool:
    """A live process, not a zombie (a zombie waits for its reaper, it runs nothing). Pid 0 or
    below is never one: kill(0) would ask about this process's own group. supz's one way to ask."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # /proc hides it (hidepid), but kill said it exists


def find_leftovers(paths: HostPaths, keep: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """Every live process carrying this root's mark, except this process, its ancestors and `keep`."""
    name, value = mark(paths)
    needle = f"{name}={value}".encode()
    spared = _ancestors(os.getpid()) | set(keep)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in spared and _marked(int(entry), needle) and pid_alive(int(entry)):
            found.append(int(entry))
    return sorted(found)


@dataclass(frozen=True)
class Sweep:
    """What `sweep` ended: pids that left on TERM, and those that needed KILL."""

    terminated: list[int]
    killed: list[int]

    @property
    def count(self) -> int:
        return len(self.terminated) + len(self.killed)

    def describe(self) -> str:
        if not self.count:
            return "no process left by an earlier supervisord"
        return (f"ended {self.count} process(es) left by an earlier supervisord of this root"
                f" ({len(self.killed)} needed SIGKILL)")


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def sweep(paths: HostPaths, grace: float = 3.0, keep: set[int] | frozenset[int] = frozenset(),
          supervisord_pid: int | None = None) -> Sweep:
    """End every process a previous supervisord of this root left behind.

    A supervisord still among them is stopped first (SIGKILL: it must not restart what it loses);
    the programs get SIGTERM and `grace` seconds, then SIGKILL. Looks twice, so a child forked
    while the first round was being signalled is caught as well.
    """
    # Only a process carrying this root's mark: a stale pid file may name a reused pid.
    if supervisord_pid is not None and supervisord_pid in find_leftovers(paths, keep):
        _signal(supervisord_pid, signal.SIGKILL)
    terminated: list[int] = []
    killed: list[int] = []
    for _ in range(2):
        victims = find_leftovers(paths, keep)
        if not victims:
            break
        for pid in victims:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(pid_alive(p) for p in victims):
            time.sleep(0.02)
        stubborn = [p for p in victims if pid_alive(p)]
        for pid in stubborn:
            _signal(pid, signal.SIGKILL)
        terminated += [p for p in victims if p not in stubborn]
        killed += stubborn
    return Sweep(terminated, killed)
