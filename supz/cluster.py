"""`supz status [--cluster]`: what each host of the pair is doing, and whether the pair is sane.

A host's own view is cheap and local (role file, VIP on its interfaces, supervisord, registry,
the syncer's status file). The cluster view asks every sync peer for its own view, over the same
ssh the syncer uses (or directly for a peer root on this machine), and flags two MASTERs.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supz.config import ConfigFile, load_config, read_config
from supz.errors import ExitCode, SupzError
from supz.failover.damping import read_damping
from supz.failover.maintenance import maintenance_notice
from supz.failover.settings import load_failover_settings
from supz.failover.standing import standing
from supz.health.state import read_state as read_health_state
from supz.health.state import unhealthy_apps
from supz.paths import HostPaths
from supz.registry import Registry
from supz.role import HA_ROLE, read_role
from supz.supervisord.client import SupervisorClient
from supz.sync.problems import sync_problems
from supz.sync.settings import DAEMON, LOCAL, Peer, SyncSettings, load_sync_settings
from supz.sync.state import read_status

STATUS_TIMEOUT = 10.0


def vip_held(vip: str) -> bool | None:
    """Is `vip` on one of this namespace's interfaces? None when no VIP is configured."""
    if not vip:
        return None
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    return any(f" {vip}/" in line for line in out.splitlines())


def local_status(paths: HostPaths, config_file: ConfigFile | None = None) -> dict[str, Any]:
    """This host's own view, as `supz status --json` prints it."""
    file = config_file or read_config(paths.config_file)
    config = load_config(file)
    view: dict[str, Any] = {"host": config.host, "root": str(paths.root), "role": read_role(paths)}
    try:
        view["vip_held"] = vip_held(load_failover_settings(file).vip_address)
    except SupzError as exc:
        view["vip_held"] = None
        view["error"] = str(exc)
    damping = read_damping(paths)
    view["failover"] = {"frozen": damping.frozen_reason if damping.frozen else None,
                        "hold_down": round(max(0.0, damping.hold_until - time.time()), 1)}
    view["failover"].update(standing(paths, file, view["role"]))
    registry = Registry(paths, host=config.host)
    active, parked = registry.active_names(), registry.parked_names()
    view.update(generation=registry.generation, active=len(active), parked=len(parked))
    try:
        with SupervisorClient.for_host(paths) as client:
            running = {spec.split(":", 1)[0] for spec in client.supz("running")}
            drift = client.supz("drift")
        view.update(supervisord="up", running=len(running & set(active)), drift=drift)
    except SupzError:
        view.update(supervisord="down", running=0, drift=[])
    # Applications with an UNHEALTHY process, from the health daemon's state file (supz/health/).
    view["unhealthy_apps"] = unhealthy_apps(read_health_state(paths))
    view["unhealthy"] = len(view["unhealthy_apps"])
    try:
        sync = read_status(paths)
    except SupzError:
        sync = None
    view["sync"] = [] if sync is None else [
        {"peer": p.peer, "state": p.state, "lag": round(p.lag(), 3), "last_error": p.last_error,
         "blocked": p.blocked, "peer_generation": p.peer_generation} for p in sync.peers
    ]
    view["problems"] = sync_problems(paths, sync)
    return view


STATUS_ANSWERS = (ExitCode.OK, ExitCode.ERROR, ExitCode.DOWN)


def _remote_status(peer: Peer, settings: SyncSettings) -> dict[str, Any]:
    target = f"{peer.user}@{peer.host}" if peer.user else peer.host
    argv = [settings.ssh, *settings.ssh_options, target, settings.remote_supz, "--root", peer.root, "status", "--json"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=STATUS_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {"host": peer.spec, "error": f"no answer within {STATUS_TIMEOUT:g}s"}
    # `supz status --json` answers with its view whatever it finds: exit 1 on drift (an application
    # FATAL), 7 with supervisord down. Those are the peer's state, not an unreachable peer.
    if done.returncode not in STATUS_ANSWERS:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"host": peer.spec, "error": lines[-1] if lines else f"ssh exited {done.returncode}"}
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {"host": peer.spec, "error": "the answer was not JSON"}


def peer_status(peer: Peer, settings: SyncSettings) -> dict[str, Any]:
    if peer.transport == LOCAL:
        target = HostPaths(Path(peer.root))
        if not target.config_file.exists():
            return {"host": peer.spec, "error": f"no supz host there ({target.config_file} missing)"}
        try:
            return local_status(target)
        except SupzError as exc:
            return {"host": peer.spec, "error": str(exc)}
    if peer.transport == DAEMON:
        return {"host": peer.spec, "error": "an rsync daemon peer has no status channel (use ssh to see it)"}
    return _remote_status(peer, settings)


@dataclass
class ClusterView:
    hosts: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)

    unreachable: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # an operator's freeze: shown, not an error
    pacemaker: dict[str, Any] | None = None  # what Pacemaker says, on a host it manages

    @property
    def exit_code(self) -> ExitCode:
        """A problem (split brain, supervisord down, drift, failover frozen) is an error; else an
        unreachable peer is 6."""
        if self.problems:
            return ExitCode.ERROR
        return ExitCode.UNREACHABLE if self.unreachable else ExitCode.OK


def cluster_status(paths: HostPaths, config_file: ConfigFile | None = None) -> ClusterView:
    file = config_file or read_config(paths.config_file)
    hosts = [local_status(paths, file)]
    settings = load_sync_settings(file)
    hosts += [peer_status(peer, settings) for peer in settings.peers]
    view = ClusterView(hosts)
    masters = [h["host"] for h in hosts if h.get("role") == HA_ROLE]
    holders = [h["host"] for h in hosts if h.get("vip_held")]
    if len(masters) > 1:
        view.problems.append(f"split brain: {len(masters)} MASTERs ({', '.join(masters)})")
    if len(holders) > 1:
        view.problems.append(f"split brain: the VIP is on {len(holders)} hosts ({', '.join(holders)})")
    view.problems += [f"{h['host']}: supervisord is not running" for h in hosts if h.get("supervisord") == "down"]
    view.problems += [f"{h['host']}: drift: {d['name']} {d['state']} ({d['why']})" for h in hosts for d in h.get("drift", [])]
    view.problems += [f"{h['host']}: {problem}" for h in hosts for problem in h.get("problems", [])]
    view.unreachable += [f"{h['host']}: unreachable: {h['error']}" for h in hosts[1:] if "error" in h and "role" not in h]
    view.problems += [f"failover frozen on {h['host']}: {h['failover']['frozen']}" for h in hosts
                      if (h.get("failover") or {}).get("frozen")]
    view.notices += [maintenance_notice(h) for h in hosts if (h.get("failover") or {}).get("maintenance")]
    config = load_config(file)
    if config.ha_enabled and config.manager == "pacemaker":
        from supz.pacemaker.crm import pacemaker_problems, pacemaker_view

        view.pacemaker = pacemaker_view(paths)
        view.problems += pacemaker_problems(view.pacemaker)
    return view
