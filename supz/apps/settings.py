"""The [apps] section of the supz config file: health-check patience and log rotation."""

from __future__ import annotations

import configparser
from dataclasses import dataclass

from supz.config import ConfigFile

SECTION = "apps"


@dataclass(frozen=True)
class AppSettings:
    # Seconds a deploy waits for the health URL or command to succeed after a process is RUNNING.
    health_timeout: float = 30.0
    # Rotation of every application log (supervisor's *_logfile_maxbytes / *_logfile_backups).
    log_maxbytes: str = "50MB"
    log_backups: int = 10
    # startsecs and stopwaitsecs `supz app init` writes unless told otherwise.
    startsecs: int = 5
    stopwaitsecs: int = 10


def load_app_settings(config: ConfigFile) -> AppSettings:
    """Read [apps]; a missing section means the defaults."""
    parser = config.parser
    try:
        defaults = AppSettings()
        settings = AppSettings(
            health_timeout=parser.getfloat(SECTION, "health_timeout", fallback=defaults.health_timeout),
            log_maxbytes=parser.get(SECTION, "log_maxbytes", fallback=defaults.log_maxbytes).strip(),
            log_backups=parser.getint(SECTION, "log_backups", fallback=defaults.log_backups),
            startsecs=parser.getint(SECTION, "startsecs", fallback=defaults.startsecs),
            stopwaitsecs=parser.getint(SECTION, "stopwaitsecs", fallback=defaults.stopwaitsecs),
        )
    except (configparser.Error, ValueError) as exc:
        raise config.error(SECTION, exc) from exc
    if settings.health_timeout <= 0 or settings.log_backups < 1 or settings.startsecs < 0:
        raise config.error(SECTION, "health_timeout must be > 0, log_backups >= 1, startsecs >= 0")
    return settings
