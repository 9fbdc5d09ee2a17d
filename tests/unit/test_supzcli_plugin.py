"""supzcli's commands in-process, on a fake controller and fake RPC proxies (as supervisor's own
tests/test_supervisorctl.py does): what the operator reads and the exit code, per path."""

from __future__ import annotations

import xmlrpc.client as xmlrpclib
from pathlib import Path
from typing import Any

import pytest
from supervisor.xmlrpc import Faults

from supz.config import SupzConfig
from supz.paths import HostPaths
from supz.shell.main import SupzController, client_options
from supz.shell.plugin import SupzControllerPlugin


class FakeSupervisor:
    """supervisor's namespace over a tiny process table: group -> {process: state}."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    def getVersion(self) -> str:
        from supervisor import rpcinterface

        return str(rpcinterface.API_VERSION)

    def _group(self, name: str) -> dict[str, str]:
        if name not in self.world.loaded:
            raise xmlrpclib.Fault(Faults.BAD_NAME, f"BAD_NAME: {name}")
        return self.world.loaded[name]

    def _each(self, group: str, state: str) -> list[dict[str, Any]]:
        results = []
        for process in self._group(group):
            broken = state == "RUNNING" and f"{group}:{process}" in self.world.broken
            if not broken:
                self.world.loaded[group][process] = state
            results.append({"group": group, "name": process, "description": "SPAWN_ERROR" if broken else "OK",
                            "status": Faults.SPAWN_ERROR if broken else Faults.SUCCESS})
        return results

    def stopProcessGroup(self, group: str, wait: bool = True) -> list[dict[str, Any]]:
        return self._each(group, "STOPPED")

    def startProcessGroup(self, group: str, wait: bool = True) -> list[dict[str, Any]]:
        return self._each(group, "RUNNING")

    def stopProcess(self, spec: str, wait: bool = True) -> bool:
        group, _, process = spec.partition(":")
        if self._group(group)[process] != "RUNNING":
            raise xmlrpclib.Fault(Faults.NOT_RUNNING, f"NOT_RUNNING: {spec}")
        self.world.loaded[group][process] = "STOPPED"
        return True

    def startProcess(self, spec: str, wait: bool = True) -> bool:
        group, _, process = spec.partition(":")
        self._group(group)[process] = "RUNNING"
        return True

    def reloadConfig(self) -> list[list[list[str]]]:
        return [[[], [], []]]

    def removeProcessGroup(self, name: str) -> bool:
        if any(state == "RUNNING" for state in self._group(name).values()):
            raise xmlrpclib.Fault(Faults.STILL_RUNNING, f"STILL_RUNNING: {name}")
        del self.world.loaded[name]
        return True


class FakeSupz:
    """The supz extension's namespace over the same table and a registry: name -> active/parked."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world

    def resolve(self, names: list[str]) -> dict[str, Any]:
        answer = {}
        for spec in names:
            group, _, process = spec.partition(":")
            loaded = self.world.loaded.get(group)
            kind = self.world.registry.get(group) or ("local" if loaded is not None else "unknown")
            processes = sorted(loaded or {})
            if process and process != "*" and process not in processes:
                kind = "unknown"
            answer[spec] = {"kind": kind, "group": group, "process": "" if process == "*" else process,
                            "processes": processes, "loaded": loaded is not None}
        return answer

    def getRegistry(self) -> dict[str, Any]:
        return {"active": [n for n, s in self.world.registry.items() if s == "active"],
                "parked": [n for n, s in self.world.registry.items() if s == "parked"]}

    def park(self, names: list[str], context: dict[str, Any]) -> dict[str, Any]:
        self.world.contexts.append(("park", context))
        for name in names:
            self.world.registry[name] = "parked"
            self.world.loaded.pop(name, None)
        return {"results": [{"name": n, "ok": True, "status": "parked", "message": ""} for n in names]}

    def unpark(self, names: list[str], context: dict[str, Any]) -> dict[str, Any]:
        self.world.contexts.append(("unpark", context))
        results = []
        for name in names:
            self.world.registry[name] = "active"
            if name in self.world.broken:
                results.append({"name": name, "ok": False, "status": "failed", "message": "exited too quickly"})
                continue
            self.world.loaded[name] = {name: "RUNNING"}
            results.append({"name": name, "ok": True, "status": "unparked", "message": ""})
        return {"results": results}

    def update(self, names: list[str], context: dict[str, Any]) -> dict[str, Any]:
        self.world.contexts.append(("update", context))
        chosen = names or list(self.world.registry)
        return {"results": [{"name": n, "ok": n not in self.world.broken,
                             "status": "unchanged" if n not in self.world.broken else "invalid",
                             "message": "" if n not in self.world.broken else f"{n}.conf line 2: bad"}
                            for n in chosen]}

    def restart(self, names: list[str], context: dict[str, Any]) -> dict[str, Any]:
        self.world.contexts.append(("restart", context))
        results = []
        for spec in (sorted(self.world.loaded) if "all" in names else names):
            group, _, process = spec.partition(":")
            if self.world.registry.get(group) == "parked":
                results.append({"name": spec, "ok": False, "status": "parked", "message": f"'start {group}' brings it back"})
                continue
            for name in self.world.loaded[group]:
                if process in ("", "*", name):
                    broken = f"{group}:{name}" in self.world.broken
                    results.append({"name": f"{group}:{name}", "ok": not broken, "status": "failed" if broken else "restarted",
                                    "message": "exited too quickly" if broken else ""})
        return {"results": results}

    def remove(self, names: list[str], context: dict[str, Any]) -> dict[str, Any]:
        for name in names:
            del self.world.registry[name]
            self.world.loaded.pop(name, None)
        return {"results": [{"name": n, "ok": True, "status": "removed", "message": ""} for n in names]}

    def status(self) -> str:
        lines = [f"{g}:{p}\t{s}\t" for g, procs in self.world.loaded.items() for p, s in procs.items()]
        lines += [f"{n}\tPARKED\tstopped on purpose" for n, s in self.world.registry.items()
                  if s == "parked" and n not in self.world.loaded]
        return "\n".join(sorted(lines))

    def audit(self, context: dict[str, Any], result: str) -> bool:
        self.world.audits.append((context["command"], context["args"], result))
        return True


class FakeWorld:
    def __init__(self) -> None:
        self.registry = {"web": "active", "api": "active"}
        self.loaded = {"web": {"web": "RUNNING"}, "api": {"api": "RUNNING"}, "agent": {"agent": "RUNNING"}}
        self.broken: set[str] = set()
        self.contexts: list[tuple[str, dict[str, Any]]] = []
        self.audits: list[tuple[str, list[str], str]] = []


class DownProxy:
    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> Any:
            raise ConnectionRefusedError(111, "Connection refused")

        return call


class FakeController(SupzController):
    """supzcli's controller with the policy and everything real except the server proxies."""

    def __init__(self, tmp_path: Path, world: FakeWorld, *, down: bool = False) -> None:
        paths = HostPaths(tmp_path / "root")
        options = client_options(["-s", "unix:///nowhere.sock"], paths, SupzConfig(host="h"))
        options.interactive = False
        self.world, self.down, self.out = world, down, []
        super().__init__(options, SupzConfig(host="h"), paths, assume_yes=False)

    def get_server_proxy(self, namespace: str | None = None) -> Any:
        if self.down:
            return DownProxy()
        return {"supz": FakeSupz, "supervisor": FakeSupervisor}[str(namespace)](self.world)

    def output(self, message: str) -> None:
        self.out.append(message)

    def run(self, line: str) -> tuple[list[str], int]:
        self.out, self.exitstatus = [], 0
        self.onecmd(line)
        return self.out, int(self.exitstatus)


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def ctl(tmp_path: Path, world: FakeWorld) -> FakeController:
    return FakeController(tmp_path, world)


def test_the_plugin_is_supzcli_s_default(ctl: FakeController) -> None:
    assert isinstance(ctl.options.plugins[0], SupzControllerPlugin)


def test_stop_parks_a_registry_entry_and_stops_a_host_local_program(ctl: FakeController, world: FakeWorld) -> None:
    assert ctl.run("stop web agent") == (["web: stopped and parked", "agent:agent: stopped (host-local: registry unchanged)"], 0)
    assert world.registry["web"] == "parked" and world.loaded["agent"] == {"agent": "STOPPED"}
    assert world.contexts[-1][1]["command"] == "stop" and world.contexts[-1][1]["args"] == ["web"]
    assert world.audits == [("stop", ["agent"], "ok")]


def test_an_unknown_name_changes_nothing_and_exits_2(ctl: FakeController, world: FakeWorld) -> None:
    ctl.assume_yes = True  # remove needs a confirmation
    for command in ("stop", "start", "restart", "remove"):
        assert ctl.run(f"{command} web ghost") == (["ghost: ERROR (no such process or application)"], 2)
    assert world.registry == {"web": "active", "api": "active"} and world.contexts == []


def test_a_command_without_a_name_is_a_usage_error(ctl: FakeController) -> None:
    lines, code = ctl.run("stop")
    assert lines[0] == "Error: stop requires a process name" and code == 2


def test_start_unparks_and_a_failed_start_exits_1(ctl: FakeController, world: FakeWorld) -> None:
    ctl.run("stop web")
    assert ctl.run("start web") == (["web: unparked and started"], 0)
    ctl.run("stop web")
    world.broken.add("web")
    assert ctl.run("start web") == (["web: ERROR (failed: exited too quickly)"], 1)


def test_restart_keeps_the_registry_and_refuses_a_parked_entry(ctl: FakeController, world: FakeWorld) -> None:
    assert ctl.run("restart api") == (["api:api: restarted"], 0)
    assert world.contexts[-1][0] == "restart" and world.contexts[-1][1]["args"] == ["api"]
    assert world.registry == {"web": "active", "api": "active"}
    ctl.run("stop web")
    assert ctl.run("restart web") == (["web: ERROR (parked: 'start web' brings it back)"], 1)
    world.broken.add("api:api")
    assert ctl.run("restart api") == (["api:api: ERROR (failed: exited too quickly)"], 1)


def test_restart_all_needs_a_confirmation_and_tells_the_extension(ctl: FakeController, world: FakeWorld) -> None:
    lines, code = ctl.run("restart all")
    assert code == 4 and "needs a confirmation" in lines[0] and world.contexts == []
    ctl.assume_yes = True
    assert ctl.run("restart all")[1] == 0
    assert world.contexts[-1][1]["confirmed"] is True


def test_status_exit_codes(ctl: FakeController, world: FakeWorld) -> None:
    lines, code = ctl.run("status")
    assert code == 0 and [line.split() for line in lines] == [["agent:agent", "RUNNING"], ["api:api", "RUNNING"],
                                                               ["web:web", "RUNNING"]]
    ctl.run("stop web")
    lines, code = ctl.run("status web")
    assert code == 3 and lines[0].split()[:2] == ["web", "PARKED"]
    assert ctl.run("status api")[1] == 0
    lines, code = ctl.run("status ghost api")
    assert code == 2 and lines[0] == "ghost: ERROR (no such process or application)"


def test_status_when_supervisord_is_down_exits_7(tmp_path: Path, world: FakeWorld) -> None:
    ctl = FakeController(tmp_path, world, down=True)
    for command in ("status", "stop web", "start web", "restart web", "update"):
        lines, code = ctl.run(command)
        assert code == 7, command
        assert lines == ["error: supervisord is not running (unix:///nowhere.sock)"]


def test_update_reports_malformed_entries_and_skips_unchanged(ctl: FakeController, world: FakeWorld) -> None:
    assert ctl.run("update") == ([], 0)
    world.broken.add("api")
    assert ctl.run("update") == (["api: ERROR (invalid: api.conf line 2: bad)"], 1)
    assert ctl.run("update web") == (["web: unchanged"], 0)


def test_remove_needs_yes_in_one_shot_and_removes_entry_or_group(ctl: FakeController, world: FakeWorld) -> None:
    lines, code = ctl.run("remove web")
    assert code == 4 and "needs a confirmation" in lines[0]
    ctl.assume_yes = True
    assert ctl.run("remove web") == (["web: stopped and removed from the registry (a copy is kept)"], 0)
    assert "web" not in world.registry
    assert ctl.run("remove agent") == (["agent: ERROR (STILL_RUNNING: agent)"], 1)


def test_shutdown_is_refused_with_4(ctl: FakeController) -> None:
    lines, code = ctl.run("shutdown")
    assert code == 4 and lines[0].startswith("refused: 'shutdown' is disabled by the supz policy")


def test_history_file_defaults_to_the_home_file_and_minus_r_wins(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # supervisor keeps -r in options.history, which its shell never saves: supzcli kept no history.
    monkeypatch.setenv("HOME", str(tmp_path))
    paths = HostPaths(tmp_path / "root")
    options = client_options(["-s", "unix:///x.sock"], paths, SupzConfig(host="h"))
    assert options.history_file == str(tmp_path / ".supzcli_history")
    options = client_options(["-s", "unix:///x.sock", "-r", str(tmp_path / "mine")], paths, SupzConfig(host="h"))
    assert options.history_file == str(tmp_path / "mine")
