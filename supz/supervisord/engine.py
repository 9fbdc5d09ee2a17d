"""What the extension does to supervisord's process table: load, unload, start, stop, and wait.

Runs inside supervisord's event loop. Waiting is cooperative: an operation is a generator
that yields WAIT while processes change state, and `drive()` turns it into one of
supervisor's deferred RPC callbacks, so one call can start or stop a thousand programs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from supervisor.http import NOT_DONE_YET
from supervisor.states import RUNNING_STATES, STOPPED_STATES, ProcessStates

WAIT = object()
Operation = Generator[object, None, Any]

# States a process leaves STARTING for when its start failed.
START_FAILED = (ProcessStates.BACKOFF, ProcessStates.FATAL, ProcessStates.EXITED, ProcessStates.STOPPED)


def drive(operation: Operation, on_error: Callable[[BaseException], BaseException], owner: Any) -> Any:
    """Run `operation` now; if it must wait, return a deferred callback supervisord polls."""

    def step() -> Any:
        try:
            while True:
                if next(operation) is WAIT:
                    return NOT_DONE_YET
        except StopIteration as stop:
            return stop.value
        except BaseException as exc:  # noqa: BLE001 - every failure must become an RPC fault
            raise on_error(exc) from exc

    result = step()
    if result is NOT_DONE_YET:
        step.delay = 0.02  # type: ignore[attr-defined]
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
    processes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "status": self.status, "message": self.message}


class ProcessTable:
    """A thin, typed view of the supervisord object's groups and processes."""

    def __init__(self, supervisord: Any) -> None:
        self.supervisord = supervisord

    @property
    def groups(self) -> dict[str, Any]:
        return self.supervisord.process_groups

    def loaded(self, name: str) -> bool:
        return name in self.supervisord.process_groups

    def load(self, group_config: Any) -> bool:
        """Add a group (not started). Keeps supervisor's own config list in step for `avail`."""
        options = self.supervisord.options
        configs = [c for c in options.process_group_configs if c.name != group_config.name]
        configs.append(group_config)
        options.process_group_configs = configs
        return bool(self.supervisord.add_process_group(group_config))

    def unload(self, name: str) -> bool:
        """Remove a stopped group; False when a process still runs."""
        if name not in self.supervisord.process_groups:
            return True
        if not self.supervisord.remove_process_group(name):
            return False
        options = self.supervisord.options
        options.process_group_configs = [c for c in options.process_group_configs if c.name != name]
        return True

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

    def reap(self) -> None:
        self.supervisord.reap()

    def logger(self) -> Any:
        return self.supervisord.options.logger


def wait_started(
    table: ProcessTable, processes: Iterable[Any], deadline: float
) -> Generator[object, None, dict[Any, str]]:
    """Wait until each process is RUNNING; return {process: failure} for those that are not."""
    pending = list(processes)
    failures: dict[Any, str] = {}
    while pending:
        table.reap()
        for process in list(pending):
            process.transition()
            state = process.get_state()
            if state == ProcessStates.RUNNING:
                pending.remove(process)
            elif process.spawnerr or state in START_FAILED:
                failures[process] = process.spawnerr or "abnormal termination"
                pending.remove(process)
        if pending:
            if time.monotonic() >= deadline:
                for process in pending:
                    failures[process] = "still starting at the deadline"
                break
            yield WAIT
    return failures


def wait_stopped(
    table: ProcessTable, processes: Iterable[Any], deadline: float
) -> Generator[object, None, list[Any]]:
    """Wait until each process is stopped; return those still alive at the deadline."""
    pending = list(processes)
    while pending:
        table.reap()
        for process in list(pending):
            process.transition()
            if process.get_state() in STOPPED_STATES:
                pending.remove(process)
        if pending:
            if time.monotonic() >= deadline:
                return pending
            yield WAIT
    return []
