"""A fake supervisord for the extension's logic, in the spirit of supervisor's tests/base.py.

Parsing uses supervisor's real ServerOptions; processes are fakes whose state changes when the
test (or a poll) calls `transition()`, so no process is ever forked.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from supervisor.http import NOT_DONE_YET
from supervisor.states import ProcessStates, SupervisorStates

from supz.programfile import new_server_options

_pids = itertools.count(1000)


class FakeLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def _log(self, message: str) -> None:
        self.lines.append(message)

    info = warn = error = critical = debug = blather = trace = _log


class FakeProcess:
    def __init__(self, config: Any, group: Any) -> None:
        self.config = config
        self.group = group
        self.state = ProcessStates.STOPPED
        self.pid = 0
        self.laststart = 0
        self.laststop = 0
        self.spawnerr: str | None = None
        self.exitstatus = None
        self.stubborn = False  # ignores stop
        self.broken = False  # dies while starting
        self.stop_delay = 0  # transitions a stop takes before the process is gone
        self.spawns = 0

    def __lt__(self, other: FakeProcess) -> bool:
        return self.config.name < other.config.name

    def get_state(self) -> int:
        return self.state

    def spawn(self) -> None:
        self.spawns += 1
        self.pid = next(_pids)
        self.laststart = time.time()
        self.state = ProcessStates.STARTING

    def stop(self) -> None:
        self.state = ProcessStates.STOPPING

    def transition(self) -> bool:
        """One turn of supervisord's loop for this process; True when the loop itself spawned it
        (as supervisor does for a never-started `autostart` process)."""
        if self.state == ProcessStates.STOPPED and not self.laststart and self.config.autostart:
            self.spawn()
            return True
        if self.state == ProcessStates.STARTING:
            self.state = ProcessStates.BACKOFF if self.broken else ProcessStates.RUNNING
        elif self.state == ProcessStates.STOPPING and not self.stubborn:
            if self.stop_delay > 0:
                self.stop_delay -= 1
                return
            self.state = ProcessStates.STOPPED
            self.pid = 0
        return False


class FakeGroup:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.processes = {pc.name: FakeProcess(pc, self) for pc in config.process_configs}

    def get_unstopped_processes(self) -> list[FakeProcess]:
        stopped = (ProcessStates.STOPPED, ProcessStates.EXITED, ProcessStates.FATAL, ProcessStates.BACKOFF)
        return [p for p in self.processes.values() if p.state not in stopped]


class FakeSupervisord:
    def __init__(self) -> None:
        options = new_server_options()
        options.logger = FakeLogger()
        options.mood = SupervisorStates.RUNNING
        options.process_group_configs = []

        class Section:
            environment: dict[str, str] = {}

        options.configroot.supervisord = Section()
        self.options = options
        self.process_groups: dict[str, FakeGroup] = {}
        self.loop_spawns = 0  # processes supervisord's own loop spawned (autostart), not the extension

    def add_process_group(self, config: Any) -> bool:
        if config.name in self.process_groups:
            return False
        self.process_groups[config.name] = FakeGroup(config)
        return True

    def remove_process_group(self, name: str) -> bool:
        if self.process_groups[name].get_unstopped_processes():
            return False
        del self.process_groups[name]
        return True

    def reap(self) -> None:
        pass

    def tick(self) -> None:
        """One turn of supervisord's main loop: every process transitions."""
        for group in list(self.process_groups.values()):
            for process in group.processes.values():
                if process.transition():
                    self.loop_spawns += 1

    def process(self, namespec: str) -> FakeProcess:
        group, _, name = namespec.partition(":")
        return self.process_groups[group].processes[name or group]


def settle(result: Any, supervisord: FakeSupervisord | None = None, limit: int = 10_000) -> Any:
    """Poll a deferred RPC result to its end, as supervisord's loop would: each turn of the loop
    transitions every process, then polls the deferred callback."""
    for _ in range(limit):
        if not callable(result):
            return result
        value = result()
        if value is not NOT_DONE_YET:
            return value
        if supervisord is not None:
            supervisord.tick()
    raise AssertionError("deferred call never finished")
