"""The registry's transactions: atomic, journaled, recoverable at every crash point."""

from __future__ import annotations

import errno
import json

import pytest

import supz.fsutil as fsutil
import supz.registry as registry_module
from supz.errors import EntryExists, InvalidName, StorageError, UnknownEntry
from supz.paths import HostPaths
from supz.registry import EntryState, Registry, Who

WHO = Who(user="root", real_user="alice", host="h1")
TEXT = "[program:{0}]\ncommand = /bin/sleep 1000\n"




def state(reg: Registry) -> tuple[list[str], list[str], int]:
    return reg.active_names(), reg.parked_names(), reg.generation


def consistent(reg: Registry) -> bool:
    manifest = reg.manifest()
    return reg._checksums() == manifest.entries


def test_add_park_unpark_remove_step_the_generation(paths: HostPaths) -> None:
    reg = Registry(paths, host="h1")
    assert reg.add("a", TEXT.format("a"), who=WHO).generation_after == 1
    reg.add("b", TEXT.format("b"), who=WHO)
    change = reg.park(["a", "b"], who=WHO)
    assert (change.generation_before, change.generation_after) == (2, 3)
    assert state(reg) == ([], ["a", "b"], 3)
    reg.unpark(["a"], who=WHO)
    assert state(reg) == (["a"], ["b"], 4)
    reg.remove(["b"], who=WHO, keep_in=paths.removed)
    assert state(reg) == (["a"], [], 5)
    assert [p.name.split(".")[0] for p in paths.removed.iterdir()] == ["b"]
    manifest = reg.manifest()
    assert manifest.user == "alice" and manifest.host == "h1" and manifest.op == "remove"
    assert consistent(reg)


def test_starting_replaces_a_parked_entry_and_refuses_a_duplicate(paths: HostPaths) -> None:
    reg = Registry(paths, host="h1")
    reg.add("a", TEXT.format("a"), who=WHO)
    reg.park(["a"], who=WHO)
    reg.add("a", TEXT.format("a") + "startsecs = 3\n", who=WHO)
    assert state(reg)[:2] == (["a"], [])
    assert "startsecs = 3" in reg.read_text("a")
    with pytest.raises(EntryExists):
        reg.add("a", TEXT.format("a"), who=WHO)


@pytest.mark.parametrize("bad", ["../x", "a/b", "a b", "$(x)", ";", "", ".a", "-a", "x" * 65])
def test_bad_names_touch_nothing(paths: HostPaths, bad: str) -> None:
    reg = Registry(paths, host="h1")
    reg.add("a", TEXT.format("a"), who=WHO)
    before = sorted(p.name for p in paths.registry.rglob("*"))
    for call in (lambda: reg.add(bad, "x", who=WHO), lambda: reg.park([bad], who=WHO), lambda: reg.get(bad)):
        with pytest.raises(InvalidName):
            call()
    assert sorted(p.name for p in paths.registry.rglob("*")) == before


def test_unknown_names_touch_nothing(paths: HostPaths) -> None:
    reg = Registry(paths, host="h1")
    reg.add("a", TEXT.format("a"), who=WHO)
    with pytest.raises(UnknownEntry):
        reg.park(["a", "ghost"], who=WHO)
    assert state(reg) == (["a"], [], 1)


def test_editor_droppings_are_not_entries(paths: HostPaths) -> None:
    reg = Registry(paths, host="h1")
    reg.add("a", TEXT.format("a"), who=WHO)
    for junk in (".a.conf.swp", "a.conf~", ".a.conf.tmp", "4913", ".x.conf"):
        (paths.active / junk).write_text("junk")
    assert list(reg.entries()) == ["a"]


class Crash(Exception):
    pass


def crashing_after(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the registry's file operations die after `count` of them succeeded."""
    done = {"n": 0}
    for name in ("atomic_write", "atomic_rename", "unlink_durable"):
        real = getattr(registry_module, name)

        def wrapper(*args, _real=real, **kwargs):  # type: ignore[no-untyped-def]
            if done["n"] >= count:
                raise Crash()
            done["n"] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(registry_module, name, wrapper)


def _operate(reg: Registry, operation: str, paths: HostPaths) -> None:
    if operation == "park":
        reg.park(["a"], who=WHO)
    elif operation == "unpark":
        reg.unpark(["a"], who=WHO)
    elif operation == "add":
        reg.add("c", TEXT.format("c"), who=WHO)
    else:
        reg.remove(["a"], who=WHO, keep_in=paths.removed)


@pytest.mark.parametrize("operation", ["park", "unpark", "add", "remove"])
def test_a_crash_at_any_point_leaves_the_old_or_the_new_state(paths: HostPaths, operation: str) -> None:
    for crash_at in range(0, 12):
        for leftover in paths.registry.rglob("*"):
            if leftover.is_file():
                leftover.unlink()
        (paths.removed).mkdir(exist_ok=True)
        reg = Registry(paths, host="h1")
        reg.add("a", TEXT.format("a"), who=WHO)
        reg.add("b", TEXT.format("b"), who=WHO)
        if operation == "unpark":
            reg.park(["a"], who=WHO)
        old = state(reg)
        with pytest.MonkeyPatch.context() as mp:
            crashing_after(crash_at, mp)
            try:
                _operate(reg, operation, paths)
                finished = True
            except Crash:
                finished = False
        fresh = Registry(paths, host="h1")
        fresh.recover(who=WHO)
        now = state(fresh)
        assert consistent(fresh), (operation, crash_at)
        assert not (paths.registry / ".journal.json").exists()
        assert not any((paths.registry / ".staging").glob("*"))
        if finished:
            assert now[2] == old[2] + 1
        else:
            assert now[2] in (old[2], old[2] + 1), (operation, crash_at, now, old)
            if now[2] == old[2]:
                assert now == old, (operation, crash_at)


def test_a_full_disk_loses_nothing(paths: HostPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = Registry(paths, host="h1")
    reg.add("a", TEXT.format("a"), who=WHO)
    before = (state(reg), paths.manifest.read_text(), reg.read_text("a"))

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil.tempfile, "mkstemp", full)
    with pytest.raises(StorageError, match="No space left on device"):
        reg.add("b", TEXT.format("b"), who=WHO)
    with pytest.raises(StorageError):
        reg.park(["a"], who=WHO)
    monkeypatch.undo()
    assert (state(reg), paths.manifest.read_text(), reg.read_text("a")) == before
    assert not (paths.registry / ".journal.json").exists()


def test_recover_reconciles_a_hand_edit(paths: HostPaths) -> None:
    reg = Registry(paths, host="h1")
    reg.add("a", TEXT.format("a"), who=WHO)
    (paths.active / "b.conf").write_text(TEXT.format("b"))
    change = reg.recover(who=WHO)
    assert change is not None and change.op == "reconcile" and change.names == ("b",)
    assert consistent(reg) and reg.generation == 2
    assert reg.recover(who=WHO) is None


def test_an_entry_both_active_and_parked_keeps_the_active_one(paths: HostPaths) -> None:
    reg = Registry(paths, host="h1")
    reg.add("a", TEXT.format("a"), who=WHO)
    (paths.parked / "a.conf").write_text(TEXT.format("a") + "; old\n")
    reg.recover(who=WHO)
    assert state(reg)[:2] == (["a"], [])
    assert (paths.set_aside / "a.parked.conf").exists()


def test_manifest_is_json_with_checksums(paths: HostPaths) -> None:
    reg = Registry(paths, host="h1")
    reg.add("a", TEXT.format("a"), who=WHO)
    data = json.loads(paths.manifest.read_text())
    assert data["generation"] == 1 and data["entries"]["a"]["state"] == "active"
    assert len(data["entries"]["a"]["sha256"]) == 64
    assert reg.get("a").state is EntryState.ACTIVE
