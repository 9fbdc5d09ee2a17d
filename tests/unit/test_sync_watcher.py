"""What wakes the syncer: a registry commit, the role, the config, an overflow; nothing else."""

from __future__ import annotations

from pathlib import Path

import pyinotify
import pytest

from supz.paths import HostPaths
from supz.registry import Registry, Who
from supz.role import write_role
from supz.sync import layout
from supz.sync.watcher import Watcher

WHO = Who("tester", "tester", "a")


@pytest.fixture
def watched(tmp_path: Path):  # type: ignore[no-untyped-def]
    paths = HostPaths(tmp_path / "a")
    for folder in (paths.lib, paths.state, paths.locks, paths.etc):
        folder.mkdir(parents=True)
    layout.ensure_versioned(paths)
    watcher = Watcher(paths)
    try:
        yield paths, watcher
    finally:
        watcher.close()


def test_a_registry_change_is_one_wake(watched) -> None:  # type: ignore[no-untyped-def]
    paths, watcher = watched
    Registry(paths, host="a").add("x", "[program:x]\ncommand = /bin/true\n", who=WHO)
    wake = watcher.wait(2.0)
    assert wake.registry and not wake.overflow
    assert not watcher.wait(0.05)


def test_editor_droppings_do_not_wake_a_push(watched) -> None:  # type: ignore[no-untyped-def]
    paths, watcher = watched
    for name in (".x.conf.swp", "x.conf~", "4913", ".manifest.json.1234.tmp"):
        (paths.active / name).write_text("junk")
        (paths.registry / name).write_text("junk")
    assert not watcher.wait(0.2).registry


def test_role_and_config_changes_are_reported(watched) -> None:  # type: ignore[no-untyped-def]
    paths, watcher = watched
    write_role(paths, "MASTER")
    assert watcher.wait(2.0).role
    paths.config_file.write_text("[sync]\npeers = /tmp/x\n")
    assert watcher.wait(2.0).config


def test_a_swapped_registry_is_watched_again(watched) -> None:  # type: ignore[no-untyped-def]
    paths, watcher = watched
    fresh = paths.registry_versions / layout.new_version_name()
    (fresh / "active").mkdir(parents=True)
    (fresh / "parked").mkdir()
    layout.publish(paths, fresh.name)
    assert watcher.wait(2.0).relinked
    assert watcher.version == fresh
    Registry(paths, host="a").add("x", "[program:x]\ncommand = /bin/true\n", who=WHO)
    assert watcher.wait(2.0).registry


def test_a_queue_overflow_is_reported(watched) -> None:  # type: ignore[no-untyped-def]
    paths, watcher = watched
    # The kernel's overflow event, as it comes: wd -1, no name.
    watcher.notifier._eventq.append(pyinotify._RawEvent(-1, pyinotify.IN_Q_OVERFLOW, 0, ""))
    watcher.notifier.process_events()
    assert watcher.wait(0).overflow
