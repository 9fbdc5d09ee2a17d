"""The OCF resource agent `ocf:supz:registry`: one supz host root as a Pacemaker resource.

start is a keepalived MASTER transition (pull the newest registry from the reachable peers, then
activate every active entry in one call to the extension), announced and reconciled under the same
failover lock; stop is the BACKUP transition (deactivate); monitor asks supervisord what runs;
validate-all is `supz doctor`. Each action returns an OCF exit code and one line saying why: the
front end (`supz pacemaker agent`) prints the line and exits with the code.
"""

from __future__ import annotations

import enum
import math
import subprocess
from dataclasses import dataclass

from supz.config import ConfigFile, load_config, read_config
from supz.errors import SupzError
from supz.executables import supz_executable
from supz.failover.keepalived import program_count
from supz.failover.maintenance import read_maintenance
from supz.failover.pull import pull_if_newer
from supz.failover.settings import FailoverSettings, load_failover_settings
from supz.failover.transitions import Announcement, TransitionResult, announce, now_sequence, read_wanted, reconcile
from supz.host import daemon
from supz.host.leftovers import find_leftovers
from supz.paths import HostPaths
from supz.registry import Registry
from supz.role import HA_ROLE, read_role
from supz.supervisord.client import SupervisorClient

INSTANCE = "pacemaker"  # the announcer's name in failover-wanted.json


class Ocf(enum.IntEnum):
    """OCF exit codes (the Open Cluster Framework resource agent API, 1.1)."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7


@dataclass(frozen=True)
class Outcome:
    code: Ocf
    message: str


@dataclass(frozen=True)
class AgentTiming:
    """The operations' timeouts (seconds), derived from the host's program count as keepalived's
    check timing is (supz.failover.keepalived.check_timing)."""

    start: int
    stop: int
    monitor: int
    monitor_interval: int
    validate: int


def agent_timing(settings: FailoverSettings, programs: int) -> AgentTiming:
    """start: the pull budget, a supervisord start, and activation (about 2 s per thousand programs
    measured, 15 s for stock supervisor's) with a wide margin; stop: stopwaitsecs (10 s by default)
    and deactivation; monitor: one status call (0.2 s for 2000) and Python's start on a busy host."""
    thousands = programs / 1000
    return AgentTiming(
        start=60 + math.ceil(settings.pull_budget) + math.ceil(60 * thousands),
        stop=60 + math.ceil(30 * thousands),
        monitor=20 + math.ceil(10 * thousands),
        monitor_interval=10,
        validate=30,
    )


def timing_for(paths: HostPaths) -> AgentTiming:
    """The timing of the host at `paths`; the defaults (0 programs) when it cannot be read."""
    try:
        settings = load_failover_settings(read_config(paths.config_file))
    except SupzError:
        settings = FailoverSettings()
    return agent_timing(settings, program_count(paths))


def _installed(paths: HostPaths) -> Outcome | None:
    if not paths.config_file.exists() or not paths.supervisord_conf.exists():
        return Outcome(Ocf.ERR_INSTALLED, f"no supz host at {paths.root}: run `supz --root {paths.root} init --ha`")
    return None


def _file(paths: HostPaths) -> ConfigFile:
    return read_config(paths.config_file)


def _next_sequence(paths: HostPaths) -> tuple[int, int]:
    """Later than any announcement recorded: Pacemaker serializes a resource's actions, so the
    agent's own order is the one that counts (a stop and a start within one clock tick included)."""
    sequence = now_sequence()
    wanted = read_wanted(paths)
    if wanted is not None and wanted.seq >= sequence:
        sequence = (wanted.seq[0] + 1, 0)
    return sequence


def _transition(paths: HostPaths, state: str) -> list[TransitionResult]:
    host = load_config(_file(paths)).host
    announce(paths, Announcement(state, _next_sequence(paths), INSTANCE))
    return reconcile(paths, host, pull_if_newer if state == HA_ROLE else None)


def _said(results: list[TransitionResult]) -> str:
    return "; ".join(f"{r.previous} -> {r.to} in {r.seconds:.3f}s: {r.result}"
                     + (f" (pull: {r.details['pull']})" if "pull" in r.details else "") for r in results)


def monitor(paths: HostPaths) -> Outcome:
    """SUCCESS when this host is MASTER, supervisord answers and every active entry runs;
    NOT_RUNNING when this host runs none; ERR_GENERIC, with the reason, for anything between."""
    missing = _installed(paths)
    if missing is not None:
        return missing
    role = read_role(paths)
    registry = Registry(paths, host="")
    active = set(registry.active_names())
    ours = active | set(registry.parked_names())
    try:
        with SupervisorClient.for_host(paths) as client:
            running = {spec.split(":", 1)[0] for spec in client.supz("running")} & ours
            drift = client.supz("drift") if role == HA_ROLE else []
    except SupzError as exc:
        # Nothing of this root runs without its supervisord, unless a dead one left programs
        # behind: a probe at boot (before supervisord starts, a stale MASTER role on disk) is
        # answered "not running", which is the truth.
        left = find_leftovers(paths)
        if left:
            return Outcome(Ocf.ERR_GENERIC, f"supervisord is not running ({exc}) and {len(left)} process(es) "
                                            f"it started still run; role {role}")
        return Outcome(Ocf.NOT_RUNNING, f"supervisord is not running, nothing of {paths.root} runs; role {role}")
    if role != HA_ROLE:
        if running:
            return Outcome(Ocf.ERR_GENERIC, f"{len(running)} application(s) run on a host that is {role}: "
                                            f"{', '.join(sorted(running)[:5])}")
        return Outcome(Ocf.NOT_RUNNING, f"role {role}, no application runs")
    if active and not running:
        return Outcome(Ocf.NOT_RUNNING, f"role MASTER but none of {len(active)} active entries runs")
    if drift:
        first = drift[0]
        return Outcome(Ocf.ERR_GENERIC, f"{len(drift)} application(s) differ from the registry, first "
                                        f"{first['name']} {first['state']} ({first['why']})")
    return Outcome(Ocf.SUCCESS, f"MASTER, {len(running)} of {len(active)} active entries running")


def start(paths: HostPaths) -> Outcome:
    """Become MASTER as keepalived would make it (pull first, then activate); a no-op when running."""
    missing = _installed(paths)
    if missing is not None:
        return missing
    now = monitor(paths)
    if now.code is Ocf.SUCCESS:
        return Outcome(Ocf.SUCCESS, f"already running: {now.message}")
    if read_maintenance(paths) is not None:
        return Outcome(Ocf.ERR_GENERIC, "frozen for maintenance (`supz failover unfreeze`): not started")
    try:
        if not SupervisorClient.for_host(paths).is_up():
            daemon.up(paths)
        results = _transition(paths, HA_ROLE)
    except SupzError as exc:
        return Outcome(Ocf.ERR_GENERIC, f"start failed: {exc}")
    after = monitor(paths)
    if after.code is Ocf.SUCCESS:
        return Outcome(Ocf.SUCCESS, _said(results) or after.message)
    return Outcome(Ocf.ERR_GENERIC, f"started but {after.message}" + (f" ({_said(results)})" if results else ""))


def stop(paths: HostPaths) -> Outcome:
    """Deactivate (the BACKUP transition; a dead supervisord's leftovers are ended); a no-op when
    nothing runs. A stop that fails makes Pacemaker fence the node: it says why."""
    missing = _installed(paths)
    if missing is not None:
        return Outcome(Ocf.SUCCESS, missing.message)  # nothing of ours can run there
    now = monitor(paths)
    if now.code is Ocf.NOT_RUNNING:
        return Outcome(Ocf.SUCCESS, f"already stopped: {now.message}")
    try:
        results = _transition(paths, "BACKUP")
    except SupzError as exc:
        return Outcome(Ocf.ERR_GENERIC, f"stop failed: {exc}")
    after = monitor(paths)
    if after.code is Ocf.NOT_RUNNING:
        return Outcome(Ocf.SUCCESS, _said(results) or after.message)
    return Outcome(Ocf.ERR_GENERIC, f"stopped but {after.message}" + (f" ({_said(results)})" if results else ""))


def validate(paths: HostPaths) -> Outcome:
    """`supz doctor` on this root: ERR_INSTALLED when supz is not set up there, ERR_CONFIGURED
    (with the first failed check) when it finds a problem."""
    missing = _installed(paths)
    if missing is not None:
        return missing
    try:
        config = load_config(_file(paths))
    except SupzError as exc:
        return Outcome(Ocf.ERR_CONFIGURED, str(exc))
    if not config.ha_enabled or config.manager != "pacemaker":
        return Outcome(Ocf.ERR_CONFIGURED, f"{paths.config_file}: set [ha] enabled = yes and manager = pacemaker")
    done = subprocess.run([str(supz_executable()), "--root", str(paths.root), "doctor"], capture_output=True,
                          text=True, check=False, stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        return Outcome(Ocf.SUCCESS, "supz doctor: ok")
    failed = [line[4:].strip() for line in done.stdout.splitlines() if line.startswith("FAIL")]
    why = failed[0] if failed else (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return Outcome(Ocf.ERR_CONFIGURED, f"supz doctor: {why}" + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))


def meta_data(timing: AgentTiming) -> str:
    """The agent's meta-data (ra-api-1.dtd), with the timeouts of the host it was asked on."""
    return f"""<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="registry">
<version>1.0</version>
<longdesc lang="en">
One supz host root as a Pacemaker resource: start pulls the newest registry from the reachable sync
peers and activates every active entry (what a keepalived MASTER transition does), stop deactivates
them all, monitor checks that supervisord answers and every active entry runs. One resource per
supz root (group of applications); colocate it with its IPaddr2 VIP. The timeouts below are derived
from the host's program count: see docs/pacemaker.md.
</longdesc>
<shortdesc lang="en">supz applications (one host root)</shortdesc>
<parameters>
<parameter name="root" unique="1" required="0">
<longdesc lang="en">The supz host root (every path derives from it): / on a real host, one folder per group.</longdesc>
<shortdesc lang="en">supz root</shortdesc>
<content type="string" default="/"/>
</parameter>
<parameter name="supz" unique="0" required="0">
<longdesc lang="en">The supz command the agent runs.</longdesc>
<shortdesc lang="en">supz command</shortdesc>
<content type="string" default="/usr/bin/supz"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="{timing.start}s"/>
<action name="stop" timeout="{timing.stop}s"/>
<action name="monitor" timeout="{timing.monitor}s" interval="{timing.monitor_interval}s" depth="0"/>
<action name="validate-all" timeout="{timing.validate}s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
"""
