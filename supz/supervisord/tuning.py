"""What the extension changes in its supervisord so that a thousand programs start, stop and answer fast.

Each change keeps what programs and clients see; only the cost moves:

- `Pacer`: supervisord's loop polls with a fixed 1 s timeout, so a wait on a time-based change
  (a program becoming RUNNING after `startsecs`) is noticed up to a second late. While a supz
  operation waits, the pacer shortens that timeout to the moment the operation needs to look.
- `close_child_fds`: before exec, supervisor's child closes fds 3..minfds-1 one Python call at a
  time (~8000 calls at minfds 8192), CPU that competes with supervisord for the cores while a
  thousand programs start. `os.closerange` closes the same fds in one call.
- `spawn`: supervisor forks its whole process for every program; fork copies page tables, so
  at a thousand programs each costs milliseconds. A program with no `user`, `directory` or
  `umask` is started with `os.posix_spawn` instead (no copy), with the same process group,
  stdin/stdout/stderr pipes, environment and no other fds. If posix_spawn fails (a script
  the kernel cannot exec, say) supervisor's own fork path runs, so failures look as before.
- Response chunks: supervisord sends a response 4 KiB per turn of its loop; a status of 2000
  programs then needs hundreds of turns. Chunks of 64 KiB send the same bytes in a few.

Set `[supervisord] fast_spawn = no` in supz.conf to keep supervisor's fork path for every program.
"""

from __future__ import annotations

import functools
import heapq
import os
import time
from collections.abc import Callable
from typing import Any

_MARK = "_supz_tuned"
RESPONSE_CHUNK = 1 << 16


class Pacer:
    """Wraps the poller of one supervisord so its loop turns by the earliest requested time."""

    def __init__(self, poller: Any) -> None:
        self._due: list[float] = []
        self._poll = poller.poll
        poller.poll = self.poll

    def wake_at(self, when: float) -> None:
        """Make supervisord's loop turn no later than `when` (a time.time() value)."""
        heapq.heappush(self._due, when)

    def poll(self, timeout: float) -> Any:
        now = time.time()
        while self._due and self._due[0] <= now:
            heapq.heappop(self._due)
        if self._due:
            timeout = min(timeout, max(0.0, self._due[0] - now))
        return self._poll(timeout)


def close_child_fds(process: Any) -> None:
    """supervisor's `Subprocess._prepare_child_fds`, with the close loop done by os.closerange."""
    options = process.config.options
    options.dup2(process.pipes["child_stdin"], 0)
    options.dup2(process.pipes["child_stdout"], 1)
    if process.config.redirect_stderr:
        options.dup2(process.pipes["child_stdout"], 2)
    else:
        options.dup2(process.pipes["child_stderr"], 2)
    os.closerange(3, options.minfds)


def child_environment(process: Any) -> dict[str, str]:
    """The environment supervisor's child builds before exec (`Subprocess._spawn_as_child`)."""
    env = os.environ.copy()
    env["SUPERVISOR_ENABLED"] = "1"
    serverurl = process.config.serverurl
    if serverurl is None:
        serverurl = process.config.options.serverurl
    if serverurl:
        env["SUPERVISOR_SERVER_URL"] = serverurl
    env["SUPERVISOR_PROCESS_NAME"] = process.config.name
    if process.group:
        env["SUPERVISOR_GROUP_NAME"] = process.group.config.name
    if process.config.environment is not None:
        env.update(process.config.environment)
    return env


def posix_spawnable(process: Any) -> bool:
    """Only what posix_spawn can do exactly: no user switch, no chdir, no umask, no FastCGI socket."""
    config = process.config
    return (
        config.uid is None
        and config.directory is None
        and config.umask is None
        and type(process)._prepare_child_fds is close_child_fds
    )


def _spawn_instead_of_fork(process: Any, fork: Callable[[], int]) -> int:
    """Stands in for `options.fork()` inside supervisor's spawn: returns the new child's pid."""
    try:
        filename, argv = process.get_execv_args()
        pipes = process.pipes
        stderr = pipes["child_stdout"] if process.config.redirect_stderr else pipes["child_stderr"]
        actions = [
            (os.POSIX_SPAWN_DUP2, pipes["child_stdin"], 0),
            (os.POSIX_SPAWN_DUP2, pipes["child_stdout"], 1),
            (os.POSIX_SPAWN_DUP2, stderr, 2),
        ]
        return os.posix_spawn(filename, argv, child_environment(process), file_actions=actions, setpgroup=0)
    except Exception as exc:  # noqa: BLE001 - supervisor's own path reports the failure as it always has
        process.config.options.logger.info(f"supz: posix_spawn of {process.config.name!r} failed ({exc}); forking")
        return fork()


def _make_spawn(stock_spawn: Any) -> Any:
    @functools.wraps(stock_spawn)
    def spawn(process: Any) -> Any:
        options = process.config.options
        if not posix_spawnable(process):
            return stock_spawn(process)
        own = vars(options).get("fork")
        options.fork = functools.partial(_spawn_instead_of_fork, process, options.fork)
        try:
            return stock_spawn(process)
        finally:
            if own is None:
                del options.fork
            else:
                options.fork = own

    return spawn


def _no_inherited_fds(minfds: int) -> None:
    """Mark fds supervisord inherited (3 and 4 survive its own cleanup) close-on-exec.

    A forked child closes them before exec; a posix_spawned one relies on close-on-exec, which
    every fd Python opens already has.
    """
    for fd in range(3, minfds):
        try:
            if os.get_inheritable(fd):
                os.set_inheritable(fd, False)
        except OSError:
            continue


def install(supervisord: Any, *, fast_spawn: bool = True) -> Pacer | None:
    """Apply the changes above to this supervisord (once); return its Pacer (None without a poller)."""
    from supervisor.http import deferring_http_channel
    from supervisor.process import Subprocess

    if not getattr(Subprocess, _MARK, False):
        Subprocess._prepare_child_fds = close_child_fds
        if fast_spawn and hasattr(os, "posix_spawn"):
            _no_inherited_fds(supervisord.options.minfds)
            Subprocess.spawn = _make_spawn(Subprocess.spawn)
            supervisord.options.logger.info(
                "supz: fast spawn on: posix_spawn for programs without user, directory or umask")
        deferring_http_channel.ac_out_buffer_size = max(deferring_http_channel.ac_out_buffer_size, RESPONSE_CHUNK)
        setattr(Subprocess, _MARK, True)
    poller = getattr(supervisord.options, "poller", None)
    return Pacer(poller) if poller is not None else None
