"""supzcli against a real supervisord: what an operator sees."""

from __future__ import annotations

import json
import os
import pwd

import pytest

from tests.conftest import BIN, SupzHost, sleep_program

BAD_NAMES = ["../x", "a/b", "a b", "$(x)", ";", ".hidden", "-rf", "x" * 65, "a;b", "a|b", "`id`"]


def registry_files(host: SupzHost) -> dict[str, list[str]]:
    return {
        "active": sorted(p.name for p in host.paths.active.iterdir()),
        "parked": sorted(p.name for p in host.paths.parked.iterdir()),
    }


def test_stop_parks_and_survives_a_supervisord_restart(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    host.add("app2", sleep_program("app2"))

    result = host.supzcli("stop", "app1")
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "app1: stopped and parked"
    assert registry_files(host) == {"active": ["app2.conf"], "parked": ["app1.conf"]}

    host.supz("down", check=True)
    host.supz("up", check=True)
    host.wait_for(lambda: host.states().get("app2:app2") == "RUNNING", what="app2 RUNNING")
    assert "app1:app1" not in host.states()
    status = host.supzcli("status")
    assert status.returncode == 3  # something is not running: app1 is parked
    lines = dict(line.split(None, 1) for line in status.stdout.splitlines())
    assert lines["app1"].startswith("PARKED")
    assert lines["app2"].startswith("RUNNING")


def test_start_unparks_and_brings_the_program_back_running(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    host.supzcli("stop", "app1", check=True)
    result = host.supzcli("start", "app1")
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "app1: unparked and started"
    assert host.states() == {"app1:app1": "RUNNING"}
    assert registry_files(host) == {"active": ["app1.conf"], "parked": []}
    # Starting an active, running entry is plain: nothing moves.
    again = host.supzcli("start", "app1")
    assert again.returncode == 0
    assert "already running" in again.stdout


def test_stop_of_one_process_keeps_the_entry_active(host: SupzHost) -> None:
    host.add("web", sleep_program("web", numprocs=2))
    result = host.supzcli("stop", "web:web_01")
    assert result.returncode == 0, result.stdout
    assert "the entry stays active" in result.stdout
    assert registry_files(host)["active"] == ["web.conf"]
    assert host.states() == {"web:web_01": "STOPPED", "web:web_02": "RUNNING"}
    # The whole group parks with GROUP:*.
    host.supzcli("stop", "web:*", check=True)
    assert registry_files(host) == {"active": [], "parked": ["web.conf"]}


def test_restart_never_changes_the_registry(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    before = host.supz("registry", "list", "--json", check=True).stdout
    pid_before = host.pid_of("app1")
    result = host.supzcli("restart", "app1")
    assert result.returncode == 0, result.stdout
    assert host.supz("registry", "list", "--json", check=True).stdout == before
    assert host.states() == {"app1:app1": "RUNNING"}
    assert host.pid_of("app1") != pid_before


@pytest.mark.parametrize("command", ["shutdown", "reload"])
def test_dangerous_commands_are_refused_and_supervisord_untouched(host: SupzHost, command: str) -> None:
    host.add("app1", sleep_program("app1"))
    pid = host.supervisord_pid()
    result = host.supzcli(command)
    assert result.returncode == 4
    assert "refused" in result.stdout and "policy" in result.stdout
    assert host.supervisord_pid() == pid
    assert host.states() == {"app1:app1": "RUNNING"}


def test_mass_stop_needs_yes_in_one_shot_and_a_typed_yes_in_the_shell(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    host.add("app2", sleep_program("app2"))
    refused = host.supzcli("stop", "all")
    assert refused.returncode == 4 and "--yes" in refused.stdout
    assert registry_files(host)["parked"] == []

    shell = host.supzcli(input="stop all\nno\n")
    assert "not confirmed" in shell.stdout
    assert registry_files(host)["parked"] == []

    shell = host.supzcli(input="stop all\nyes\n")
    assert "app1: stopped and parked" in shell.stdout
    assert registry_files(host) == {"active": [], "parked": ["app1.conf", "app2.conf"]}

    done = host.supzcli("start", "app1", "app2")
    assert done.returncode == 0
    removed = host.supzcli("remove", "app2", "--yes")
    assert removed.returncode == 0, removed.stdout
    assert registry_files(host) == {"active": ["app1.conf"], "parked": []}
    kept = list((host.paths.lib / "removed").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith("app2.")


def test_shell_shows_banner_prompt_and_farewell(host: SupzHost) -> None:
    host.paths.config_file.write_text(
        host.paths.config_file.read_text()
        .replace("prompt = supz@", "prompt = ops@")
        .replace("farewell = bye from {host}", "farewell = see you on {host}")
    )
    shell = host.supzcli(input="status\n")
    assert "supz shell on" in shell.stdout
    assert f"ops@{host.root.name}>" in shell.stdout
    assert f"see you on {host.root.name}" in shell.stdout


def test_bad_names_are_refused_and_nothing_is_touched(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    before = (registry_files(host), host.paths.manifest.read_text())
    program = host.root / "prog.conf"
    program.write_text(sleep_program("okname"))
    for bad in BAD_NAMES:
        for command in ("stop", "start"):
            result = host.supzcli(command, bad)
            assert result.returncode == 2, (command, bad, result.stdout)
            assert len(result.stdout.strip().splitlines()) <= 2, result.stdout
        result = host.supz("registry", "add", str(program), "--name", bad)
        assert result.returncode == 2, (bad, result.stderr)
        assert result.stderr.count("\n") == 1 and "invalid program name" in result.stderr
    assert (registry_files(host), host.paths.manifest.read_text()) == before
    assert host.states() == {"app1:app1": "RUNNING"}
    assert not any(line["command"] in ("stop", "start") for line in host.audit_lines())


def test_unknown_name_changes_nothing(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    before = host.paths.manifest.read_text()
    result = host.supzcli("stop", "app1", "ghost")
    assert result.returncode == 2
    assert result.stdout.strip() == "ghost: ERROR (no such process or application)"
    assert host.paths.manifest.read_text() == before
    assert host.states() == {"app1:app1": "RUNNING"}


def test_update_applies_changed_entries_and_reports_malformed_ones(host: SupzHost) -> None:
    host.add("good", sleep_program("good"))
    host.add("bad", sleep_program("bad"))
    pid = host.pid_of("bad")
    # Edited in place (as a sync or an operator with root would), one badly.
    (host.paths.active / "good.conf").write_text(sleep_program("good", numprocs=2))
    (host.paths.active / "bad.conf").write_text("[program:bad]\ncommand = /bin/sleep 100000\nstartsecs = soon\n")
    result = host.supzcli("update")
    assert result.returncode == 1
    assert "good: updated" in result.stdout
    assert "bad: ERROR (invalid" in result.stdout and "line 3" in result.stdout
    states = host.states()
    assert states["good:good_01"] == states["good:good_02"] == "RUNNING"
    # The malformed entry's running version keeps running.
    assert host.pid_of("bad") == pid


def test_status_and_avail_show_parked(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    host.supzcli("stop", "app1", check=True)
    status = host.supzcli("status", "app1")
    assert status.returncode == 3
    assert status.stdout.split()[:2] == ["app1", "PARKED"]
    avail = host.supzcli("avail")
    assert any(line.split()[:2] == ["app1", "parked"] for line in avail.stdout.splitlines())
    unknown = host.supzcli("status", "ghost")
    assert unknown.returncode == 2  # a name that does not exist (was 4 before issue 9)


def test_stop_of_a_program_ignoring_sigterm_ends_within_stopwaitsecs(host: SupzHost) -> None:
    host.add(
        "stubborn",
        "[program:stubborn]\ncommand = /bin/sh -c 'trap \"\" TERM; while :; do sleep 0.2; done'\n"
        "startsecs = 0\nstopwaitsecs = 1\nkillasgroup = true\n",
    )
    result = host.supzcli("stop", "stubborn")
    assert result.returncode == 0, result.stdout
    assert "stopped and parked" in result.stdout


def test_every_change_has_one_audit_line(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    count = len(host.audit_lines())
    host.supzcli("stop", "app1", check=True)
    host.supzcli("start", "app1", check=True)
    host.supzcli("restart", "app1", check=True)
    lines = host.audit_lines()[count:]
    assert [(line["command"], line["args"]) for line in lines] == [
        ("stop", ["app1"]),
        ("start", ["app1"]),
        ("restart", ["app1"]),
    ]
    stop = lines[0]
    assert stop["generation_after"] == stop["generation_before"] + 1
    # The socket peer's user: whoever runs the suite.
    assert stop["user"] == pwd.getpwuid(os.geteuid()).pw_name
    assert stop["host"] == host.root.name and stop["result"] == "ok"
    local = host.supz("registry", "history", "--local", "--json", check=True).stdout.splitlines()
    assert [json.loads(line)["command"] for line in local[-3:]] == ["stop", "start", "restart"]
    # The registry's own history has the changes only (a restart changes nothing in it).
    history = host.supz("registry", "history", "--json", check=True).stdout.splitlines()
    assert [json.loads(line)["command"] for line in history[-3:]] == ["registry add", "stop", "start"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: behind sudo the client is root")
def test_audit_names_the_real_user_behind_sudo(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    host.extra_env["SUDO_USER"] = "alice"
    host.supzcli("stop", "app1", check=True)
    last = host.audit_lines()[-1]
    assert last["real_user"] == "alice" and last["user"] == "root"


def _read_until(fd: int, marker: bytes, deadline: float) -> bytes:
    import os
    import select
    import time

    seen = b""
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} from the shell; it said: {seen!r}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the shell closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_the_shell_keeps_its_history_in_the_home_folder(host: SupzHost) -> None:
    """On a terminal, the commands typed are saved in ~/.supzcli_history and read back next time."""
    import os
    import pty
    import time

    history = host.root / ".supzcli_history"  # the host's HOME
    for command in ("help", "avail"):
        pid, fd = pty.fork()
        if pid == 0:  # the child: supzcli on the pty
            os.execve(str(BIN / "supzcli"), ["supzcli"], host.env)
        try:
            deadline = time.monotonic() + 60
            prompt = f"supz@{host.root.name}>".encode()
            _read_until(fd, prompt, deadline)
            os.write(fd, command.encode() + b"\n")
            _read_until(fd, prompt, deadline)
            os.write(fd, b"quit\n")
            _read_until(fd, b"bye", deadline)
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        assert os.waitstatus_to_exitcode(status) == 0
    assert history.read_text().split() == ["help", "quit", "avail", "quit"]


def test_status_json_has_the_text_forms_exit_codes(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    running = host.supzcli("status", "--json", "app1")
    assert running.returncode == 0, running.stdout
    data = json.loads(running.stdout)
    assert [(p["name"], p["state"]) for p in data["processes"]] == [("app1", "RUNNING")]
    assert data["exit_code"] == 0 and data["missing"] == []
    host.supzcli("stop", "app1", check=True)
    parked = host.supzcli("status", "--json", "app1")
    assert parked.returncode == 3 and json.loads(parked.stdout)["processes"][0]["state"] == "PARKED"
    unknown = host.supzcli("status", "--json", "ghost")
    assert unknown.returncode == 2 and json.loads(unknown.stdout)["missing"] == ["ghost"]
