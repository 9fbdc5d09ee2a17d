"""The supz config file (INI, like supervisor's): parsed once into a `ConfigFile`; the host-wide
settings (identity, shell policy, HA switch, supervisord tuning) read from it by `load_config`."""

from __future__ import annotations

import configparser
import platform
from dataclasses import dataclass, field
from pathlib import Path

from supz.errors import ConfigError

DEFAULT_REFUSE = ("shutdown", "reload")
DEFAULT_CONFIRM = ("stop all", "restart all", "remove")


@dataclass(frozen=True)
class ShellPolicy:
    """What supzcli refuses outright and what it asks to be confirmed."""

    refuse: tuple[str, ...] = DEFAULT_REFUSE
    confirm: tuple[str, ...] = DEFAULT_CONFIRM


@dataclass(frozen=True)
class ShellLook:
    prompt: str = "supz"
    banner: str = "supz shell on {host}: stop parks an application, start brings it back. 'help' lists commands."
    farewell: str = "bye"


MANAGERS = ("keepalived", "pacemaker")


@dataclass(frozen=True)
class BackupSettings:
    """[backups]: an archive of the registry before each change (at most one per `every` seconds),
    kept while among the newest `keep` and younger than `max_age` seconds (0: no limit)."""

    enabled: bool = True
    every: float = 0.0
    keep: int = 50
    max_age: float = 30 * 86400.0


@dataclass(frozen=True)
class SupzConfig:
    host: str = field(default_factory=platform.node)
    policy: ShellPolicy = ShellPolicy()
    look: ShellLook = ShellLook()
    # With HA off a host is standalone: its active entries always run. With HA on they run only
    # while the host's role is MASTER.
    ha_enabled: bool = False
    # Who moves the applications between hosts: keepalived (the pair's default) or pacemaker (the
    # resource agent ocf:supz:registry, docs/pacemaker.md).
    manager: str = "keepalived"
    # Extra seconds past a program's stopwaitsecs / startsecs before a waiting call gives up.
    deadline_margin: float = 5.0
    # posix_spawn for programs that allow it ([supervisord] fast_spawn; see supervisord/tuning.py).
    fast_spawn: bool = True
    # A stop (park) needs a reason (`supzcli stop NAME -m TEXT`), from every client ([shell] require_reason).
    require_reason: bool = False
    backups: BackupSettings = BackupSettings()


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def _seconds(value: str) -> float:
    """`90`, `90s`, `10m`, `12h`, `30d`, `2w` as seconds; ValueError otherwise."""
    text = value.strip().lower()
    if text and text[-1] in _UNITS:
        return float(text[:-1]) * _UNITS[text[-1]]
    return float(text)


def _words(value: str) -> tuple[str, ...]:
    return tuple(" ".join(part.split()) for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class ConfigFile:
    """The host's supz config, parsed once. Each section has one typed loader that reads it
    from here: `load_config` ([supz], [shell], [ha], [supervisord]), `load_sync_settings`,
    `load_failover_settings`, `load_app_settings`."""

    path: Path
    parser: configparser.ConfigParser

    def section(self, name: str) -> configparser.SectionProxy | None:
        return self.parser[name] if self.parser.has_section(name) else None

    def error(self, section: str, problem: object, thing: str | None = None) -> ConfigError:
        """A ConfigError naming the file, the section and the first line of `problem`."""
        lines = str(problem).splitlines() or [""]
        return ConfigError(f"{self.path}: [{section}] {lines[0]}", thing=thing or str(self.path))


def read_config(path: Path) -> ConfigFile:
    """Parse `path` once; a missing file means all defaults, a malformed one is a ConfigError."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]}", thing=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", thing=str(path)) from exc
    return ConfigFile(path, parser)


def load_config(config: ConfigFile) -> SupzConfig:
    """The host-wide settings: identity, shell policy and look, HA switch, supervisord tuning."""
    parser = config.parser
    section = "supz"
    try:
        host = parser.get("supz", "host", fallback="").strip() or platform.node()
        section = "shell"
        policy = ShellPolicy(
            refuse=_words(parser.get("shell", "refuse", fallback=", ".join(DEFAULT_REFUSE))),
            confirm=_words(parser.get("shell", "confirm", fallback=", ".join(DEFAULT_CONFIRM))),
        )
        require_reason = parser.getboolean("shell", "require_reason", fallback=False)
        defaults = ShellLook()
        look = ShellLook(
            prompt=parser.get("shell", "prompt", fallback=defaults.prompt),
            banner=parser.get("shell", "banner", fallback=defaults.banner),
            farewell=parser.get("shell", "farewell", fallback=defaults.farewell),
        )
        section = "ha"
        ha_enabled = parser.getboolean("ha", "enabled", fallback=False)
        manager = parser.get("ha", "manager", fallback="keepalived").strip().lower()
        if manager not in MANAGERS:
            raise ValueError(f"manager = {manager}: expected one of {', '.join(MANAGERS)}")
        section = "supervisord"
        margin = parser.getfloat("supervisord", "deadline_margin", fallback=5.0)
        fast_spawn = parser.getboolean("supervisord", "fast_spawn", fallback=True)
        section = "backups"
        backups = BackupSettings(
            enabled=parser.getboolean("backups", "enabled", fallback=True),
            every=_seconds(parser.get("backups", "every", fallback="0")),
            keep=parser.getint("backups", "keep", fallback=BackupSettings.keep),
            max_age=_seconds(parser.get("backups", "max_age", fallback="30d")),
        )
        if backups.keep < 1:
            raise ValueError("keep must be at least 1")
    except (configparser.Error, ValueError) as exc:
        raise config.error(section, exc) from exc
    return SupzConfig(host=host, policy=policy, look=look, ha_enabled=ha_enabled, manager=manager,
                      deadline_margin=margin, fast_spawn=fast_spawn, require_reason=require_reason,
                      backups=backups)


def set_options(path: Path, section: str, values: dict[str, object]) -> None:
    """Set keys of one section of an INI file in place, keeping its comments and other lines;
    the section is appended when missing. For tools that configure a host (the HA demo)."""
    from supz.fsutil import atomic_write

    lines = path.read_text(encoding="utf-8").splitlines()
    header = f"[{section}]"
    if header not in (line.strip() for line in lines):
        lines += ["", header]
    start = next(i for i, line in enumerate(lines) if line.strip() == header)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    kept = [line for line in lines[start + 1:end] if line.split("=", 1)[0].strip() not in values]
    body = [f"{key} = {value}" for key, value in values.items()]
    atomic_write(path, "\n".join(lines[:start + 1] + body + kept + lines[end:]) + "\n", mode=0o644)
