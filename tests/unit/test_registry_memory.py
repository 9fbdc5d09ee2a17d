"""The registry's memory as logic: history lines and their merge, park notes, archives and their
checks, backup retention, the reason on supzcli's command line."""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from supz import archive, backups, history
from supz.audit import Who
from supz.config import BackupSettings
from supz.errors import BadArchive
from supz.paths import HostPaths
from supz.programfile import sha256_text
from supz.registry import EntryState, Registry
from supz.shell.plugin import split_reason
from supz.sync.manifests import VersionInfo, read_version
from supz.sync.reconcile import merge_line, merged_notes

ALICE = Who("root", "alice", "a")


def program(name: str, extra: str = "") -> str:
    return f"[program:{name}]\ncommand = /bin/sleep 100\n{extra}"


def line(ident: str, time: str, **more: object) -> dict[str, object]:
    return {"id": ident, "time": time, **more}


def test_histories_merge_as_the_union_of_their_lines_by_id_in_time_order() -> None:
    base = [line("1", "t1"), line("2", "t2")]
    mine = [*base, line("a3", "t3")]
    theirs = [*base, line("b3", "t4"), line("b4", "t5")]
    merged = history.merge(mine, theirs)
    assert [x["id"] for x in merged] == ["1", "2", "a3", "b3", "b4"]
    assert history.merge(merged, theirs, mine) == merged  # merging again changes nothing
    assert [x["id"] for x in history.merge(mine, theirs, keep=2)] == ["b3", "b4"]


def test_history_selection_by_app_user_and_time() -> None:
    now = _dt.datetime(2026, 11, 29, 12, tzinfo=_dt.timezone.utc)
    lines = [line("1", "2026-11-25T00:00:00+00:00", names=["web"], user="root", real_user="alice"),
             line("2", "2026-11-28T00:00:00+00:00", names=["api"], user="bob", real_user="bob")]
    assert [x["id"] for x in history.select(lines, app="web")] == ["1"]
    assert [x["id"] for x in history.select(lines, user="alice")] == ["1"]
    assert [x["id"] for x in history.select(lines, since=history.since_cutoff("2d", now))] == ["2"]
    assert history.since_cutoff("2026-11-20", now).day == 20
    with pytest.raises(ValueError):
        history.since_cutoff("yesterday", now)


def test_a_park_note_reads_as_status_shows_it() -> None:
    note = {"user": "alice", "time": "2026-11-29T02:14:33.120+00:00", "reason": "INC-42: payment timeouts"}
    assert history.describe_park(note) == "by alice 2026-11-29 02:14 (INC-42: payment timeouts)"
    assert history.describe_park(None) == ""


def test_a_park_keeps_who_and_why_until_the_entry_is_active_again(paths: HostPaths) -> None:
    registry = Registry(paths, host="a")
    registry.add("web", program("web"), who=ALICE)
    change = registry.park(["web"], who=ALICE, note=history.Note("stop", ("web", "--reason", "INC-42"), "INC-42"))
    manifest = registry.manifest()
    assert manifest.notes["web"]["user"] == "alice" and manifest.notes["web"]["reason"] == "INC-42"
    last = manifest.history[-1]
    assert (last["op"], last["reason"], last["names"], last["generation_after"]) == (
        "park", "INC-42", ["web"], change.generation_after)
    registry.write("web", program("web", "; edited\n"), who=ALICE)
    assert registry.manifest().notes["web"]["reason"] == "INC-42"  # an edit keeps it parked, and the note
    registry.unpark(["web"], who=ALICE)
    manifest = registry.manifest()
    assert manifest.notes == {} and [x["op"] for x in manifest.history] == ["add", "park", "edit", "unpark"]
    assert len({x["id"] for x in manifest.history}) == 4


def test_the_history_line_of_an_interrupted_transaction_keeps_its_id(paths: HostPaths,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(paths, host="a")
    registry.add("web", program("web"), who=ALICE)

    def crash(*args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(Registry, "_apply", crash)
    with pytest.raises(OSError):
        registry.park(["web"], who=ALICE)
    journal = json.loads((paths.registry / ".journal.json").read_text())
    monkeypatch.undo()
    registry.recover(who=ALICE)
    assert registry.manifest().history[-1]["id"] == journal["history"]["id"]


def test_a_history_makes_two_registries_with_the_same_entries_different_states(paths: HostPaths) -> None:
    registry = Registry(paths, host="a")
    registry.add("web", program("web"), who=ALICE)
    registry.park(["web"], who=ALICE)
    registry.unpark(["web"], who=ALICE)
    info = read_version(paths.registry)
    assert info.digest != VersionInfo(info.generation, info.entries).digest


def test_an_import_replaces_only_what_differs_in_one_generation(paths: HostPaths) -> None:
    registry = Registry(paths, host="a")
    registry.add_many({n: program(n) for n in ("a1", "a2", "a3")}, who=ALICE)
    before = registry.generation
    change = registry.replace_all({"a1": (EntryState.ACTIVE, program("a1")), "a2": (EntryState.PARKED, program("a2")),
                                   "a4": (EntryState.ACTIVE, program("a4"))}, who=ALICE, op="import",
                                  notes={"a2": {"user": "bob", "time": "t", "reason": "archived"}})
    assert change is not None and change.generation_after == before + 1
    manifest = registry.manifest()
    assert {n: m["state"] for n, m in manifest.entries.items()} == {"a1": "active", "a2": "parked", "a4": "active"}
    assert manifest.notes == {"a2": {"user": "bob", "time": "t", "reason": "archived"}}
    assert sorted(manifest.history[-1]["names"]) == ["a2", "a3", "a4"]  # a1 did not change
    wanted = {n: (EntryState(m["state"]), registry.read_text(n)) for n, m in manifest.entries.items()}
    assert registry.replace_all(wanted, who=ALICE, op="import") is None


def test_both_hosts_merging_the_same_two_states_write_the_same_merge_line() -> None:
    a = VersionInfo(11, {"x": {"state": "parked", "sha256": "1"}}, history=({"id": "a", "time": "t1"},))
    b = VersionInfo(11, {"y": {"state": "parked", "sha256": "2"}}, history=({"id": "b", "time": "t2"},))
    on_a = merge_line(12, ("host-a", "host-b"), (a, b), ["x", "y"])
    on_b = merge_line(12, ("host-b", "host-a"), (b, a), ["x", "y"])
    assert on_a == on_b and on_a["time"] == "t2" and on_a["generation_after"] == 12


def test_merged_parked_entries_keep_the_newer_note() -> None:
    local = VersionInfo(3, {"x": {"state": "parked", "sha256": "1"}}, notes={"x": {"time": "t1", "reason": "A"}})
    peer = VersionInfo(3, {"x": {"state": "parked", "sha256": "1"}}, notes={"x": {"time": "t2", "reason": "B"}})
    assert merged_notes({"x": {"state": "parked", "sha256": "1"}}, local, peer)["x"]["reason"] == "B"
    assert merged_notes({"x": {"state": "active", "sha256": "1"}}, local, peer) == {}


def test_archives_round_trip_and_refuse_damage_in_one_line(paths: HostPaths, tmp_path: Path) -> None:
    registry = Registry(paths, host="a")
    registry.add_many({n: program(n) for n in ("a1", "a2")}, who=ALICE)
    registry.park(["a2"], who=ALICE, note=history.Note("stop", ("a2",), "why"))
    good = tmp_path / "good.gz"
    archive.write(good, archive.snapshot(paths.registry, "a"))
    read = archive.read(good)
    assert read.generation == registry.generation and read.state("a2") == "parked"
    assert read.texts["a1"] == registry.read_text("a1") and read.manifest.notes["a2"]["reason"] == "why"

    document = json.loads(gzip.decompress(good.read_bytes()))
    document["payload"]["entries"]["a1"] += "; changed\n"
    cases = {
        "truncated": good.read_bytes()[:-40],
        "checksum mismatch": gzip.compress(json.dumps(document).encode()),
        "not a supz registry archive": gzip.compress(b"[1, 2]"),
    }
    document["payload"]["entries"]["a1"] = "[program:a1]\nnumprocs = x\n"
    document["payload"]["manifest"]["entries"]["a1"]["sha256"] = sha256_text(document["payload"]["entries"]["a1"])
    body = json.dumps(document["payload"], sort_keys=True, separators=(",", ":")).encode()
    document["checksum"] = hashlib.sha256(body).hexdigest()  # a valid checksum over an invalid entry
    cases["a1:"] = gzip.compress(json.dumps(document).encode())
    for said, data in cases.items():
        bad = tmp_path / "bad.gz"
        bad.write_bytes(data)
        with pytest.raises(BadArchive) as caught:
            archive.read(bad)
        assert said in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_backups_are_taken_before_changes_and_kept_by_count(paths: HostPaths) -> None:
    registry = Registry(paths, host="a", backups=BackupSettings(keep=3))
    registry.add("web", program("web"), who=ALICE)  # generation 0: nothing to keep yet
    assert backups.listing(paths) == []
    for _ in range(5):
        registry.park(["web"], who=ALICE)
        registry.unpark(["web"], who=ALICE)
    kept = backups.listing(paths)
    assert [b.generation for b in kept] == [8, 9, 10]
    assert archive.read(kept[0].path).generation == 8
    assert backups.find(paths, kept[1].id) == kept[1]
    old = kept[0].path
    os.utime(old, (1, 1))
    backups.prune(paths, BackupSettings(keep=10, max_age=3600))
    assert not old.exists() and len(backups.listing(paths)) == 2


@pytest.mark.parametrize(("arg", "want"), [
    ("web", ("web", "")),
    ("web api -m INC-42: payment timeouts", ("web api", "INC-42: payment timeouts")),
    ('web --reason "two words"', ("web", "two words")),
    ("web --reason=now please", ("web", "now please")),
])
def test_supzcli_stop_takes_the_rest_of_the_line_as_the_reason(arg: str, want: tuple[str, str]) -> None:
    assert split_reason(arg) == want
