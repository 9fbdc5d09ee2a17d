"""sup_run.sh's everyday actions for one application: start, stop, restart, update, status.

What is particular to an application directory lives here: its program.ini, its release, whose
registry entry it is, the policy under the action's own name, write access to the registry.
The operations themselves (park, unpark, restart, register, status, audit lines) are
`supz.ops`'s, shared with supzcli, `supz registry` and the Python API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from supz import ops
from supz.apps.conventions import AppLayout, read_program
from supz.config import SupzConfig
from supz.errors import ExitCode, PolicyRefused, UnknownEntry
from supz.ops.env import Command, OpsEnv
from supz.ops.lifecycle import DONE_START
from supz.ops.registry import require_autostart, require_registry_write
from supz.ops.report import Report
from supz.ops.status import StatusReport
from supz.policy import check_policy as _check
from supz.programfile import ProgramSpec
from supz.supervisord.client import RpcClient


@dataclass(frozen=True)
class EntryInfo:
    """What the extension says about the registry entry of an application."""

    name: str
    state: str  # "active", "parked", or "" when the registry does not know it
    sha256: str
    directory: str


def check_policy(config: SupzConfig, action: str, name: str, yes: bool) -> None:
    """supzcli's policy applies to sup_run.sh too: `refuse = deploy` freezes deploys."""
    _check(config.policy, action, [name], yes=yes)


def app_command(action: str, layout: AppLayout, *extra: str) -> Command:
    """What the audit line names: `app ACTION DIR [VERSION]`."""
    return Command.of(f"app {action}", [str(layout.path), *extra])


def entry_info(client: RpcClient, name: str) -> EntryInfo:
    data = client.supz("getEntries", [name])[name]
    return EntryInfo(name, data["state"], data["sha256"], data["directory"])


def ensure_owner(layout: AppLayout, info: EntryInfo) -> None:
    """Refuse to touch a registry entry made from another directory of the same name."""
    if not info.state:
        return
    if not info.directory:
        raise PolicyRefused(f"{info.name}: the registry entry of this name was not made from {layout.path} "
                            "(it has no directory): rename the directory or remove that entry")
    if os.path.normpath(info.directory) != str(layout.current):
        raise PolicyRefused(f"{info.name}: the registry entry of this name runs from {info.directory}, "
                            f"not from {layout.current}: another application directory has this name")


def registered_entry(client: RpcClient, layout: AppLayout) -> EntryInfo:
    """The registry entry of this directory's application; UnknownEntry when there is none."""
    info = entry_info(client, layout.name)
    if not info.state:
        raise UnknownEntry(f"{layout.name}: not in the registry ('./sup_run.sh start' registers it)",
                           thing=layout.name)
    ensure_owner(layout, info)
    return info


def _startable(layout: AppLayout) -> ProgramSpec:
    spec = require_autostart(read_program(layout), layout.program_ini,
                             "'./sup_run.sh stop' is how an application stays stopped", layout.name)
    if not os.path.lexists(layout.current):
        raise UnknownEntry(f"{layout.name}: no release deployed ({layout.current} is missing): "
                           "put one in releases/VERSION and run './sup_run.sh deploy VERSION'", thing=layout.name)
    return spec


NOT_REGISTERED = "program.ini is not the registered entry; "
UPDATED = {"unchanged": "unchanged", "updated": "updated and restarted", "added": "added and started",
           "removed": "removed"}


def start(env: OpsEnv, layout: AppLayout, *, yes: bool = False) -> Report:
    """Make program.ini the active entry (replacing a parked one) and start every process."""
    name = layout.checked().name
    check_policy(env.config, "start", name, yes)
    env = env.confirming(yes)
    spec = _startable(layout)
    with env.connect() as client:
        info = entry_info(client, name)
    ensure_owner(layout, info)
    command = app_command("start", layout)
    if info.state and info.sha256 == spec.sha256:
        return ops.unpark(env, [name], command=command)
    require_registry_write(env.paths, name, why=NOT_REGISTERED)
    return ops.register(env, name, spec.text, command=command, replace=True, start=True, op="app start",
                        said="program.ini registered as the active entry (generation {generation})",
                        done=DONE_START)


def stop(env: OpsEnv, layout: AppLayout, *, yes: bool = False, reason: str = "") -> Report:
    """Stop every process and park the entry: it stays stopped across restarts and failovers;
    the reason is kept with the parked entry."""
    name = layout.checked().name
    check_policy(env.config, "stop", name, yes)
    env = env.confirming(yes)
    with env.connect() as client:
        registered_entry(client, layout)  # refuses an entry of the same name from another directory
    return ops.park(env, [name], reason=reason, command=app_command("stop", layout))


def restart(env: OpsEnv, layout: AppLayout, *, yes: bool = False) -> Report:
    """Stop then start every process; the registry is unchanged. A parked application is refused."""
    name = layout.checked().name
    check_policy(env.config, "restart", name, yes)
    env = env.confirming(yes)
    with env.connect() as client:
        info = registered_entry(client, layout)
    if info.state == "parked":
        raise PolicyRefused(f"{name}: parked (stopped on purpose): './sup_run.sh start' brings it back", thing=name)
    return ops.restart(env, [name], command=app_command("restart", layout))


def update(env: OpsEnv, layout: AppLayout, *, yes: bool = False) -> Report:
    """Apply an edited program.ini to this application only. A malformed file is refused before
    anything is touched, so the running version keeps running."""
    name = layout.checked().name
    check_policy(env.config, "update", name, yes)
    env = env.confirming(yes)
    spec = read_program(layout)
    with env.connect() as client:
        info = registered_entry(client, layout)
    command = app_command("update", layout)
    if info.sha256 == spec.sha256:
        return ops.update(env, [name], command=command, done=UPDATED)
    require_registry_write(env.paths, name, why=NOT_REGISTERED)
    return ops.register(env, name, spec.text, command=command, keep_state=True, op="app update",
                        said="registry entry updated from program.ini (generation {generation}, " + info.state + ")",
                        done=UPDATED)


def status(env: OpsEnv, layout: AppLayout) -> StatusReport:
    """One line per process; exit 0 all RUNNING, 3 anything else (stopped, parked, not registered),
    7 supervisord down (SupervisordDown)."""
    name = layout.checked().name
    return ops.status(env, [name], missing_code=ExitCode.NOT_RUNNING)
