"""`supz keepalived render`: keepalived.conf for this host from the [failover] settings."""

from __future__ import annotations

import stat
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
    )

