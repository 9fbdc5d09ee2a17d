"""The receiving side on real folders, with the transfer faked by plain copies.

What a push may do to a receiver: land whole or not at all, never replace a newer registry,
keep a copy of what only the receiver had.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from supz.errors import SyncRefused
from supz.paths import HostPaths
from supz.registry import Registry, Who
from supz.role import write_role
from supz.sync import layout, lineage, snapshot
from supz.sync.landing import Landing
from supz.sync.manifests import read_version, scan_checksums

WHO = Who("tester", "tester", "a")


def program(name: str, extra: str = "") -> str:
    return f"[program:{name}]\ncommand = /bin/sleep 1000\n{extra}"


def make_root(tmp: Path, name: str) -> HostPaths:
    paths = HostPaths(tmp / name)
    for folder in (paths.lib, paths.state, paths.locks, paths.etc):
        folder.mkdir(parents=True, exist_ok=True)
    layout.ensure_versioned(paths)
    return paths


@pytest.fixture
def pair(tmp_path: Path) -> tuple[HostPaths, HostPaths]:
    return make_root(tmp_path, "a"), make_root(tmp_path, "b")


def push(sender: HostPaths, receiver: Landing, *, full: bool = True, known: dict | None = None,
         tamper: str | None = None) -> object:
    """What a sender does, with shutil instead of rsync: snapshot, copy into the spare, commit."""
    snap = snapshot.take(sender, sender.sync_work / "out-test", sender="a", known=None if full else known)
    spare = receiver.prepare_spare()
    try:
        for rel in snap.paths:
            target = spare / rel
            target.parent.mkdir(exist_ok=True)
            if target.exists():
                target.unlink()  # rsync writes a new file and renames it over the old one
            shutil.copy2(snap.folder / rel, target)
        if tamper:
            (spare / tamper).write_text("[program:x]\ncommand = /bin/false\n")
        return receiver.commit(spare)
    finally:
        snap.discard()


def view(paths: HostPaths) -> tuple[int, dict]:
    current = layout.current_version(paths)
    return read_version(current).generation, scan_checksums(current)


def test_a_push_lands_whole(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    reg = Registry(a, host="a")
    reg.add("app1", program("app1"), who=WHO)
    reg.add("app2", program("app2"), who=WHO)
    reg.park(["app2"], who=WHO)
    result = push(a, Landing(b, "b"))
    assert (result.result, result.generation_before, result.generation_after) == ("committed", 0, 3)
    assert view(b) == view(a)
    assert Registry(b, host="b").parked_names() == ["app2"]


def test_a_delta_carries_changes_moves_and_removals(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    reg = Registry(a, host="a")
    for name in ("keep", "edit", "move", "gone"):
        reg.add(name, program(name), who=WHO)
    landing = Landing(b, "b")
    push(a, landing)
    known = read_version(layout.current_version(b)).entries
    reg.write("edit", program("edit", "autorestart = true\n"), who=WHO)
    reg.park(["move"], who=WHO)
    reg.remove(["gone"], who=WHO)
    push(a, landing, full=False, known=known)
    assert view(b) == view(a)
    assert sorted(os.listdir(b.active)) == ["edit.conf", "keep.conf"]


def test_an_older_registry_is_refused_and_both_are_kept(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    Registry(a, host="a").add("old", program("old"), who=WHO)
    rb = Registry(b, host="b")
    for name in ("new1", "new2"):
        rb.add(name, program(name), who=WHO)
    before_a, before_b = view(a), view(b)
    with pytest.raises(SyncRefused) as caught:
        push(a, Landing(b, "b"))
    assert caught.value.code == "newer"
    assert "generation 2" in str(caught.value) and "both copies kept" in str(caught.value)
    assert (view(a), view(b)) == (before_a, before_b)


def test_same_generation_other_content_is_diverged(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    Registry(a, host="a").add("x", program("x"), who=WHO)
    Registry(b, host="b").add("y", program("y"), who=WHO)
    with pytest.raises(SyncRefused) as caught:
        push(a, Landing(b, "b"))
    assert caught.value.code == "diverged"
    assert Registry(b, host="b").active_names() == ["y"]


def test_the_same_registry_is_a_no_op(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    Registry(a, host="a").add("x", program("x"), who=WHO)
    landing = Landing(b, "b")
    push(a, landing)
    version = layout.current_version(b)
    assert push(a, landing).result == "same"
    assert layout.current_version(b) == version


def test_a_master_does_not_take_a_registry(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    Registry(a, host="a").add("x", program("x"), who=WHO)
    write_role(b, "MASTER")
    with pytest.raises(SyncRefused) as caught:
        push(a, Landing(b, "b"))
    assert caught.value.code == "master"
    assert view(b)[0] == 0


def test_a_file_that_does_not_match_its_manifest_is_refused(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    Registry(a, host="a").add("x", program("x"), who=WHO)
    with pytest.raises(SyncRefused) as caught:
        push(a, Landing(b, "b"), tamper="active/x.conf")
    assert caught.value.code == "mismatch" and "x" in str(caught.value)
    assert view(b)[0] == 0


def test_a_delta_against_the_wrong_base_is_incomplete(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    reg = Registry(a, host="a")
    reg.add("x", program("x"), who=WHO)
    reg.add("y", program("y"), who=WHO)
    # The sender believes the receiver already holds x; it does not.
    known = {"x": read_version(layout.current_version(a)).entries["x"]}
    with pytest.raises(SyncRefused) as caught:
        push(a, Landing(b, "b"), full=False, known=known)
    assert caught.value.code == "incomplete"


def test_a_receiver_that_changed_meanwhile_refuses_the_spare(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    Registry(a, host="a").add("x", program("x"), who=WHO)
    landing = Landing(b, "b")
    spare = landing.prepare_spare()
    Registry(b, host="b").add("local", program("local"), who=WHO)
    snap = snapshot.take(a, a.sync_work / "out-test", sender="a", known=None)
    for rel in snap.paths:
        (spare / rel).parent.mkdir(exist_ok=True)
        shutil.copy2(snap.folder / rel, spare / rel)
    with pytest.raises(SyncRefused) as caught:
        landing.commit(spare)
    assert caught.value.code == "stale-base"
    assert Registry(b, host="b").active_names() == ["local"]


def test_what_only_the_receiver_made_is_set_aside(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    ra = Registry(a, host="a")
    for i in range(3):
        ra.add(f"a{i}", program(f"a{i}"), who=WHO)
    Registry(b, host="b").add("only-on-b", program("only-on-b"), who=Who("op", "op", "b"))
    result = push(a, Landing(b, "b"))
    assert result.set_aside is not None
    kept = Path(result.set_aside)
    assert (kept / "active" / "only-on-b.conf").exists()
    assert json.loads((kept / "manifest.json").read_text())["host"] == "b"


def test_a_state_the_sender_held_is_not_set_aside(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    ra = Registry(b, host="b")
    ra.add("shared", program("shared"), who=Who("op", "op", "b"))
    landing_a = Landing(a, "a")
    push(b, landing_a)  # a now holds b's state, and remembers it
    lineage.record(a, *(lambda v: (v.generation, v.digest))(read_version(layout.current_version(a))))
    Registry(a, host="a").add("more", program("more"), who=WHO)
    assert push(a, Landing(b, "b")).set_aside is None


def test_the_registry_works_through_the_symlink(tmp_path: Path) -> None:
    paths = HostPaths(tmp_path / "r")
    for folder in (paths.active, paths.parked, paths.locks):
        folder.mkdir(parents=True)
    reg = Registry(paths, host="r")
    reg.add("before", program("before"), who=WHO)
    layout.ensure_versioned(paths)  # converts the plain folder in place
    assert paths.registry.is_symlink()
    reg.add("after", program("after"), who=WHO)
    reg.park(["before"], who=WHO)
    reg.unpark(["before"], who=WHO)
    reg.remove(["after"], who=WHO, keep_in=paths.lib / "removed")
    assert reg.active_names() == ["before"] and reg.generation == 5
    assert reg.recover(who=WHO) is None


def test_old_versions_are_collected_after_their_grace(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    reg = Registry(a, host="a")
    landing = Landing(b, "b")
    for i in range(5):
        reg.add(f"x{i}", program(f"x{i}"), who=WHO)
        push(a, landing)
    versions = [p for p in b.registry_versions.iterdir() if p.name.startswith("v-")]
    assert len(versions) == 6
    layout.collect(b, now=10**10)
    left = sorted(p for p in b.registry_versions.iterdir() if p.name.startswith("v-"))
    assert len(left) == 3 and layout.current_version(b) in left


def test_an_unreadable_receiver_registry_is_repaired_and_kept(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    Registry(a, host="a").add("x", program("x"), who=WHO)
    (layout.current_version(b) / "manifest.json").write_text("{ torn")
    result = push(a, Landing(b, "b"))
    assert result.result == "committed" and result.set_aside is not None
    assert (Path(result.set_aside) / "manifest.json").read_text() == "{ torn"
    assert view(b) == view(a)


def test_a_root_that_is_not_a_supz_host_grows_no_registry(tmp_path: Path) -> None:
    from supz.sync.agent import landing_for

    with pytest.raises(SyncRefused) as caught:
        landing_for(HostPaths(tmp_path / "typo"))
    assert "no supz host at" in str(caught.value)
    assert not (tmp_path / "typo").exists()


def test_an_invalid_entry_is_refused_even_when_its_manifest_vouches_for_it(pair: tuple[HostPaths, HostPaths]) -> None:
    a, b = pair
    Registry(a, host="a").add("good", program("good"), who=WHO)
    push(a, Landing(b, host="b"))
    before = view(b)
    # A sender whose registry admitted a file supervisor cannot read (an older supz's reconcile).
    Registry(a, host="a").add("bad", "[program:bad]\ncommand = /bin/sleep 1\nstartsecs = soon\n", who=WHO)
    with pytest.raises(SyncRefused) as refused:
        push(a, Landing(b, host="b"))
    assert refused.value.code == "invalid" and "bad" in str(refused.value)
    assert view(b) == before
