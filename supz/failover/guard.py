"""Only a MASTER changes the registry: it is the only host that pushes, so a change made on a
BACKUP would never reach the pair (and the next push from the MASTER would replace it).

The extension asks `require_master` before every park, unpark and remove, for every client;
`supz registry add` and `sup_run.sh` ask it before they write. A standalone host (HA off) or
`[failover] changes_off_master = yes` allows changes anywhere.
"""

from __future__ import annotations

import json

from supz.config import read_config
from supz.errors import ConfigError, PolicyRefused
from supz.failover.settings import load_failover_settings
from supz.paths import HostPaths
from supz.role import HA_ROLE, read_role


def known_master(paths: HostPaths) -> str:
    """The MASTER as this host knows it: the sender of the last registry push it took."""
    try:
        return str(json.loads(paths.last_master.read_text(encoding="utf-8"))["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def require_master(paths: HostPaths, ha_enabled: bool, what: str = "registry changes") -> None:
    """Raise PolicyRefused (exit 4) when this HA host is not MASTER and changes are not allowed here."""
    if not ha_enabled:
        return
    role = read_role(paths)
    if role == HA_ROLE:
        return
    try:
        if load_failover_settings(read_config(paths.config_file)).changes_off_master:
            return
    except ConfigError:
        pass
    master = known_master(paths)
    where = f"on the MASTER, {master}" if master else "on the MASTER"
    raise PolicyRefused(f"refused: this host is {role}, {what} are made {where}; nothing changed", thing=role)
