"""An operator who is not root needs only the socket's group to stop and start applications."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import SupzHost, destroy_host, make_host, needs_root, sleep_program

pytestmark = needs_root()


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


def _as_user(user: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True, text=True)


@pytest.fixture
def operators() -> Iterator[tuple[str, str, str]]:
    """A group for the socket, a user in it and a user not in it; removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    group, member, outsider = f"supzop{tag}", f"supzm{tag}", f"supzo{tag}"
    _run("groupadd", group)
    try:
        _run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", group, member)
        _run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", outsider)
        yield group, member, outsider
    finally:
        subprocess.run(["userdel", member], capture_output=True)
        subprocess.run(["userdel", outsider], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


def test_socket_group_member_can_stop_and_start(operators: tuple[str, str, str], traversable_venv: None) -> None:
    group, member, outsider = operators
    host: SupzHost = make_host("--socket-group", group)
    try:
        host.add("app1", sleep_program("app1"))
        stop = host.supzcli("stop", "app1", user=member)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert stop.stdout.strip() == "app1: stopped and parked"
        assert (host.paths.parked / "app1.conf").exists()
        start = host.supzcli("start", "app1", user=member)
        assert start.returncode == 0, start.stdout + start.stderr
        assert host.states() == {"app1:app1": "RUNNING"}
        assert [line["user"] for line in host.audit_lines()[-2:]] == [member, member]

        denied = host.supzcli("stop", "app1", user=outsider)
        assert denied.returncode != 0
        assert host.states() == {"app1:app1": "RUNNING"}
        # The registry itself stays out of reach of both: only the socket is shared.
        for user in (member, outsider):
            for target in (host.paths.active / "intruder.conf", host.paths.manifest):
                wrote = _as_user(user, "sh", "-c", 'echo "[program:intruder]" >> "$1"', "sh", str(target))
                assert wrote.returncode != 0, f"{user} could write {target}"
            assert not (host.paths.active / "intruder.conf").exists()
        assert oct(host.paths.registry.stat().st_mode & 0o777) == "0o750"
        assert oct(host.paths.registry_versions.stat().st_mode & 0o777) == "0o750"
    finally:
        destroy_host(host)
