"""`supz app lint`: one finding per broken convention, nothing for a well-kept directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from supz.apps.conventions import AppLayout, app_layout
from supz.apps.lint import lint_app, registered_app_dirs
from supz.apps.releases import switch
from supz.apps.scaffold import AppOptions, init_app
from supz.apps.settings import AppSettings
from supz.paths import HostPaths
from supz.registry import Registry, Who

WHO = Who("root", "root", "h")



def make_app(paths: HostPaths, directory: Path, numprocs: int = 2) -> AppLayout:
    layout = app_layout(directory)
    init_app(paths, layout, AppOptions(command="bin/run", numprocs=numprocs), AppSettings(startsecs=1))
    run = layout.release("1.0") / "bin" / "run"
    run.parent.mkdir(parents=True)
    run.write_text("#!/bin/sh\nexec sleep 1000\n")
    run.chmod(0o755)
    switch(layout, "1.0")
    return layout


def findings(paths: HostPaths, layout: AppLayout, registry: Registry | None = None) -> list[str]:
    return [f.line() for f in lint_app(paths, layout.path, registry)]


def edit(layout: AppLayout, old: str, new: str) -> None:
    text = layout.program_ini.read_text()
    assert old in text
    layout.program_ini.write_text(text.replace(old, new))


def test_a_scaffolded_app_with_a_release_is_clean(paths: HostPaths, tmp_path: Path) -> None:
    layout = make_app(paths, tmp_path / "my apps" / "web")
    assert findings(paths, layout) == []


BREAKAGES: list[tuple[str, Callable[[AppLayout], None], str]] = [
    ("A", lambda app: edit(app, "[program:web]", "[program:other]"),
     "A: program.ini defines [program:other]; the program is named after its directory ([program:web])"),
    ("B", lambda app: edit(app, "%(program_name)s_%(process_num)02d", "%(program_name)s-%(process_num)d"),
     "B: processes are named web-1, web-2...; instances are numbered web_01, web_02, ..."),
    ("C", lambda app: edit(app, "web/current\n", "web/releases/1.0\n"),
     "C: directory is {dir}/releases/1.0; the program runs from {dir}/current"),
    ("C", lambda app: (app.current.unlink(), app.current.mkdir()),
     "C: current is not a symlink (convention C: it must link to releases/VERSION)"),
    ("current", lambda app: app.current.unlink(), "current: no current link: no release deployed"),
    ("current", lambda app: (app.release("1.0").rename(app.releases / "1.1")),
     "current: current points at releases/1.0, which does not exist"),
    ("D", lambda app: edit(app, "stdout_logfile_maxbytes = 50MB", "stdout_logfile_maxbytes = 0"),
     "D: web_01: stdout log has no rotation"),
    ("D", lambda app: edit(app, "apps/web@%(process_num)02d.err.log", "web_%(process_num)02d.err"),
     "D: web_01: stderr_logfile is {root}/var/log/supz/web_01.err; the standard place is "
     "{root}/var/log/supz/apps/web@01.err.log"),
    ("command", lambda app: (app.release("1.0") / "bin" / "run").chmod(0o644),
     "command: {dir}/current/bin/run is not an executable file"),
    ("command", lambda app: (app.release("1.0") / "bin" / "run").unlink(),
     "command: {dir}/current/bin/run does not exist"),
    ("program", lambda app: edit(app, "startsecs = 1", "startsecs = soon"), "program: program.ini: line "),
    ("script", lambda app: app.sup_run.chmod(0o644), "script: sup_run.sh is not executable"),
]


@pytest.mark.parametrize(("rule", "breakage", "expected"), BREAKAGES,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BREAKAGES)])
def test_each_broken_convention_is_one_finding(paths: HostPaths, tmp_path: Path, rule: str,
                                              breakage: Callable[[AppLayout], None], expected: str) -> None:
    layout = make_app(paths, tmp_path / "srv" / "web")
    breakage(layout)
    lines = findings(paths, layout)
    wanted = f"{layout.path}: " + expected.format(dir=layout.path, root=paths.root)
    assert [line for line in lines if line.startswith(wanted)], lines
    assert all(line.split(": ")[1] == rule for line in lines if not line.endswith("(warning)")), lines


def test_a_directory_name_that_is_no_program_name(paths: HostPaths, tmp_path: Path) -> None:
    layout = app_layout(tmp_path / "bad app")
    layout.path.mkdir()
    lines = findings(paths, layout)
    assert lines[0].startswith(f"{layout.path}: A: the directory's name 'bad app' is the program name")
    assert f"{layout.path}: program: no program.ini ('supz app init' writes it)" in lines


def test_registry_differences_are_reported(paths: HostPaths, tmp_path: Path) -> None:
    registry = Registry(paths, host="h")
    layout = make_app(paths, tmp_path / "web")
    registry.add("web", layout.program_ini.read_text(), who=WHO)
    assert findings(paths, layout, registry) == []
    edit(layout, "startretries = 3", "startretries = 4")
    assert findings(paths, layout, registry) == [
        f"{layout.path}: registry: program.ini differs from the active registry entry "
        "('./sup_run.sh update' applies it) (warning)"
    ]
    twin = make_app(paths, tmp_path / "elsewhere" / "web")
    assert findings(paths, twin, registry)[0].startswith(
        f"{twin.path}: registry: the registry entry web runs from {layout.current}")


def test_registered_app_dirs_skips_plain_entries(paths: HostPaths, tmp_path: Path) -> None:
    registry = Registry(paths, host="h")
    web = make_app(paths, tmp_path / "web")
    registry.add("web", web.program_ini.read_text(), who=WHO)
    registry.add("plain", "[program:plain]\ncommand = /bin/sleep 100\n", who=WHO)
    dirs, notes = registered_app_dirs(registry)
    assert dirs == [web.path]
    assert notes == ["registry entry plain: skipped: not run from an application's current/ (active)"]
    assert os.path.isdir(dirs[0])
