"""Finding and ending what a dead supervisord of a root left running: the environment mark."""

from __future__ import annotations

import os
import subprocess

from supz.host.leftovers import find_leftovers, mark, sweep
from supz.paths import HostPaths


def test_sweep_ends_marked_processes_of_this_root_only(paths: HostPaths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    name, value = mark(paths)
    ours = subprocess.Popen(["sleep", "300"], env=dict(os.environ, **{name: value}))
    # A program that ignores SIGTERM needs the SIGKILL that follows the grace period.
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300 & wait"], env=dict(os.environ, **{name: value}))
    other = subprocess.Popen(["sleep", "300"], env=dict(os.environ, **{name: str(tmp_path / "another-root")}))
    plain = subprocess.Popen(["sleep", "300"])
    try:
        found = find_leftovers(paths)
        assert ours.pid in found and stubborn.pid in found
        assert other.pid not in found and plain.pid not in found and os.getpid() not in found
        swept = sweep(paths, grace=0.5)
        assert ours.wait(timeout=5) is not None and stubborn.wait(timeout=5) is not None
        assert stubborn.pid in swept.killed and swept.count >= 3  # the stubborn shell's own sleep too
        assert other.poll() is None and plain.poll() is None
        assert find_leftovers(paths) == []
    finally:
        for proc in (ours, stubborn, other, plain):
            proc.kill()
            proc.wait()
