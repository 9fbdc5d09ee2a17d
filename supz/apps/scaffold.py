"""`supz app init`: render an application directory's program.ini and sup_run.sh.

The rendered program.ini is read back with supervisor's own parser before it is written, and
must give back the exact command, directory and environment asked for: quoting is proven,
not hoped for (paths with spaces, quotes, '%', ';' in arguments).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from supz.apps.conventions import AppLayout, instances_problem, process_names
from supz.apps.health import command_argv, validate_url
from supz.apps.settings import AppSettings
from supz.errors import ConfigError, EntryExists, StorageError
from supz.executables import supz_executable
from supz.fsutil import atomic_write
from supz.health.settings import KEYS as HEALTH_KEYS
from supz.health.settings import PREFIX as HEALTH_PREFIX
from supz.health.settings import load_health, raw_keys, targets
from supz.paths import HostPaths
from supz.programfile import parse_program_text
from supz.quoting import split_command, supervisor_value
from supz.templating import render

PROGRAM_TEMPLATE = "program.ini.j2"
RUN_TEMPLATE = "sup_run.sh.j2"


@dataclass(frozen=True)
class AppOptions:
    """What `supz app init` was asked for."""

    command: str
    numprocs: int = 1
    user: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    health_url: str | None = None
    health_cmd: str | None = None
    startsecs: int | None = None
    stopwaitsecs: int | None = None
    # supz_health_* settings for the health daemon, (KEY, VALUE) in supervisor's syntax
    health: tuple[tuple[str, str], ...] = ()


@dataclass
class InitReport:
    lines: list[str] = field(default_factory=list)


def parse_env(pairs: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """`K=V` words into pairs; a word without '=' or with an empty name is refused."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env {pair!r}: expected NAME=VALUE", thing=pair)
        result[key] = value
    return tuple(result.items())


def _program_path(layout: AppLayout, program: str) -> Path:
    """Where a program word points: itself when absolute, else inside the release (C)."""
    if os.path.isabs(program):
        return Path(program)
    relative = PurePosixPath(program)
    if ".." in relative.parts:
        raise ConfigError(f"--command {program!r}: a program inside the release may not use '..'", thing=program)
    return layout.current / relative


def _existing_file(layout: AppLayout, program: str) -> Path | None:
    try:
        path = _program_path(layout, program) if program else None
    except ConfigError:
        return None
    return path if path is not None and path.is_file() else None


def parse_health(pairs: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """`--health KEY=VALUE` words (KEY: url, tcp, cmd, fails, exhausted...) into pairs."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower().replace("-", "_")
        if key.startswith(HEALTH_PREFIX):
            key = key[len(HEALTH_PREFIX):]
        if not sep or key not in HEALTH_KEYS:
            raise ConfigError(f"--health {pair!r}: expected KEY=VALUE with KEY one of {', '.join(HEALTH_KEYS)}",
                              thing=pair)
        result[key] = value.strip()
    return tuple(result.items())


def _health_lines(options: AppOptions) -> list[str]:
    """`supz_health_KEY = VALUE` lines; values are supervisor syntax (`%(process_num)02d` expands,
    a literal % is %%), so only what no syntax survives is refused."""
    lines = []
    for key, value in options.health:
        supervisor_value(value.replace("%", ""), f"--health {key}")
        lines.append(f"{HEALTH_PREFIX}{key} = {value}")
    return lines


def program_argv(layout: AppLayout, command: str) -> list[str]:
    """The command's argument list; a relative program is a path inside the release (C).

    The command is a line split as supervisor splits it (quote a word that holds spaces). A value
    that as a whole names an existing file is that one program, spaces and all; an unquoted path
    with spaces followed by arguments is refused with the line that works, not left to fail at start.
    """
    whole = _existing_file(layout, command.strip())
    if whole is not None:
        return [str(whole)]
    words = split_command(command, "--command")
    argv = [str(_program_path(layout, words[0])), *words[1:]]
    if not Path(argv[0]).exists():
        for end in range(len(words), 1, -1):
            candidate = " ".join(words[:end])
            if _existing_file(layout, candidate) is not None:
                line = shlex.join([candidate, *words[end:]])
                raise ConfigError(f"--command {command!r}: there is no program {words[0]!r}, but there is "
                                  f"{candidate!r}: quote a path with spaces, as in the command line {line}",
                                  thing=words[0])
    return argv


def render_program(paths: HostPaths, layout: AppLayout, options: AppOptions, settings: AppSettings) -> str:
    """program.ini's text, proven to read back as asked (else ConfigError / InvalidProgramFile)."""
    layout.checked()
    problem = instances_problem(layout.name, options.numprocs)
    if problem is not None:
        raise ConfigError(f"{layout.name}: {problem}", thing=layout.name)
    argv = program_argv(layout, options.command)
    env = dict(options.env)
    text = render(
        PROGRAM_TEMPLATE,
        paths,
        app=layout.name,
        argv=argv,
        current=str(layout.current),
        numprocs=options.numprocs,
        user=options.user,
        env=env,
        startsecs=settings.startsecs if options.startsecs is None else options.startsecs,
        stopwaitsecs=settings.stopwaitsecs if options.stopwaitsecs is None else options.stopwaitsecs,
        log_dir=str(paths.app_logs),
        log_maxbytes=settings.log_maxbytes,
        log_backups=settings.log_backups,
        health_lines=_health_lines(options),
    )
    spec = parse_program_text(text, layout.name, label=str(layout.program_ini))
    if options.health:
        # The health settings must read back as given and make a probe for every process.
        if raw_keys(text, layout.name) != dict(options.health):
            raise ConfigError(f"{PROGRAM_TEMPLATE}: the health settings do not read back as given",
                              thing=PROGRAM_TEMPLATE)
        health = load_health(text, layout.name)
        if health is not None:
            targets(spec, health)
    expected = process_names(layout.name, options.numprocs)
    if list(spec.process_names) != expected:
        raise ConfigError(f"{PROGRAM_TEMPLATE}: processes {list(spec.process_names)} break convention B "
                          f"(expected {expected})", thing=PROGRAM_TEMPLATE)
    for process in spec.group_config.process_configs:
        if shlex.split(process.command) != argv:
            raise ConfigError(f"{PROGRAM_TEMPLATE}: the command does not read back as {argv}", thing=PROGRAM_TEMPLATE)
        if process.directory != str(layout.current):
            raise ConfigError(f"{PROGRAM_TEMPLATE}: directory does not read back as {layout.current}",
                              thing=PROGRAM_TEMPLATE)
        if (process.environment or {}) != env:
            raise ConfigError(f"{PROGRAM_TEMPLATE}: the environment does not read back as given",
                              thing=PROGRAM_TEMPLATE)
    if not spec.autostart:
        raise ConfigError(f"{PROGRAM_TEMPLATE}: autostart must stay true (a parked entry is how an "
                          "application stays stopped)", thing=PROGRAM_TEMPLATE)
    return text


def render_sup_run(paths: HostPaths, layout: AppLayout, options: AppOptions) -> str:
    if options.health_url and options.health_cmd:
        raise ConfigError("give a health URL or a health command, not both")
    if options.health_url:
        validate_url(options.health_url)
    if options.health_cmd:
        command_argv(options.health_cmd)
    for value in (options.health_url, options.health_cmd, str(layout.path)):
        if value and any(ch in value for ch in "\n\r\0"):
            raise ConfigError(f"{value!r} holds a line break or NUL", thing=value)
    return render(
        RUN_TEMPLATE,
        paths,
        app=layout.name,
        app_dir=str(layout.path),
        supz=str(supz_executable()),
        health_url=options.health_url or "",
        health_cmd=options.health_cmd or "",
    )


def init_app(paths: HostPaths, layout: AppLayout, options: AppOptions, settings: AppSettings,
             *, force: bool = False) -> InitReport:
    """Write DIR/program.ini and DIR/sup_run.sh (and the releases and log folders).

    Everything is rendered and checked first: a refused value writes nothing.
    """
    program = render_program(paths, layout, options, settings)
    script = render_sup_run(paths, layout, options)
    if not force:
        for path in (layout.program_ini, layout.sup_run):
            if path.exists():
                raise EntryExists(f"{path} exists: use --force to render it again", thing=str(path))
    report = InitReport()
    try:
        for folder in (layout.path, layout.releases):
            if not folder.is_dir():
                folder.mkdir(parents=True)
                report.lines.append(f"created {folder}/")
    except OSError as exc:
        raise StorageError(f"cannot create {exc.filename}: {exc.strerror}", thing=str(exc.filename)) from exc
    atomic_write(layout.program_ini, program, mode=0o644)
    report.lines.append(f"wrote {layout.program_ini}")
    atomic_write(layout.sup_run, script, mode=0o755)
    report.lines.append(f"wrote {layout.sup_run}")
    if not layout.current.exists():
        report.lines.append(f"next: put a release in {layout.releases}/VERSION/, then "
                            f"'./sup_run.sh deploy VERSION' and './sup_run.sh start'")
    return report
