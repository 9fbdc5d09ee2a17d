"""Standby readiness per entry: what would keep a host from starting an application."""

from __future__ import annotations

import os
from pathlib import Path

from supz.failover.readiness import entry_problems
from supz.programfile import new_server_options


def _entry(command: str, extra: str = "") -> str:
    return f"[program:web]\ncommand = {command}\nstartsecs = 0\n{extra}\n"


def test_an_entry_whose_command_and_directory_exist_is_ready(tmp_path: Path) -> None:
    release = tmp_path / "releases" / "1"
    (release / "bin").mkdir(parents=True)
    run = release / "bin" / "run"
    run.write_text("#!/bin/sh\n")
    run.chmod(0o755)
    (tmp_path / "current").symlink_to(release)
    text = _entry(f"{tmp_path}/current/bin/run --port 80", f"directory = {tmp_path}/current")
    assert entry_problems("host-b", "web", text, new_server_options()) == []


def test_a_deleted_release_a_missing_command_and_an_unknown_user_are_named(tmp_path: Path) -> None:
    options = new_server_options()
    (tmp_path / "current").symlink_to(tmp_path / "releases" / "7")
    [gone] = entry_problems("host-b", "web", _entry(f"{tmp_path}/current/bin/run"), options)
    assert gone.line().startswith("host-b: web: command: release link") and "does not resolve" in gone.line()
    assert "deploy" in gone.fix
    [missing] = entry_problems("host-b", "web", _entry("/nonexistent/bin/run"), options)
    assert "/nonexistent/bin/run does not exist" in missing.what
    plain = tmp_path / "plain"
    plain.write_text("x")
    os.chmod(plain, 0o644)
    [not_x] = entry_problems("host-b", "web", _entry(str(plain)), options)
    assert "is not executable" in not_x.what
    [user] = entry_problems("host-b", "web", _entry("/bin/sleep 1", "user = no-such-user-zz"), options)
    assert "does not parse here" in user.what and "no-such-user-zz" in user.what
    [path] = entry_problems("host-b", "web", _entry("no-such-program-zz"), options)
    assert "not on PATH" in path.what
