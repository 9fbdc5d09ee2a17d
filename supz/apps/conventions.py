"""The conventions every application directory follows, in one place for the templates and lint.

A: the program is named after its directory.
B: a multi-instance program numbers its processes NAME_01, NAME_02, ...
C: releases live in DIR/releases/VERSION; DIR/current links to the running one; the program
   runs from DIR/current (DIR/previous links to the one before, for rollback).
D: logs go to the host's log folder for applications, apps/, as NAME.out.log and NAME.err.log
   (NAME@NN.out.log ... for instance NN), with rotation set. Flat, in a folder `supz init` makes
   on every host: supervisord refuses to start when a program's log folder is missing, so a
   per-application folder absent on one host (a standby) would take all of it down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from supz.errors import ConfigError, InvalidName
from supz.names import MAX_NAME_LENGTH, name_problem
from supz.paths import HostPaths
from supz.programfile import ProgramSpec, read_program_file

PROGRAM_FILE = "program.ini"
RUN_SCRIPT = "sup_run.sh"
RELEASES = "releases"
CURRENT = "current"
PREVIOUS = "previous"
LOCK = ".sup_run.lock"
# Two digits of process number: NAME_01 .. NAME_99.
MAX_INSTANCES = 99
INSTANCE_SUFFIX = len("_01")


@dataclass(frozen=True)
class AppLayout:
    """Where everything of one application directory is (the directory itself is absolute)."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def program_ini(self) -> Path:
        return self.path / PROGRAM_FILE

    @property
    def sup_run(self) -> Path:
        return self.path / RUN_SCRIPT

    @property
    def releases(self) -> Path:
        return self.path / RELEASES

    @property
    def current(self) -> Path:
        return self.path / CURRENT

    @property
    def previous(self) -> Path:
        return self.path / PREVIOUS

    @property
    def lock(self) -> Path:
        return self.path / LOCK

    def release(self, version: str) -> Path:
        return self.releases / version

    def checked(self) -> AppLayout:
        """This layout, or InvalidName when the directory's name cannot be a program name (A)."""
        problem = name_problem(self.name)
        if problem is not None:
            raise InvalidName(
                f"{self.path}: the directory's name {self.name!r} is the program name, and it {problem}",
                thing=str(self.path),
            )
        return self


def app_layout(directory: str | os.PathLike[str]) -> AppLayout:
    """The layout of `directory`, made absolute without resolving symlinks (its name is the program's)."""
    text = os.fspath(directory)
    if not text.strip():
        raise ConfigError("no application directory given")
    return AppLayout(Path(os.path.abspath(text)))


def process_names(name: str, numprocs: int) -> list[str]:
    """Convention B: NAME alone, or NAME_01 .. NAME_NN."""
    if numprocs <= 1:
        return [name]
    return [f"{name}_{number:02d}" for number in range(1, numprocs + 1)]


def instances_problem(name: str, numprocs: int) -> str | None:
    """Why `numprocs` instances of `name` cannot follow convention B, or None."""
    if numprocs < 1 or numprocs > MAX_INSTANCES:
        return f"numprocs must be between 1 and {MAX_INSTANCES}"
    if numprocs > 1 and len(name) + INSTANCE_SUFFIX > MAX_NAME_LENGTH:
        return (f"a multi-instance name may hold at most {MAX_NAME_LENGTH - INSTANCE_SUFFIX} characters, "
                f"so that {name}_01 is a valid process name")
    return None


def log_files(paths: HostPaths, name: str, process: str) -> tuple[Path, Path]:
    """Convention D: the stdout and stderr logs of `process` of the application `name`."""
    stem = name
    if process != name and process.startswith(name + "_"):
        stem = f"{name}@{process[len(name) + 1:]}"
    return paths.app_logs / f"{stem}.out.log", paths.app_logs / f"{stem}.err.log"


def version_problem(version: str) -> str | None:
    """Release versions obey the name rule: no '/', no '..', no white space, no leading '-'."""
    return name_problem(version)


def validate_version(version: str) -> str:
    problem = version_problem(version)
    if problem is not None:
        raise InvalidName(f"invalid release version {version!r}: it {problem}", thing=version)
    return version


def read_program(layout: AppLayout) -> ProgramSpec:
    """DIR/program.ini, validated as the registry entry it becomes (absolute paths, one section)."""
    layout.checked()
    return read_program_file(layout.program_ini, layout.name)


def program_directory(spec: ProgramSpec) -> str | None:
    """The `directory` a program runs in (the same for every process of a group)."""
    configs = spec.group_config.process_configs
    return configs[0].directory if configs else None
