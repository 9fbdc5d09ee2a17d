"""The demos a new user runs first."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import BIN, SupzHost, destroy_host, short_tempdir
from tests.netns import unavailable


def test_demo_sets_up_a_host_with_sample_applications() -> None:
    host = SupzHost(short_tempdir())
    try:
        done = host.supz("--root", str(host.root), "demo", "--no-shell")
        assert done.returncode == 0, done.stderr
        assert host.states() == {"clock:clock": "RUNNING", "web:web": "RUNNING",
                                 "worker:worker_01": "RUNNING", "worker:worker_02": "RUNNING"}
        shell = host.supzcli(input="stop worker\nstatus worker\n")
        assert "worker: stopped and parked" in shell.stdout and "PARKED" in shell.stdout
    finally:
        destroy_host(host)


REASON = unavailable() or (None if shutil.which("keepalived") else "keepalived is not installed")


@pytest.mark.skipif(REASON is not None, reason=f"HA demo: {REASON}")
def test_ha_demo_builds_a_pair_and_tears_it_down() -> None:
    base = short_tempdir("szha-")
    supz = str(BIN / "supz")
    try:
        up = subprocess.run([supz, "--root", str(base), "demo", "--ha"], capture_output=True, text=True, timeout=180)
        assert up.returncode == 0, up.stderr
        assert "tear it all down" in up.stdout
        view = subprocess.run(["ip", "netns", "exec", "supzdemo-a", supz, "--root", str(base / "a"),
                               "status", "--cluster", "--json"], capture_output=True, text=True, timeout=60)
        roles = {h["host"]: h.get("role") for h in json.loads(view.stdout)["hosts"]}
        assert roles == {"demo-a": "MASTER", "demo-b": "BACKUP"}
    finally:
        down = subprocess.run([supz, "--root", str(base), "demo", "--ha", "--down"], capture_output=True, text=True,
                              timeout=120)
        shutil.rmtree(base, ignore_errors=True)
    assert "removed namespace supzdemo-a" in down.stdout
    assert "supzdemo" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
