"""`supz app lint`: does an application directory follow conventions A-D, can its command run,
and does `current` point at a release? One finding per problem, never an exception."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supz.apps.conventions import (
    CURRENT,
    PREVIOUS,
    PROGRAM_FILE,
    RELEASES,
    RUN_SCRIPT,
    AppLayout,
    app_layout,
    log_files,
    process_names,
)
from supz.apps.releases import link_version
from supz.errors import SupzError
from supz.health.settings import load_health, targets
from supz.names import name_problem
from supz.paths import HostPaths
from supz.programfile import ProgramSpec, parse_program_text
from supz.registry import Registry

_SECTION = re.compile(r"^\s*\[program:([^\]]*)\]", re.MULTILINE)


@dataclass(frozen=True)
class Finding:
    where: str
    rule: str
    message: str
    error: bool = True

    def line(self) -> str:
        return f"{self.where}: {self.rule}: {self.message}" + ("" if self.error else " (warning)")


class _Findings(list):  # type: ignore[type-arg]
    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def add(self, rule: str, message: str, error: bool = True) -> None:
        self.append(Finding(self.where, rule, message, error))


def lint_app(paths: HostPaths, directory: str | os.PathLike[str], registry: Registry | None = None) -> list[Finding]:
    """Every finding for one application directory (an empty list: all is well)."""
    layout = app_layout(directory)
    found = _Findings(str(layout.path))
    if not layout.path.is_dir():
        found.add("dir", "not a directory")
        return list(found)
    problem = name_problem(layout.name)
    if problem is not None:
        found.add("A", f"the directory's name {layout.name!r} is the program name, and it {problem}")
    _check_script(layout, found)
    current_ok = _check_releases(layout, found)
    spec = _read_spec(layout, found)
    if spec is not None:
        _check_spec(paths, layout, spec, found, current_ok)
        if registry is not None:
            _check_registry(layout, spec, registry, found)
    return list(found)


def _check_script(layout: AppLayout, found: _Findings) -> None:
    if not layout.sup_run.is_file():
        found.add("script", f"no {RUN_SCRIPT} ('supz app init' writes it)")
    elif not os.access(layout.sup_run, os.X_OK):
        found.add("script", f"{RUN_SCRIPT} is not executable")


def _check_releases(layout: AppLayout, found: _Findings) -> bool:
    """C and current; True when current points at an existing release."""
    current_ok = False
    if not layout.releases.is_dir():
        found.add("C", f"no {RELEASES}/ folder: releases live in {RELEASES}/VERSION/")
    try:
        current = link_version(layout, layout.current)
    except SupzError as exc:
        found.add("C", str(exc).replace(f"{layout.path}/", ""))
    else:
        if current is None:
            found.add("current", f"no {CURRENT} link: no release deployed")
        elif not layout.release(current).is_dir():
            found.add("current", f"{CURRENT} points at {RELEASES}/{current}, which does not exist")
        else:
            current_ok = True
    try:
        previous = link_version(layout, layout.previous)
    except SupzError as exc:
        found.add("C", str(exc).replace(f"{layout.path}/", ""), error=False)
    else:
        if previous is not None and not layout.release(previous).is_dir():
            found.add("C", f"{PREVIOUS} points at {RELEASES}/{previous}, which does not exist: rollback cannot work",
                      error=False)
    return current_ok


def _read_spec(layout: AppLayout, found: _Findings) -> ProgramSpec | None:
    try:
        text = layout.program_ini.read_text(encoding="utf-8")
    except FileNotFoundError:
        found.add("program", f"no {PROGRAM_FILE} ('supz app init' writes it)")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        found.add("program", f"cannot read {PROGRAM_FILE}: {exc}")
        return None
    sections = _SECTION.findall(text)
    if not sections:
        found.add("program", f"{PROGRAM_FILE} has no [program:NAME] section")
        return None
    declared = sections[0]
    if declared != layout.name:
        found.add("A", f"{PROGRAM_FILE} defines [program:{declared}]; the program is named after its directory "
                       f"([program:{layout.name}])")
    if name_problem(declared) is not None:
        return None
    try:
        return parse_program_text(text, declared, label=PROGRAM_FILE)
    except SupzError as exc:
        found.add("program", str(exc))
        return None


def _check_spec(paths: HostPaths, layout: AppLayout, spec: ProgramSpec, found: _Findings,
                current_ok: bool) -> None:
    processes = spec.group_config.process_configs
    expected = process_names(spec.name, len(processes))
    actual = sorted(spec.process_names)
    if actual != expected:
        if len(processes) > 1:
            found.add("B", f"processes are named {', '.join(actual[:3])}...; instances are numbered "
                           f"{expected[0]}, {expected[1]}, ...")
        else:
            found.add("B", f"the process is named {actual[0]}; a single instance is named {expected[0]}")
    first = processes[0]
    if os.path.normpath(first.directory or "") != str(layout.current):
        found.add("C", f"directory is {first.directory or 'not set'}; the program runs from {layout.current}")
    _check_command(first.command, layout if not current_ok else None, found)
    _check_logs(paths, layout, processes, found)
    _check_health(spec, found)


def _check_health(spec: ProgramSpec, found: _Findings) -> None:
    """The supz_health_* keys make a probe for every process (as the health daemon reads them)."""
    try:
        settings = load_health(spec.text, spec.name)
        if settings is not None:
            targets(spec, settings)
    except SupzError as exc:
        found.add("health", str(exc).removeprefix(f"{spec.name}: "))


def _check_command(command: str, broken: AppLayout | None, found: _Findings) -> None:
    """The program exists and is executable; not checked inside a broken current (already reported)."""
    try:
        program = shlex.split(command)[0]
    except (ValueError, IndexError):
        found.add("command", f"cannot split the command {command!r}")
        return
    if broken is not None and program.startswith(f"{broken.current}/"):
        return
    if "/" not in program:
        if shutil.which(program) is None:
            found.add("command", f"{program} is not found on PATH")
        return
    if not os.path.isabs(program):
        found.add("command", f"{program} is a relative path (supervisor resolves it from its own folder)")
    elif not os.path.exists(program):
        found.add("command", f"{program} does not exist")
    elif not os.path.isfile(program) or not os.access(program, os.X_OK):
        found.add("command", f"{program} is not an executable file")


def _check_logs(paths: HostPaths, layout: AppLayout, processes: list[Any], found: _Findings) -> None:
    """D: every log a file of its own in the host's apps/ folder, named after the application, rotated."""
    seen: set[str] = set()
    prefixes = (f"{layout.name}.", f"{layout.name}@")
    for process in processes:
        for stream in ("stdout", "stderr"):
            if stream == "stderr" and process.redirect_stderr:
                continue
            logfile = getattr(process, f"{stream}_logfile")
            standard = log_files(paths, layout.name, process.name)[stream == "stderr"]
            if not isinstance(logfile, str):
                found.add("D", f"{process.name}: {stream}_logfile is not a file; the standard place is {standard}")
                continue
            if Path(logfile).parent != paths.app_logs or not Path(logfile).name.startswith(prefixes):
                found.add("D", f"{process.name}: {stream}_logfile is {logfile}; the standard place is {standard}")
            elif logfile in seen:
                found.add("D", f"{process.name}: {stream}_logfile {logfile} is shared with another log")
            seen.add(logfile)
            maxbytes = getattr(process, f"{stream}_logfile_maxbytes")
            if maxbytes <= 0 or getattr(process, f"{stream}_logfile_backups") <= 0:
                found.add("D", f"{process.name}: {stream} log has no rotation ({stream}_logfile_maxbytes and "
                               f"{stream}_logfile_backups must be > 0)")


def _check_registry(layout: AppLayout, spec: ProgramSpec, registry: Registry, found: _Findings) -> None:
    """Differences between program.ini and what the registry runs (when this user can read it)."""
    try:
        entry = registry.get(spec.name)
        text = registry.read_text(spec.name)
    except SupzError:
        return
    if text == spec.text:
        return
    try:
        other = parse_program_text(text, spec.name).group_config.process_configs[0].directory
    except SupzError:
        other = None
    if other and os.path.normpath(other) != str(layout.current):
        found.add("registry", f"the registry entry {spec.name} runs from {other}: another application "
                              "directory has this name")
    else:
        found.add("registry", f"program.ini differs from the {entry.state.value} registry entry "
                              "('./sup_run.sh update' applies it)", error=False)


def registered_app_dirs(registry: Registry) -> tuple[list[Path], list[str]]:
    """The application directories of every registry entry (its directory is DIR/current), and
    one note per entry that is not an application directory's."""
    dirs: list[Path] = []
    notes: list[str] = []
    for name, entry in registry.entries().items():
        try:
            text = registry.read_text(name)
            directory = parse_program_text(text, name).group_config.process_configs[0].directory
        except SupzError as exc:
            notes.append(f"registry entry {name}: skipped: {exc}")
            continue
        if not directory or Path(directory).name != CURRENT:
            notes.append(f"registry entry {name}: skipped: not run from an application's {CURRENT}/ "
                         f"({entry.state.value})")
            continue
        app_dir = Path(os.path.normpath(directory)).parent
        if app_dir not in dirs:
            dirs.append(app_dir)
    return dirs, notes
