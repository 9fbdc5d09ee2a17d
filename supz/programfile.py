"""One program file = one supervisor [program:NAME] section, checked by supervisor's own parser."""

from __future__ import annotations

import configparser
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supz.errors import InvalidProgramFile
from supz.names import name_problem

ENTRY_SUFFIX = ".conf"


@dataclass(frozen=True)
class ProgramSpec:
    """A validated program file: what supervisor will load, plus what supz needs to wait on it."""

    name: str
    text: str
    process_names: tuple[str, ...]
    startsecs: int
    stopwaitsecs: int
    autostart: bool
    group_config: Any  # supervisor.options.ProcessGroupConfig, bound to the options that parsed it

    @property
    def sha256(self) -> str:
        return sha256_text(self.text)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle and needle in line:
            return number
    return None


def _where(text: str, message: str) -> str:
    """Best effort 'line N' for an error supervisor reported without one."""
    match = re.search(r"line[:\s]+(\d+)", message)
    if match:
        return f"line {match.group(1)}"
    for quoted in re.findall(r"'([^']+)'", message):
        number = _line_of(text, quoted)
        if number is not None:
            return f"line {number}"
    return ""


def _fail(label: str, text: str, message: str) -> InvalidProgramFile:
    first = " ".join(message.split())
    first = re.sub(r"\s*\(file: [^)]*\)", "", first)
    where = _where(text, message)
    prefix = f"{label}: {where}: " if where else f"{label}: "
    return InvalidProgramFile(prefix + first, thing=label)


def new_server_options() -> Any:
    """A bare supervisor ServerOptions for validating files outside supervisord."""
    from supervisor.options import ServerOptions

    options = ServerOptions()
    options.here = None
    return options


# What to do instead, for the sections people bring from their supervisor configs.
SECTION_ADVICE = {
    "eventlistener": "; an event listener (superlance's crashmail, memmon...) watches the whole supervisord "
                     "of a host: make it a host-local program in etc/supz/host.d/ on each host",
    "group": "; registry applications are not grouped: one application per file (numprocs for instances), "
             "and supzcli stop/start take several names",
    "fcgi-program": "; FastCGI programs are host-local programs: put the file in etc/supz/host.d/",
}


def parse_program_text(
    text: str,
    name: str,
    *,
    label: str | None = None,
    here: str | None = None,
    options: Any = None,
    environment: dict[str, str] | None = None,
) -> ProgramSpec:
    """Validate `text` as the program file of `name`; raise InvalidProgramFile naming the line."""
    from supervisor.options import ProcessConfig, ProcessGroupConfig, UnhosedConfigParser

    label = label or f"{name}{ENTRY_SUFFIX}"
    problem = name_problem(name)
    if problem is not None:
        raise InvalidProgramFile(f"{label}: program name {name!r} {problem}", thing=label)
    if options is None:
        options = new_server_options()
    parser = UnhosedConfigParser()
    parser.expansions = options.environ_expansions
    try:
        parser.read_string(text, source=label)
    except configparser.Error as exc:
        raise _fail(label, text, str(exc)) from exc
    sections = parser.sections()
    wanted = f"program:{name}"
    others = [s for s in sections if s != wanted]
    if len(sections) == 1 and others and others[0].startswith("program:"):
        raise InvalidProgramFile(
            f"{label}: holds [{others[0]}] but the file is for program {name!r}: the file name is the program name",
            thing=label,
        )
    if others:
        line = _line_of(text, f"[{others[0]}]")
        where = f"line {line}: " if line else ""
        kind = others[0].split(":", 1)[0]
        raise InvalidProgramFile(
            f"{label}: {where}section [{others[0]}] is not allowed: a program file holds only [{wanted}]"
            + SECTION_ADVICE.get(kind, ""),
            thing=label,
        )
    if wanted not in sections:
        raise InvalidProgramFile(f"{label}: no [{wanted}] section (the file name is the program name)", thing=label)
    if not parser.has_option(wanted, "command"):
        raise InvalidProgramFile(f"{label}: [{wanted}] has no command", thing=label)
    if here is not None:
        parser.expand_here(here)
    else:
        # A registry copy has no meaningful %(here)s: refuse rather than guess.
        if "%(here)s" in text:
            raise InvalidProgramFile(
                f"{label}: line {_line_of(text, '%(here)s')}: %(here)s is not allowed; use absolute paths",
                thing=label,
            )
    try:
        processes = options.processes_from_section(parser, wanted, name, ProcessConfig)
        priority = int(parser.saneget(wanted, "priority", "999"))
    except (ValueError, KeyError, configparser.Error) as exc:
        raise _fail(label, text, str(exc)) from exc
    # A registry entry stops and kills its whole process group unless the file says otherwise:
    # a `sh -c` wrapper's children must not outlive a stop (supervisor's default signals the
    # wrapper alone). supervisor defaults killasgroup to stopasgroup, so an explicit
    # stopasgroup decides both.
    own_group_default = not parser.has_option(wanted, "stopasgroup")
    for process in processes:
        if own_group_default:
            process.stopasgroup = True
            if not parser.has_option(wanted, "killasgroup"):
                process.killasgroup = True
        if environment:
            env = dict(environment)
            env.update(process.environment or {})
            process.environment = env
    group = ProcessGroupConfig(options, name, priority, processes)
    return ProgramSpec(
        name=name,
        text=text,
        process_names=tuple(p.name for p in processes),
        startsecs=max(p.startsecs for p in processes),
        stopwaitsecs=max(p.stopwaitsecs for p in processes),
        autostart=all(p.autostart for p in processes),
        group_config=group,
    )


def read_program_text(path: Path) -> str:
    """The text of a program file; unreadable or non-UTF-8 content is an InvalidProgramFile."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidProgramFile(f"{path}: not UTF-8 text", thing=str(path)) from exc
    except OSError as exc:
        raise InvalidProgramFile(f"{path}: cannot read: {exc.strerror}", thing=str(path)) from exc


def read_program_file(path: Path, name: str | None = None, **kwargs: Any) -> ProgramSpec:
    """Read and validate a program file; `name` defaults to the file name without its suffix."""
    path = Path(path)
    if name is None:
        name = path.name[: -len(ENTRY_SUFFIX)] if path.name.endswith(ENTRY_SUFFIX) else path.stem
    return parse_program_text(read_program_text(path), name, label=str(path), **kwargs)
