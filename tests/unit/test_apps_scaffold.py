"""`supz app init`: what program.ini and sup_run.sh say, for ordinary and edge-of-the-rules input."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from supz.apps import scaffold
from supz.apps.conventions import app_layout
from supz.apps.scaffold import AppOptions, init_app, parse_env
from supz.apps.settings import AppSettings
from supz.errors import ConfigError, EntryExists, InvalidName, InvalidProgramFile
from supz.paths import HostPaths
from supz.programfile import read_program_file

SETTINGS = AppSettings(startsecs=1)


@pytest.fixture
def paths(tmp_path: Path) -> HostPaths:
    host = HostPaths(tmp_path / "root")
    host.app_logs.mkdir(parents=True)
    return host


def init(paths: HostPaths, directory: Path, **options: object) -> None:
    options.setdefault("command", "bin/run")
    init_app(paths, app_layout(directory), AppOptions(**options), SETTINGS)  # type: ignore[arg-type]


def processes(path: Path, name: str) -> list:  # type: ignore[type-arg]
    return read_program_file(path, name).group_config.process_configs


def test_a_two_instance_app_in_a_folder_with_spaces(paths: HostPaths, tmp_path: Path) -> None:
    app = tmp_path / "my apps" / "web"
    init(paths, app, command="bin/run --title 'a b' 50%", numprocs=2, env=parse_env(["MODE=prod ready"]))
    configs = processes(app / "program.ini", "web")
    assert [p.name for p in configs] == ["web_01", "web_02"]
    for process in configs:
        assert shlex.split(process.command) == [f"{app}/current/bin/run", "--title", "a b", "50%"]
        assert process.directory == f"{app}/current"
        assert process.environment == {"MODE": "prod ready"}
        assert process.autostart is True
        assert process.stdout_logfile_maxbytes > 0 and process.stdout_logfile_backups > 0
    assert [p.stdout_logfile for p in configs] == [str(paths.app_logs / "web@01.out.log"),
                                                  str(paths.app_logs / "web@02.out.log")]
    assert (app / "releases").is_dir()
    assert os.access(app / "sup_run.sh", os.X_OK)


def test_an_absolute_program_is_kept(paths: HostPaths, tmp_path: Path) -> None:
    init(paths, tmp_path / "tool", command="/usr/bin/env python3 main.py")
    assert shlex.split(processes(tmp_path / "tool" / "program.ini", "tool")[0].command)[0] == "/usr/bin/env"


def test_names_at_the_edge_of_the_rules(paths: HostPaths, tmp_path: Path) -> None:
    longest = "a" * 64
    init(paths, tmp_path / longest)
    assert processes(tmp_path / longest / "program.ini", longest)[0].name == longest
    multi = "_b.c-" + "d" * 56  # 61 characters: web_01 style names stay within 64
    init(paths, tmp_path / multi, numprocs=3)
    assert processes(tmp_path / multi / "program.ini", multi)[2].name == f"{multi}_03"
    with pytest.raises(ConfigError, match="at most 61 characters"):
        init(paths, tmp_path / ("e" * 62), numprocs=2)


@pytest.mark.parametrize("name", ["my app", "-x", ".hidden", "a;b", "x" * 65])
def test_a_directory_that_cannot_name_a_program_is_refused(paths: HostPaths, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidName):
        init(paths, tmp_path / name)
    assert not (tmp_path / name / "program.ini").exists()


@pytest.mark.parametrize("command", ["", "   ", "bin/run 'unbalanced", "../outside/run", "bin/../../x"])
def test_bad_commands_are_refused(paths: HostPaths, tmp_path: Path, command: str) -> None:
    with pytest.raises(ConfigError):
        init(paths, tmp_path / "app", command=command)
    assert not (tmp_path / "app").exists()


@pytest.mark.parametrize(
    "options",
    [
        {"numprocs": 0},
        {"numprocs": 100},
        {"env": (("BAD NAME", "x"),)},
        {"health_url": "file:///etc/passwd"},
        {"health_url": "http://127.0.0.1/", "health_cmd": "true"},
        {"health_cmd": "check 'unbalanced"},
    ],
)
def test_bad_options_write_nothing(paths: HostPaths, tmp_path: Path, options: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError):
        init(paths, tmp_path / "app", **options)
    assert not (tmp_path / "app" / "program.ini").exists()


def test_an_unknown_user_is_refused_with_its_line(paths: HostPaths, tmp_path: Path) -> None:
    with pytest.raises(InvalidProgramFile, match=r"line \d+"):
        init(paths, tmp_path / "app", user="no-such-user-here")


def test_env_words_need_an_equal_sign() -> None:
    assert parse_env(["A=1", "B==x", "C="]) == (("A", "1"), ("B", "=x"), ("C", ""))
    with pytest.raises(ConfigError):
        parse_env(["JUSTNAME"])


def test_existing_files_are_kept_unless_forced(paths: HostPaths, tmp_path: Path) -> None:
    init(paths, tmp_path / "app")
    with pytest.raises(EntryExists):
        init(paths, tmp_path / "app", command="bin/other")
    assert "bin/run" in (tmp_path / "app" / "program.ini").read_text()
    init_app(paths, app_layout(tmp_path / "app"), AppOptions(command="bin/other"), SETTINGS, force=True)
    assert "bin/other" in (tmp_path / "app" / "program.ini").read_text()


def test_a_host_template_overrides_the_packaged_one(paths: HostPaths, tmp_path: Path) -> None:
    packaged = scaffold.render_program(paths, app_layout(tmp_path / "a"), AppOptions(command="bin/run"), SETTINGS)
    paths.template_overrides.mkdir(parents=True)
    (paths.template_overrides / "program.ini.j2").write_text("; site rules\n" + packaged.replace("autostart = true",
                                                                                                  "autostart = false"))
    with pytest.raises(ConfigError, match="autostart"):
        init(paths, tmp_path / "a")


def fake_supz(folder: Path) -> Path:
    """A stand-in for supz that prints the arguments it got, one per line."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "supz"
    script.write_text('#!/bin/sh\nfor arg in "$@"; do printf "[%s]\\n" "$arg"; done\n')
    script.chmod(0o755)
    return script


def run_script(app: Path, *args: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(app / "sup_run.sh"), *args], capture_output=True, text=True,
                          env={"PATH": path}, check=False)


def test_sup_run_passes_every_value_as_one_word(paths: HostPaths, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    supz = fake_supz(tmp_path / "bin dir")
    monkeypatch.setattr(scaffold, "supz_executable", lambda: str(supz))
    app = tmp_path / "it's my $app" / "web"
    init(paths, app, health_cmd="check --name 'a b' \"$HOME\"")
    out = run_script(app, "deploy", "1.2", "--yes")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[--root]", f"[{paths.root}]", "[app]", "[deploy]", f"[{app}]", "[1.2]", "[--yes]",
        "[--health-cmd]", "[check --name 'a b' \"$HOME\"]",
    ]
    assert run_script(app, "status").stdout.splitlines()[3:] == ["[status]", f"[{app}]"]


def test_sup_run_usage_and_fallbacks(paths: HostPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scaffold, "supz_executable", lambda: str(tmp_path / "gone" / "supz"))
    app = tmp_path / "web"
    init(paths, app)
    for args in ([], ["help"], ["frobnicate"], ["deploy"]):
        out = run_script(app, *args)
        assert out.returncode == 2, args
        assert "usage: sup_run.sh" in out.stderr
    assert "unknown action 'frobnicate'" in run_script(app, "frobnicate").stderr
    missing = run_script(app, "status")
    assert missing.returncode == 5 and "supz not found" in missing.stderr
    on_path = fake_supz(tmp_path / "path")
    assert run_script(app, "status", path=f"{on_path.parent}:/usr/bin:/bin").stdout.startswith("[--root]")


def _program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexec sleep 1000\n")
    path.chmod(0o755)
    return path


def test_a_program_path_with_spaces_is_one_word(paths: HostPaths, tmp_path: Path) -> None:
    program = _program(tmp_path / "my tools" / "run server")
    init(paths, tmp_path / "tool", command=str(program))
    assert shlex.split(processes(tmp_path / "tool" / "program.ini", "tool")[0].command) == [str(program)]


def test_a_program_with_spaces_inside_the_release_is_one_word(paths: HostPaths, tmp_path: Path) -> None:
    app = tmp_path / "app"
    _program(app / "releases" / "1.0" / "bin" / "my server")
    (app / "current").symlink_to("releases/1.0")
    init(paths, app, command="bin/my server")
    assert shlex.split(processes(app / "program.ini", "app")[0].command) == [f"{app}/current/bin/my server"]


def test_an_unquoted_path_with_spaces_and_arguments_is_refused_with_the_line_that_works(
        paths: HostPaths, tmp_path: Path) -> None:
    program = _program(tmp_path / "my tools" / "run")
    with pytest.raises(ConfigError, match="quote a path with spaces") as refused:
        init(paths, tmp_path / "tool", command=f"{program} --port 80")
    assert f"'{program}' --port 80" in str(refused.value)
    assert not (tmp_path / "tool" / "program.ini").exists()
    init(paths, tmp_path / "tool", command=f"'{program}' --port 80")
    assert shlex.split(processes(tmp_path / "tool" / "program.ini", "tool")[0].command) == [str(program), "--port",
                                                                                              "80"]
