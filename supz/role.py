"""The host's role in an HA pair (MASTER / BACKUP / FAULT / STOP / unknown), kept in a state file.

The failover hooks write it; `supz role set` writes it by hand; the extension and the syncer
read it. Only a MASTER runs HA applications and pushes the registry.
"""

from __future__ import annotations

from supz.errors import ConfigError
from supz.fsutil import atomic_write
from supz.paths import HostPaths

HA_ROLE = "MASTER"
ROLES = ("MASTER", "BACKUP", "FAULT", "STOP")
UNKNOWN = "unknown"


def read_role(paths: HostPaths) -> str:
    try:
        value = paths.role_file.read_text(encoding="utf-8").strip().upper()
    except (OSError, UnicodeDecodeError):
        return UNKNOWN
    return value if value in ROLES else UNKNOWN


def write_role(paths: HostPaths, role: str) -> str:
    value = role.strip().upper()
    if value not in ROLES:
        raise ConfigError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}", thing=role)
    atomic_write(paths.role_file, value + "\n")
    return value
