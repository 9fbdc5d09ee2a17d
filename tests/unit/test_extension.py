"""The supz extension's logic against a fake supervisord: ordering, deadlines, roles, bulk."""

from __future__ import annotations

import pytest
from supervisor.http import NOT_DONE_YET
from supervisor.xmlrpc import RPCError

from supz.config import SupzConfig
from supz.paths import HostPaths
from supz.registry import Registry, Who
from supz.role import write_role
from supz.supervisord.rpc import SupzNamespaceRPCInterface
from tests.unit.fakes import FakeSupervisord, settle

WHO = Who(user="root", real_user="root", host="h")
CTX = {"user": "bob", "real_user": "bob", "command": "test", "args": []}


def program(name: str, numprocs: int = 1) -> str:
    text = f"[program:{name}]\ncommand = /bin/sleep 1000\nstopwaitsecs = 0\n"
    if numprocs > 1:
        text += f"numprocs = {numprocs}\nprocess_name = %(program_name)s_%(process_num)02d\n"
    return text




def make(paths: HostPaths, names: list[str], ha: bool = False) -> tuple[SupzNamespaceRPCInterface, FakeSupervisord]:
    registry = Registry(paths, host="h")
    for name in names:
        registry.add(name, program(name), who=WHO)
    supervisord = FakeSupervisord()
    iface = SupzNamespaceRPCInterface(supervisord, paths, SupzConfig(host="h", ha_enabled=ha, deadline_margin=0.05))
    return iface, supervisord


def test_activate_loads_and_starts_every_active_entry_once(paths: HostPaths) -> None:
    iface, supervisord = make(paths, [f"app{i}" for i in range(30)])
    answer = settle(iface.activate(CTX), supervisord)
    assert [r["status"] for r in answer["results"]] == ["started"] * 30
    assert sorted(supervisord.process_groups) == sorted(f"app{i}" for i in range(30))
    assert all(p.spawns == 1 for g in supervisord.process_groups.values() for p in g.processes.values())
    again = settle(iface.activate(CTX), supervisord)
    assert {r["status"] for r in again["results"]} == {"already running"}
    assert all(p.spawns == 1 for g in supervisord.process_groups.values() for p in g.processes.values())


def test_deactivate_unloads_registry_groups_only(paths: HostPaths) -> None:
    iface, supervisord = make(paths, ["a", "b"])
    settle(iface.activate(CTX), supervisord)
    local = Registry(paths, host="h")  # a host-local program is loaded but not in the registry
    spec_text = program("agent")
    from supz.programfile import parse_program_text

    supervisord.add_process_group(parse_program_text(spec_text, "agent", options=supervisord.options).group_config)
    answer = settle(iface.deactivate(CTX), supervisord)
    assert {r["name"] for r in answer["results"]} == {"a", "b"}
    assert list(supervisord.process_groups) == ["agent"]
    assert local.active_names() == ["a", "b"]  # the registry is unchanged


def test_park_stops_first_and_parks_after(paths: HostPaths) -> None:
    iface, supervisord = make(paths, ["a"])
    settle(iface.activate(CTX), supervisord)
    answer = settle(iface.park(["a"], CTX), supervisord)
    assert answer["results"] == [{"name": "a", "ok": True, "status": "parked", "message": ""}]
    assert "a" not in supervisord.process_groups
    assert Registry(paths, host="h").parked_names() == ["a"]
    assert (answer["generation_before"], answer["generation_after"]) == (1, 2)


def test_a_process_that_will_not_stop_fails_at_the_deadline_and_stays_active(paths: HostPaths) -> None:
    iface, supervisord = make(paths, ["a"])
    settle(iface.activate(CTX), supervisord)
    supervisord.process("a").stubborn = True
    answer = settle(iface.park(["a"], CTX), supervisord, limit=10_000_000)
    assert answer["results"][0]["ok"] is False
    assert "deadline" in answer["results"][0]["message"]
    assert Registry(paths, host="h").active_names() == ["a"]
    assert answer["generation_after"] == answer["generation_before"]


def test_a_second_operation_on_the_same_name_waits_its_turn(paths: HostPaths) -> None:
    iface, supervisord = make(paths, ["a"])
    settle(iface.activate(CTX), supervisord)
    supervisord.process("a").stop_delay = 3
    first = iface.park(["a"], CTX)  # deferred: waiting for the stop
    second = iface.unpark(["a"], CTX)  # must wait for `first`
    assert callable(first) and callable(second)
    assert second() is not None and "a" in iface._busy
    first_answer = settle(first, supervisord)
    second_answer = settle(second, supervisord)
    assert first_answer["results"][0]["status"] == "parked"
    assert second_answer["results"][0]["status"] == "unparked"
    assert supervisord.process("a").state == 20  # RUNNING
    assert not iface._busy


def test_a_failed_start_is_reported(paths: HostPaths) -> None:
    iface, supervisord = make(paths, ["a"])
    settle(iface.activate(CTX), supervisord)
    settle(iface.park(["a"], CTX), supervisord)
    original = supervisord.add_process_group

    def add_broken(config):  # type: ignore[no-untyped-def]
        added = original(config)
        for process in supervisord.process_groups[config.name].processes.values():
            process.broken = True
        return added

    supervisord.add_process_group = add_broken  # type: ignore[method-assign]
    answer = settle(iface.unpark(["a"], CTX), supervisord)
    assert answer["results"][0]["ok"] is False and answer["results"][0]["status"] == "failed"
    assert Registry(paths, host="h").active_names() == ["a"]  # it must run: the registry says so


def test_a_backup_unloads_everything_at_start_and_starts_nothing(paths: HostPaths) -> None:
    write_role(paths, "BACKUP")
    iface, supervisord = make(paths, ["a", "b"], ha=True)
    from supz.programfile import read_program_file

    for name in ("a", "b"):  # as supervisord's include would have loaded them
        spec = read_program_file(paths.active / f"{name}.conf", options=supervisord.options)
        supervisord.add_process_group(spec.group_config)
    iface.on_start()
    assert supervisord.process_groups == {}
    with pytest.raises(RPCError, match="HA applications run only on the MASTER"):
        settle(iface.activate(CTX), supervisord)
    answer = settle(iface.update([], CTX), supervisord)
    assert supervisord.process_groups == {} and {r["status"] for r in answer["results"]} == {"unchanged"}


def test_update_skips_a_malformed_entry_and_applies_the_others(paths: HostPaths) -> None:
    iface, supervisord = make(paths, ["good", "bad"])
    settle(iface.activate(CTX), supervisord)
    (paths.active / "good.conf").write_text(program("good", numprocs=2))
    (paths.active / "bad.conf").write_text("[program:bad]\ncommand = x\nstartsecs = soon\n")
    answer = settle(iface.update([], CTX), supervisord)
    results = {r["name"]: r for r in answer["results"]}
    assert results["good"]["status"] == "updated"
    assert results["bad"]["ok"] is False and "line 3" in results["bad"]["message"]
    assert sorted(supervisord.process_groups["good"].processes) == ["good_00", "good_01"]
    assert "bad" in supervisord.process_groups  # the running version keeps running


def test_bad_names_are_faults_and_touch_nothing(paths: HostPaths) -> None:
    iface, supervisord = make(paths, ["a"])
    for bad in ("../x", "a/b", "$(x)"):
        with pytest.raises(RPCError) as caught:
            settle(iface.park([bad], CTX), supervisord)
        assert caught.value.code == 1001
    assert Registry(paths, host="h").active_names() == ["a"]


def test_activation_yields_to_supervisord_between_slices(paths: HostPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spawn that takes 5 ms: with a client waiting, 40 of them must not hold supervisord's loop
    in one piece."""
    import time

    from supz.supervisord import engine
    from tests.unit.fakes import FakeProcess

    monkeypatch.setattr(engine, "SLICE_SECONDS", 0.02)
    monkeypatch.setattr(engine, "clients_waiting", lambda: True)
    spawn = FakeProcess.spawn

    def slow_spawn(self: FakeProcess) -> None:
        time.sleep(0.005)
        spawn(self)

    monkeypatch.setattr(FakeProcess, "spawn", slow_spawn)
    iface, supervisord = make(paths, [f"app{i}" for i in range(40)])
    result = iface.activate(CTX)
    turns = 0
    while callable(result):
        value = result()
        turns += 1
        if value is not NOT_DONE_YET:
            result = value
            break
        supervisord.tick()
    assert {r["status"] for r in result["results"]} == {"started"}
    assert turns >= 5, "the 40 spawns (200 ms) must be cut in slices of 20 ms"


def test_activation_spawns_inside_its_slices_never_in_supervisords_loop(
        paths: HostPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    """supervisord's loop spawns every loaded `autostart` program it finds never started, all in
    one turn: a group the activation loaded in one slice must be started in that same slice, or
    the loop's next turn spawns the whole slice's groups outside any budget."""
    import time

    from supz.supervisord import engine

    monkeypatch.setattr(engine, "SLICE_SECONDS", 0.02)
    monkeypatch.setattr(engine, "clients_waiting", lambda: True)
    add = FakeSupervisord.add_process_group

    def slow_add(self: FakeSupervisord, config: object) -> bool:
        time.sleep(0.002)
        return add(self, config)

    monkeypatch.setattr(FakeSupervisord, "add_process_group", slow_add)
    iface, supervisord = make(paths, [f"app{i}" for i in range(60)])
    answer = settle(iface.activate(CTX), supervisord)
    assert {r["status"] for r in answer["results"]} == {"started"}
    assert supervisord.loop_spawns == 0


def test_registry_changes_on_a_host_that_is_not_master_are_refused(paths: HostPaths) -> None:
    """Only a MASTER pushes: a park, unpark or remove on a BACKUP would be lost, so it is refused."""
    import json

    from supz.config import set_options

    iface, supervisord = make(paths, ["a", "b"], ha=True)
    write_role(paths, "BACKUP")
    paths.last_master.write_text(json.dumps({"host": "host-b"}))
    before = Registry(paths, host="h").generation
    for call in (lambda: iface.park(["a"], CTX), lambda: iface.unpark(["a"], CTX), lambda: iface.remove(["b"], CTX)):
        with pytest.raises(RPCError) as refused:
            settle(call(), supervisord)
        assert refused.value.code == 1009
        assert "this host is BACKUP" in refused.value.text and "host-b" in refused.value.text
    assert Registry(paths, host="h").generation == before
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[failover]\n")
    set_options(paths.config_file, "failover", {"changes_off_master": "yes"})
    answer = settle(iface.park(["a"], CTX), supervisord)
    assert answer["results"][0]["status"] == "parked"
