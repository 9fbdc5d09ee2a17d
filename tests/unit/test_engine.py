"""The extension's bulk machinery on fakes: batch load/unload, waits, the pacer, the spawn choice."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from supervisor.http import NOT_DONE_YET
from supervisor.states import ProcessStates

from supz.supervisord.engine import CALLBACK_DELAY, ProcessTable, drive, wait_started, wait_stopped
from supz.supervisord.tuning import Pacer, child_environment, close_child_fds, posix_spawnable


@dataclass
class Config:
    name: str
    startsecs: int = 1
    uid: Any = None
    directory: Any = None
    umask: Any = None
    serverurl: Any = None
    environment: Any = None
    options: Any = None


@dataclass
class Process:
    config: Config
    state: int = ProcessStates.STARTING
    laststart: float = 0.0
    spawnerr: str | None = None
    group: Any = None

    def get_state(self) -> int:
        return self.state


@dataclass
class Options:
    process_group_configs: list[Any] = field(default_factory=list)
    serverurl: str = "unix:///tmp/x.sock"


@dataclass
class Supervisord:
    options: Options = field(default_factory=Options)
    process_groups: dict[str, Any] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)

    def add_process_group(self, config: Config) -> bool:
        if config.name in self.process_groups:
            return False
        self.process_groups[config.name] = config
        return True

    def remove_process_group(self, name: str) -> bool:
        if name in self.running:
            return False
        del self.process_groups[name]
        return True


def test_load_all_adds_each_group_once_and_keeps_the_config_list_in_step() -> None:
    sup = Supervisord()
    table = ProcessTable(sup)
    assert table.load_all([Config("a"), Config("b")]) == ["a", "b"]
    assert table.load_all([Config("b"), Config("c")]) == ["c"]  # b is loaded already
    assert sorted(sup.process_groups) == ["a", "b", "c"]
    assert sorted(c.name for c in sup.options.process_group_configs) == ["a", "b", "c"]


def test_unload_all_keeps_a_group_whose_process_still_runs() -> None:
    sup = Supervisord()
    table = ProcessTable(sup)
    table.load_all([Config("a"), Config("b"), Config("c")])
    sup.running.add("b")
    assert table.unload_all(["a", "b", "nothere"]) == ["a", "nothere"]
    assert sorted(sup.process_groups) == ["b", "c"]
    assert sorted(c.name for c in sup.options.process_group_configs) == ["b", "c"]
    assert table.unload("c") is True and table.unload("b") is False


def test_wait_started_asks_to_look_just_after_the_earliest_startsecs() -> None:
    now = time.time()
    slow = Process(Config("slow", startsecs=5), laststart=now)
    quick = Process(Config("quick", startsecs=1), laststart=now)
    broken = Process(Config("broken"), state=ProcessStates.BACKOFF, laststart=now, spawnerr="no such file")
    wait = wait_started([slow, quick, broken], deadline=time.monotonic() + 60)
    wake = next(wait)
    assert now + 1 < wake < now + 1.1
    quick.state = ProcessStates.RUNNING
    wake = next(wait)
    assert now + 5 < wake < now + 5.1
    slow.state = ProcessStates.RUNNING
    try:
        next(wait)
    except StopIteration as stop:
        failures = stop.value
    assert [(p.config.name, why) for p, why in failures] == [("broken", "no such file")]


def test_wait_started_gives_up_at_the_deadline() -> None:
    stuck = Process(Config("stuck"), laststart=time.time())
    wait = wait_started([stuck], deadline=time.monotonic() - 1)
    try:
        next(wait)
    except StopIteration as stop:
        assert [(p.config.name, why) for p, why in stop.value] == [("stuck", "still starting at the deadline")]


def test_wait_stopped_backs_off_while_nothing_changes_and_returns_the_stuck() -> None:
    a = Process(Config("a"), state=ProcessStates.STOPPING)
    b = Process(Config("b"), state=ProcessStates.STOPPING)
    wait = wait_stopped([a, b], deadline=time.monotonic() + 60)
    pauses = [next(wait) - time.time() for _ in range(4)]
    assert pauses == sorted(pauses) and pauses[-1] <= 0.26
    a.state = ProcessStates.STOPPED
    assert next(wait) - time.time() < 0.05  # progress: look again soon
    b.state = ProcessStates.EXITED
    try:
        next(wait)
    except StopIteration as stop:
        assert stop.value == []


class FakePoller:
    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def poll(self, timeout: float) -> tuple[list[int], list[int]]:
        self.timeouts.append(timeout)
        return [], []


def test_pacer_shortens_the_poll_until_the_wake_up_has_passed() -> None:
    poller = FakePoller()
    pacer = Pacer(poller)
    poller.poll(1.0)
    pacer.wake_at(time.time() + 0.3)
    pacer.wake_at(time.time() + 0.1)
    poller.poll(1.0)
    pacer.wake_at(time.time() - 1)  # already past: no effect
    assert poller.timeouts[0] == 1.0
    assert 0.0 < poller.timeouts[1] <= 0.1
    time.sleep(0.11)
    poller.poll(1.0)
    assert 0.0 < poller.timeouts[2] <= 0.2


def test_drive_returns_at_once_or_a_deferred_that_wakes_the_loop() -> None:
    def instant():  # type: ignore[no-untyped-def]
        return "done"
        yield  # pragma: no cover

    assert drive(instant(), lambda exc: exc, owner=None) == "done"
    poller = FakePoller()
    pacer = Pacer(poller)
    ready = []

    def waiting():  # type: ignore[no-untyped-def]
        while not ready:
            yield time.time()  # "now": the pacer still waits for supervisord's callback delay
        return "later"

    deferred = drive(waiting(), lambda exc: exc, owner=None, pacer=pacer)
    assert callable(deferred) and deferred.delay == CALLBACK_DELAY
    poller.poll(1.0)
    assert CALLBACK_DELAY < poller.timeouts[-1] <= CALLBACK_DELAY + 0.01
    assert deferred() is NOT_DONE_YET
    ready.append(True)
    assert deferred() == "later"


def test_only_what_posix_spawn_can_do_exactly_takes_the_fast_path() -> None:
    class Plain:
        _prepare_child_fds = close_child_fds

        def __init__(self, **config: Any) -> None:
            self.config = Config("p", **config)

    class FastCGI(Plain):
        def _prepare_child_fds(self) -> None:  # type: ignore[override]
            pass

    assert posix_spawnable(Plain())
    assert not posix_spawnable(Plain(uid=1000))
    assert not posix_spawnable(Plain(directory="/srv"))
    assert not posix_spawnable(Plain(umask=0o22))
    assert not posix_spawnable(FastCGI())


def test_child_environment_is_the_one_supervisor_builds() -> None:
    group = Process(Config("grp"))
    process = Process(Config("proc", environment={"COLOUR": "blue"}, options=Options()), group=group)
    env = child_environment(process)
    assert env["SUPERVISOR_ENABLED"] == "1"
    assert env["SUPERVISOR_SERVER_URL"] == "unix:///tmp/x.sock"
    assert env["SUPERVISOR_PROCESS_NAME"] == "proc" and env["SUPERVISOR_GROUP_NAME"] == "grp"
    assert env["COLOUR"] == "blue"
    process.config.serverurl = "http://127.0.0.1:9001"
    assert child_environment(process)["SUPERVISOR_SERVER_URL"] == "http://127.0.0.1:9001"


def test_close_child_fds_does_what_supervisors_own_child_setup_does(monkeypatch: Any) -> None:
    from supervisor.process import Subprocess

    stock = Subprocess.__dict__["_prepare_child_fds"]
    if stock is close_child_fds:  # installed in this process already: nothing to compare with
        return

    class Recorder:
        minfds = 64

        def __init__(self) -> None:
            self.calls: list[tuple[str, int, int]] = []

        def dup2(self, frm: int, to: int) -> None:
            self.calls.append(("dup2", frm, to))

        def close_fd(self, fd: int) -> None:
            self.calls.append(("close", fd, fd))

    def run(method: Any, redirect: bool) -> list[tuple[str, int, int]]:
        options = Recorder()
        process = Process(Config("p", options=options))
        process.config.redirect_stderr = redirect  # type: ignore[attr-defined]
        process.pipes = {"child_stdin": 10, "child_stdout": 11, "child_stderr": 12}  # type: ignore[attr-defined]
        monkeypatch.setattr("os.closerange",
                            lambda lo, hi: options.calls.extend(("close", fd, fd) for fd in range(lo, hi)))
        method(process)
        return options.calls

    for redirect in (False, True):
        assert run(close_child_fds, redirect) == run(stock, redirect)


def test_a_slice_ends_by_leaving_the_loop_to_clients_while_they_wait_but_not_forever(monkeypatch: Any) -> None:
    """A client needs two turns (accept, then read and answer): the slicer stays out while one
    still waits, and a flood of clients gets at most WAITING_TURNS turns before work resumes."""
    from supz.supervisord import engine

    waiting = iter([True, True, False])
    monkeypatch.setattr(engine, "clients_waiting", lambda: next(waiting))
    slicer = engine.Slicer(budget=0.0)
    assert len(list(slicer.breathe())) == 2
    monkeypatch.setattr(engine, "clients_waiting", lambda: True)
    assert len(list(slicer.breathe())) == engine.WAITING_TURNS
    monkeypatch.setattr(engine, "clients_waiting", lambda: False)
    assert list(slicer.breathe()) == []
    assert slicer.slices == 4
