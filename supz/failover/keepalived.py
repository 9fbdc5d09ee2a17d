"""`supz keepalived render`: keepalived.conf for this host from the [failover] settings."""

from __future__ import annotations

import math
import stat
from dataclasses import dataclass
from pathlib import Path

from supz.errors import ConfigError
from supz.executables import supz_executable
from supz.failover.settings import FailoverSettings
from supz.paths import HostPaths
from supz.templating import render


def script_security_problems(executable: Path) -> list[str]:
    """What enable_script_security would object to: every part of the path root-owned, not writable by others."""
    problems = []
    for part in [executable, *executable.parents]:
        try:
            info = part.stat()
        except OSError as exc:
            problems.append(f"{part}: {exc.strerror}")
            continue
        if info.st_uid != 0:
            problems.append(f"{part} is not owned by root")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (part.is_dir() and info.st_mode & stat.S_ISVTX):
            problems.append(f"{part} is writable by group or others")
    return problems


@dataclass(frozen=True)
class CheckTiming:
    """The vrrp_script's timing, derived from the host's program count."""

    timeout: int
    fall: int
    rise: int


def check_timing(settings: FailoverSettings, programs: int) -> CheckTiming:
    """keepalived kills a check past `timeout` and counts it failed: leave room for the check's own
    deadline plus Python's start on a loaded host. `fall` grows by one per thousand programs, for a
    check that could not even start while they spawn; a busy supervisord itself passes the check
    (busy_grace), so activation never fails it."""
    return CheckTiming(timeout=math.ceil(settings.check_timeout) + 2, fall=2 + programs // 1000, rise=2)


def render_keepalived(paths: HostPaths, settings: FailoverSettings, host: str) -> str:
    missing = [key for key in ("vip", "interface") if not getattr(settings, key)]
    if missing:
        raise ConfigError(f"[failover] in {paths.config_file} needs {' and '.join(missing)} to render keepalived.conf")
    for value in (str(paths.root), host, settings.interface):
        if any(ch.isspace() or ch in "\"'{}!#" for ch in value):
            raise ConfigError(f"{value!r} cannot appear in keepalived.conf (space, quote, brace, ! or #)", thing=value)
    return render(
        "keepalived.conf.j2",
        paths,
        s=settings,
        host=host,
        root=str(paths.root),
        supz=str(supz_executable()),
        check=str(supz_executable().with_name("supz-check")),
        fifo=str(paths.notify_fifo),
        timing=check_timing(settings, program_count(paths)),
    )


def program_count(paths: HostPaths) -> int:
    """Registry entries, active and parked: what the timings derived from the host's size count."""
    try:
        return sum(1 for _ in paths.active.iterdir()) + sum(1 for _ in paths.parked.iterdir())
    except OSError:
        return 0

