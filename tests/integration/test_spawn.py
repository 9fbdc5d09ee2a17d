"""A program started by the extension's posix_spawn path sees exactly what supervisor's fork path gives it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest

from supz.supervisord.client import context
from tests.conftest import SupzHost, destroy_host, make_host

PROBE = (
    "import os, sys; "
    "print('fds', sorted(int(fd) for fd in os.listdir('/proc/self/fd'))); "
    "print('own process group', os.getpgrp() == os.getpid()); "
    "print('env', sorted(kv for kv in os.environ.items() if kv[0].startswith(('SUPERVISOR_', 'PROBE_', 'SUPZ_')))); "
    "sys.stdout.flush(); "
    "os.execv('/bin/sleep', ['sleep', '100000'])"
)


def _probe_program(name: str) -> str:
    return (f"[program:{name}]\ncommand = {sys.executable} -c \"{PROBE}\"\n"
            "startsecs = 1\nenvironment = PROBE_COLOUR=\"blue\"\n")


def _set_fast_spawn(host: SupzHost, value: str) -> None:
    config = host.paths.config_file
    text = config.read_text()
    assert "fast_spawn = yes\n" in text
    text = text.replace("fast_spawn = yes\n", f"fast_spawn = {value}\n")
    config.write_text(text)


def _probe_output(host: SupzHost, name: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        with host.client() as client:
            text = client.supervisor("readProcessStdoutLog", name, 0, 10000)
        if text.count("\n") >= 3 or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


@pytest.fixture
def standalone() -> Iterator[SupzHost]:
    host = make_host(up=False)
    try:
        yield host
    finally:
        destroy_host(host)


def test_posix_spawned_program_sees_what_a_forked_one_sees(standalone: SupzHost) -> None:
    seen = {}
    for fast in ("yes", "no"):
        if fast == "no":
            standalone.supz("down", check=True)
            _set_fast_spawn(standalone, "no")
        standalone.supz("up", check=True)
        name = f"probe{fast}"
        standalone.add(name, _probe_program(name))
        assert standalone.states()[f"{name}:{name}"] == "RUNNING"
        seen[fast] = _probe_output(standalone, name).replace(name, "NAME")
    log = standalone.paths.supervisord_log.read_text()
    assert log.count("supz: fast spawn on") == 1, "only the first supervisord (fast_spawn = yes) uses posix_spawn"
    assert "posix_spawn of" not in log, "no program fell back to fork"
    assert seen["yes"] == seen["no"]
    assert "fds [0, 1, 2, 3]" in seen["yes"]  # stdin/stdout/stderr, and the listing's own fd
    assert "own process group True" in seen["yes"]
    assert "('PROBE_COLOUR', 'blue')" in seen["yes"] and "('SUPERVISOR_PROCESS_NAME', 'NAME')" in seen["yes"]


def test_a_program_the_kernel_cannot_exec_fails_as_with_supervisor(standalone: SupzHost) -> None:
    script = standalone.root / "noshebang"
    script.write_text("echo this file has no #! line\n")
    script.chmod(0o755)
    standalone.supz("up", check=True)
    entry = standalone.root / "broken.conf"
    entry.write_text(f"[program:broken]\ncommand = {script}\nstartsecs = 1\nstartretries = 0\n")
    # registry add exits 1 when the program does not reach RUNNING (the entry is admitted).
    assert standalone.supz("registry", "add", str(entry)).returncode == 1
    standalone.wait_for(lambda: standalone.states().get("broken:broken") == "FATAL", what="broken FATAL")
    with standalone.client() as client:
        error = client.supervisor("readProcessStderrLog", "broken", 0, 10000)
        answer = client.supz("unpark", ["broken"], context("start", ["broken"]))
    assert "couldn't exec" in error and "ENOEXEC" in error
    assert "supz: posix_spawn of 'broken' failed" in standalone.paths.supervisord_log.read_text()
    assert answer["results"][0]["ok"] is False
