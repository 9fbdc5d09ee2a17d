"""What the extension does to supervisord's process table: load, unload, start, stop, and wait.

Runs inside supervisord's event loop. Waiting is cooperative: an operation is a generator
that yields while processes change state, and `drive()` turns it into one of supervisor's
deferred RPC callbacks, so one call can start or stop a thousand programs. An operation
yields WAIT ("look again when the loop next turns") or a time.time() value ("make the loop
turn by then"), which `drive()` hands to the `Pacer`.

Waits only read process states: supervisord's own loop transitions and reaps every process
on every turn, so doing it again here would double the work at a thousand programs.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from supervisor.http import NOT_DONE_YET
from supervisor.states import RUNNING_STATES, STOPPED_STATES, ProcessStates

from supz.supervisord.tuning import Pacer

WAIT = object()
Operation = Generator[object, None, Any]

# States a process leaves STARTING for when its start failed.
START_FAILED = (ProcessStates.BACKOFF, ProcessStates.FATAL, ProcessStates.EXITED, ProcessStates.STOPPED)


# How often a stop wait looks again: from a quick first look, backing off while nothing changes.
STOP_RECHECK = (0.02, 0.25)
# supervisord calls a deferred callback again only when this much time has passed since the last
# call; a wake-up requested sooner than that would turn the loop without calling it. Short, so a
# bulk operation resumes as soon as the clients it made way for are answered.
CALLBACK_DELAY = 0.002
# A bulk operation works at most this long before it looks whether a client waits, and if one does,
# lets supervisord's loop turn until it is answered (see Slicer.breathe).
SLICE_SECONDS = 0.02
# How many turns of supervisord's loop a bulk operation leaves to waiting clients between two slices.
WAITING_TURNS = 3


class Slicer:
    """Cuts a long loop into slices of `budget` seconds; between them supervisord's loop turns.

        slicer = Slicer()
        for name in names:
            ...                        # spawn one program
            yield from slicer.breathe()
    """

    def __init__(self, budget: float | None = None) -> None:
        self.budget = SLICE_SECONDS if budget is None else budget
        self.started = time.monotonic()
        self.slices = 1

    def due(self) -> bool:
        """Has this slice used its budget?"""
        return time.monotonic() - self.started >= self.budget

    def breathe(self) -> Generator[object, None, None]:
        """At the end of a slice, yield to supervisord's loop while a client is waiting; resume a fresh one.

        With nobody waiting the work goes on at full speed. A client needs two turns of the loop
        (one accepts its connection, the next reads and answers its request), so the operation
        stays out of the loop while a client is still waiting, for at most WAITING_TURNS turns:
        a flood of clients slows an activation, it never stops it.
        """
        if not self.due():
            return
        for _ in range(WAITING_TURNS):
            if not clients_waiting():
                break
            yield time.time()
        self.started = time.monotonic()
        self.slices += 1


def clients_waiting() -> bool:
    """Has a client of supervisord's HTTP server sent something (a connection, a request) that
    its loop has not read yet? True when that cannot be told."""
    try:
        from supervisor.medusa import asyncore_25 as asyncore

        fds = list(asyncore.socket_map)
        ready, _, _ = select.select(fds, [], [], 0)
    except (ImportError, OSError, ValueError):
        return True
    return bool(ready)


def drive(
    operation: Operation,
    on_error: Callable[[BaseException], BaseException],
    owner: Any,
    pacer: Pacer | None = None,
) -> Any:
    """Run `operation` now; if it must wait, return a deferred callback supervisord polls."""

    def step() -> Any:
        try:
            while True:
                wanted = next(operation)
                if wanted is WAIT:
                    return NOT_DONE_YET
                if isinstance(wanted, float):
                    if pacer is not None:
                        pacer.wake_at(max(wanted, time.time() + CALLBACK_DELAY + 0.005))
                    return NOT_DONE_YET
        except StopIteration as stop:
            return stop.value
        except BaseException as exc:  # noqa: BLE001 - every failure must become an RPC fault
            raise on_error(exc) from exc

    result = step()
    if result is NOT_DONE_YET:
        step.delay = CALLBACK_DELAY  # type: ignore[attr-defined]
        step.rpcinterface = owner  # type: ignore[attr-defined]
        return step
    return result


@dataclass
class Outcome:
    """Per-program result of a bulk operation."""

    name: str
    ok: bool = True
    status: str = ""
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "status": self.status, "message": self.message}


class ProcessTable:
    """A thin, typed view of the supervisord object's groups and processes."""

    def __init__(self, supervisord: Any) -> None:
        self.supervisord = supervisord

    @property
    def groups(self) -> dict[str, Any]:
        groups: dict[str, Any] = self.supervisord.process_groups
        return groups

    def loaded(self, name: str) -> bool:
        return name in self.supervisord.process_groups

    def load(self, group_config: Any) -> bool:
        """Add a group (not started). Keeps supervisor's own config list in step for `avail`."""
        return self.load_all([group_config]) == [group_config.name]

    def load_all(self, group_configs: list[Any]) -> list[str]:
        """Add groups (not started), updating supervisor's config list once for all of them."""
        added = [c.name for c in group_configs if self.add(c)]
        self.remember(group_configs)
        return added

    def add(self, group_config: Any) -> bool:
        """Add one group (not started) without touching the config list: see `remember`.

        Costs a millisecond or more (supervisor creates a temporary file per automatic log)."""
        return bool(self.supervisord.add_process_group(group_config))

    def remember(self, group_configs: list[Any]) -> None:
        """Put loaded groups' configs in supervisor's config list (what `avail` shows), once per batch."""
        if not group_configs:
            return
        names = {c.name for c in group_configs}
        options = self.supervisord.options
        options.process_group_configs = [c for c in options.process_group_configs if c.name not in names]
        options.process_group_configs.extend(group_configs)

    def unload(self, name: str) -> bool:
        """Remove a stopped group; False when a process still runs."""
        return self.unload_all([name]) == [name]

    def unload_all(self, names: list[str]) -> list[str]:
        """Remove stopped groups; return those removed (or not loaded): a running one stays."""
        removed = []
        for name in names:
            if name not in self.supervisord.process_groups or self.supervisord.remove_process_group(name):
                removed.append(name)
        gone = set(removed)
        options = self.supervisord.options
        options.process_group_configs = [c for c in options.process_group_configs if c.name not in gone]
        return removed

    def processes(self, name: str) -> list[Any]:
        group = self.supervisord.process_groups.get(name)
        return sorted(group.processes.values()) if group is not None else []

    def start(self, name: str) -> list[Any]:
        """Spawn every process of `name` that is not running; return those spawned."""
        spawned = []
        for process in self.processes(name):
            if process.get_state() in RUNNING_STATES:
                continue
            if process.get_state() == ProcessStates.UNKNOWN:
                continue
            process.spawn()
            spawned.append(process)
        return spawned

    def stop(self, name: str) -> list[Any]:
        """Ask every running process of `name` to stop; return those asked."""
        asked = []
        for process in self.processes(name):
            if process.get_state() in RUNNING_STATES:
                process.stop()
                asked.append(process)
        return asked

    def logger(self) -> Any:
        return self.supervisord.options.logger


def wait_started(processes: Iterable[Any], deadline: float) -> Generator[object, None, list[tuple[Any, str]]]:
    """Wait until each process is RUNNING; return (process, why) for each that is not.

    (A list, not a dict: supervisor's processes compare by priority and are not hashable.)

    supervisord makes a process RUNNING on the first turn of its loop after `startsecs`, so the
    wait asks the loop to turn just after the earliest such moment among those still starting.
    """
    pending = list(processes)
    failures: list[tuple[Any, str]] = []
    while pending:
        still = []
        for process in pending:
            state = process.get_state()
            if state == ProcessStates.RUNNING:
                continue
            if process.spawnerr or state in START_FAILED:
                failures.append((process, process.spawnerr or "abnormal termination"))
            else:
                still.append(process)
        pending = still
        if pending:
            if time.monotonic() >= deadline:
                failures += [(process, "still starting at the deadline") for process in pending]
                break
            due = min((p.laststart + p.config.startsecs for p in pending if p.laststart), default=0.0)
            yield due + 0.005
    return failures


def wait_stopped(processes: Iterable[Any], deadline: float) -> Generator[object, None, list[Any]]:
    """Wait until each process is stopped; return those still alive at the deadline.

    A program that exits closes its pipes, which wakes supervisord's loop; the wait looks again
    soon after, backing off while nothing changes (a program taking its stopwaitsecs).
    """
    pending = list(processes)
    pause = STOP_RECHECK[0]
    while pending:
        still = [p for p in pending if p.get_state() not in STOPPED_STATES]
        pause = STOP_RECHECK[0] if len(still) < len(pending) else min(pause * 2, STOP_RECHECK[1])
        pending = still
        if pending:
            if time.monotonic() >= deadline:
                return pending
            yield time.time() + pause
    return []
