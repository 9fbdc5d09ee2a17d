"""`supz registry ...` and `supz app ...` in-process with click's CliRunner: what a user reads
and the exact exit code, on a host laid out by `supz init` whose supervisord is not running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirun import Ran, run_supz


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    assert supz(root, "init", "--host", "h1").code == 0
    return root


def supz(root: Path, *args: str) -> Ran:
    return run_supz(["--root", str(root), *args])


def program(tmp_path: Path, name: str, extra: str = "") -> Path:
    path = tmp_path / f"{name}.conf"
    path.write_text(f"[program:{name}]\ncommand = /bin/sleep 100\n{extra}")
    return path


def test_registry_add_with_supervisord_down_registers_and_says_so_on_stderr(root: Path, tmp_path: Path) -> None:
    added = supz(root, "registry", "add", str(program(tmp_path, "svc")))
    assert (added.code, added.out) == (0, "svc: active in the registry (generation 1)\n")
    assert added.err == "svc: supervisord is not running; it starts with supervisord\n"
    again = supz(root, "registry", "add", str(program(tmp_path, "svc")))
    assert again.code == 1 and again.err == "supz: error: svc: already an active entry; use --replace to change it\n"
    listed = supz(root, "registry", "list", "--json")
    assert listed.code == 0 and json.loads(listed.out)["active"] == ["svc"]
    history = supz(root, "registry", "history")
    assert history.code == 0 and "registry add" in history.out and "[ok] gen 0->1" in history.out


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "a b"], "a b"),
    (["--name", "../x"], "../x"),
    ([], "autostart=false"),
])
def test_registry_add_bad_input_exits_2_and_changes_nothing(root: Path, tmp_path: Path, args: list[str],
                                                            message: str) -> None:
    file = program(tmp_path, "svc", "autostart = false\n" if not args else "")
    refused = supz(root, "registry", "add", str(file), *args)
    assert refused.code == 2 and message in refused.err and refused.err.startswith("supz: error: ")
    assert json.loads(supz(root, "registry", "list", "--json").out)["generation"] == 0


def test_registry_add_of_a_malformed_file_names_its_line(root: Path, tmp_path: Path) -> None:
    bad = program(tmp_path, "bad", "numprocs = many\n")
    refused = supz(root, "registry", "add", str(bad))
    assert refused.code == 2 and str(bad) in refused.err


def test_registry_add_of_a_missing_file_exits_2(root: Path, tmp_path: Path) -> None:
    missing = supz(root, "registry", "add", str(tmp_path / "nowhere.conf"))
    assert missing.code == 2 and "nowhere.conf" in missing.err


def test_an_unknown_subcommand_or_option_exits_2(root: Path) -> None:
    assert supz(root, "registry", "frobnicate").code == 2
    assert supz(root, "registry", "list", "--yaml").code == 2
    assert supz(root, "app", "launch", "x").code == 2


@pytest.fixture
def app_dir(root: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "apps" / "web"
    assert supz(root, "app", "init", str(directory), "--command", "bin/run").code == 0
    (directory / "releases" / "1.0").mkdir(parents=True)
    (directory / "current").symlink_to("releases/1.0")
    return directory


@pytest.mark.parametrize("action", ["start", "stop", "restart", "update", "status"])
def test_app_actions_with_supervisord_down_exit_7(root: Path, app_dir: Path, action: str) -> None:
    ran = supz(root, "app", action, str(app_dir))
    assert ran.code == 7, ran.out + ran.err
    assert ran.err.startswith("supz: error: supervisord is not running")


def test_app_actions_refused_by_the_policy_exit_4(root: Path, app_dir: Path) -> None:
    config = root / "etc" / "supz" / "supz.conf"
    text = config.read_text()
    assert "refuse = shutdown, reload" in text
    config.write_text(text.replace("refuse = shutdown, reload", "refuse = shutdown, reload, stop"))
    ran = supz(root, "app", "stop", str(app_dir))
    assert ran.code == 4 and "'stop' is disabled by the supz policy" in ran.err


def test_app_errors_on_a_directory_exit_2(root: Path, tmp_path: Path, app_dir: Path) -> None:
    nothing = supz(root, "app", "start", str(tmp_path / "nothing"))
    assert nothing.code == 2 and nothing.err.startswith("supz: error: ")
    (app_dir / "current").unlink()
    unreleased = supz(root, "app", "start", str(app_dir))
    assert unreleased.code == 2 and "no release deployed" in unreleased.err
    assert supz(root, "app", "deploy", str(app_dir), "9.9").code == 2
    assert supz(root, "app", "lint").code == 2
    assert supz(root, "app", "init", str(tmp_path / "other"), "--command", "x", "--numprocs", "0").code == 2
