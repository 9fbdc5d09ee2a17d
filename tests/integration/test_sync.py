"""The syncer end to end between two hosts on this machine (a local-folder peer): real supervisord,
real rsync, the syncer run by supervisord as the host-local program every host has.

The same scenarios over ssh and the rsync daemon, in network namespaces, are in test_sync_netns.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from supz.registry import Registry, Who
from supz.sync import layout
from supz.sync.manifests import read_version, scan_checksums
from supz.sync.peers import peer_generations, pull_from
from tests.conftest import SupzHost, sleep_program
from tests.synchelp import (
    configure_sync,
    converge,
    exercise_changes,
    flood_events,
    listing,
    master_and_backup,
    pause,
    peer_status,
    resume,
    set_peers,
    sync_log,
    syncer_pid,
)

WHO = Who("tester", "tester", "test")


@pytest.fixture
def pair() -> Iterator[tuple[SupzHost, SupzHost]]:
    """A MASTER pushing to a BACKUP on this machine (a local-folder peer)."""
    with master_and_backup() as (master, standby):
        configure_sync(master, str(standby.root))
        master.wait_for(lambda: peer_status(master).get("state") == "in sync", what="the first full resync")
        yield master, standby


def test_every_kind_of_change_reaches_the_standby(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    master.add("keep", sleep_program("keep"))
    exercise_changes(master, standby)
    # The master runs what its registry says; the BACKUP loads nothing it received.
    assert master.states() == {"keep:keep": "RUNNING"}
    assert standby.states() == {}
    assert listing(standby)["active"] == ["keep"]


def test_the_standby_never_sees_half_a_push(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    seen = {"reads": 0, "torn": []}
    stop = threading.Event()

    def reader() -> None:
        # A reader that resolves `registry` once sees one whole version: manifest and files agree.
        while not stop.is_set():
            current = layout.current_version(standby.paths)
            manifest = read_version(current)
            files = scan_checksums(current)
            if files != manifest.entries:
                seen["torn"].append((current.name, manifest.generation))
            seen["reads"] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        registry = Registry(master.paths, host=master.root.name)
        for i in range(40):
            registry.add(f"app{i % 7}", sleep_program(f"app{i % 7}", extra=f"; {i}"), who=WHO, replace=True)
            if i % 5 == 4:
                registry.park([f"app{i % 7}"], who=WHO)
        converge(master, standby, "the last of 40 changes")
    finally:
        stop.set()
        thread.join()
    assert seen["torn"] == []
    assert seen["reads"] > 40


def test_a_master_merges_what_a_newer_standby_made_without_it(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    master.add("common", sleep_program("common"))
    converge(master, standby, "the first entry")
    # The standby's registry moves on without the master (say it was MASTER for a while).
    theirs = Registry(standby.paths, host=standby.root.name)
    theirs.add("made-on-standby", sleep_program("made-on-standby"), who=Who("op", "op", standby.root.name))
    theirs.add("also-there", sleep_program("also-there"), who=Who("op", "op", standby.root.name))
    theirs.park(["common"], who=Who("op", "op", standby.root.name))
    master.add("late", sleep_program("late"))
    # Nothing is overwritten: both sides' changes end up on both, above both generations.
    converge(master, standby, "the merged registry on both hosts")
    merged = listing(master)
    assert sorted(merged["active"]) == ["also-there", "late", "made-on-standby"] and merged["parked"] == ["common"]
    assert merged["generation"] == 5
    # Applied on the MASTER at once: the parked entry stopped, the standby's new ones running.
    master.wait_for(lambda: master.states() == {"also-there:also-there": "RUNNING", "late:late": "RUNNING",
                                                "made-on-standby:made-on-standby": "RUNNING"},
                    what="the merge applied on the master")
    assert standby.states() == {}
    for host in (master, standby):
        assert [a for a in host.audit_lines() if a["command"] == "sync merge"], host.root
    assert "merged with" in sync_log(master)
    assert master.supz("sync", "check").returncode == 0


def test_an_inotify_overflow_triggers_a_full_resync(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    pid = syncer_pid(master)
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    version = layout.current_version(master.paths)
    pause(pid)
    try:
        Registry(master.paths, host=master.root.name).add("during", sleep_program("during"), who=WHO)
        flood_events(version, limit + 100)
    finally:
        resume(pid)
    master.wait_for(lambda: peer_status(master).get("last_full_reason") == "inotify queue overflow",
                    timeout=30, what="a full resync after the overflow")
    converge(master, standby, "the change made during the overflow")
    assert "inotify queue overflow" in sync_log(master)
    assert not any(p.name.startswith(".flood") for p in layout.current_version(standby.paths).iterdir())


def test_editor_and_temp_files_are_never_synced(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    version = layout.current_version(master.paths)
    junk = [".web.conf.swp", "web.conf~", "4913", ".web.conf.tmp"]
    for name in junk:
        (version / "active" / name).write_text("[program:junk]\ncommand = /bin/false\n")
        (version / name).write_text("junk")
    master.add("web", sleep_program("web"))
    converge(master, standby, "the entry")
    assert master.supz("sync", "once", check=True).returncode == 0
    theirs = layout.current_version(standby.paths)
    assert sorted(p.name for p in (theirs / "active").iterdir()) == ["web.conf"]
    assert not any((theirs / name).exists() for name in junk)


def test_once_check_and_status_speak_plainly(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    master.add("web", sleep_program("web"))
    converge(master, standby, "the entry")
    once = master.supz("sync", "once", check=True)
    assert f"{standby.root}: already in sync at generation 1" in once.stdout
    check = master.supz("sync", "check")
    assert check.returncode == 0 and "in sync (local generation 1, peer 1)" in check.stdout
    status = master.supz("sync", "status")
    assert status.returncode == 0 and f"peer {standby.root} [local]: in sync" in status.stdout
    data = json.loads(master.supz("sync", "status", "--json").stdout)
    assert data["running"] and data["peers"][0]["peer_generation"] == 1 and data["peers"][0]["lag"] == 0
    # Only a MASTER pushes.
    refused = standby.supz("sync", "once")
    assert refused.returncode == 4 and "only a MASTER pushes" in refused.stderr
    # A peer that is not there: exit 6 (unreachable), with the reason.
    set_peers(master, f"{standby.root}, /tmp/supz-no-such-root")
    unreachable = master.supz("sync", "check")
    assert unreachable.returncode == 6 and "no supz host there" in unreachable.stdout


def test_the_syncer_is_a_host_local_program_of_every_host(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    for host in (master, standby):
        assert (host.paths.host_programs / "supz-sync.conf").exists()
        host.wait_for(lambda host=host: host.states(with_syncer=True)["supz-sync:supz-sync"] == "RUNNING",
                      what="supz-sync RUNNING")
    # RUNNING is supervisord's word once startsecs passed; the syncer writes its state when it has started.
    standby.wait_for(lambda: "role BACKUP" in standby.supz("sync", "status").stdout, what="the syncer's state")
    assert "only a MASTER pushes" in standby.supz("sync", "status").stdout
    # A broken [sync] section: the syncer keeps running, says why it has no peers.
    configure_sync(standby, "not a peer")
    standby.wait_for(lambda: "config error" in standby.supz("sync", "status").stdout, what="the config error")
    assert "'not a peer'" in standby.supz("sync", "status").stdout
    assert standby.states(with_syncer=True)["supz-sync:supz-sync"] == "RUNNING"


def test_a_host_about_to_be_master_pulls_a_newer_registry(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    master.add("common", sleep_program("common"))
    converge(master, standby, "the first entry")
    # This host is about to be MASTER, not yet one (a MASTER's syncer would merge the change itself).
    master.supz("role", "set", "BACKUP", check=True)
    Registry(standby.paths, host=standby.root.name).add("newer", sleep_program("newer"), who=WHO)
    # The standby's generations, as the failover hooks will ask for them.
    views = peer_generations(master.paths)
    assert [(v.reachable, v.generation) for v in views] == [(True, 2)]
    result = pull_from(master.paths, str(standby.root))
    assert (result.result, result.generation_before, result.generation_after) == ("pulled", 1, 2)
    assert result.set_aside and (Path(result.set_aside) / "active" / "common.conf").exists()
    assert sorted(listing(master)["active"]) == ["common", "newer"]
    again = master.supz("sync", "pull", str(standby.root), check=True)
    assert "same registry as this host" in again.stdout


def test_a_full_resync_comes_every_interval(pair: tuple[SupzHost, SupzHost]) -> None:
    master, standby = pair
    configure_sync(master, str(standby.root), full_resync_interval=1)
    master.wait_for(lambda: peer_status(master).get("last_full_reason") == "periodic", what="a periodic full resync")
    assert peer_status(master)["state"] == "in sync"
    assert "full resync [periodic]: already in sync" in sync_log(master)


def test_a_rebuilt_standby_is_not_refilled_until_resolved(pair: tuple[SupzHost, SupzHost]) -> None:
    import shutil

    master, standby = pair
    master.add("kept", sleep_program("kept"))
    converge(master, standby, "the first entry")
    # The standby is rebuilt: a fresh registry with an entry of its own.
    standby.supz("down", check=True)
    shutil.rmtree(standby.paths.lib)
    standby.supz("init", "--ha", "--host", standby.root.name, check=True)
    standby.supz("role", "set", "BACKUP", check=True)
    Registry(standby.paths, host=standby.root.name).add("local-only", sleep_program("local-only"), who=WHO)
    standby.supz("up", check=True)
    master.wait_for(lambda: peer_status(master).get("blocked") == "unrelated", what="the syncer to refuse the peer")
    assert listing(standby)["active"] == ["local-only"]
    doctor = master.supz("doctor")
    assert doctor.returncode == 1 and "no state in common" in doctor.stdout and "supz sync resolve" in doctor.stdout
    cluster = master.supz("status", "--cluster")
    assert cluster.returncode == 1 and "no state in common" in cluster.stderr
    dry = master.supz("sync", "resolve", "--keep-local", "--dry-run", check=True)
    assert "kept: here active" in dry.stdout and "local-only: here absent" in dry.stdout
    assert listing(standby)["active"] == ["local-only"]
    refused = standby.supz("sync", "resolve", "--keep-local", str(master.root))
    assert refused.returncode == 4 and "--take" in refused.stderr
    master.supz("sync", "resolve", "--keep-local", check=True)
    converge(master, standby, "the master's registry pushed over the rebuilt one")
    assert listing(standby)["active"] == ["kept"]
    assert list(standby.paths.set_aside.glob("registry-g*/active/local-only.conf"))
    assert [a for a in standby.audit_lines() if a["command"] == "sync set-aside"]
    master.wait_for(lambda: master.supz("status", "--cluster").returncode == 0, what="the cluster sane again")
    assert [a for a in master.audit_lines() if a["command"] == "sync resolve"]
