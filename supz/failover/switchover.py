"""A planned switchover: move the applications to the standby on purpose, with a measured downtime.

Runs on the MASTER (the CLI asks the MASTER to run it when called on the standby):

1. target: the peer to hand over to (`--to`, or the only sync peer); this host must be MASTER,
   not frozen, and no switchover may be under way.
2. push: a full push of the registry to every peer (the syncer's own push), so the target holds
   this host's generation.
3. ready: the target's readiness (`supz.failover.readiness`), generation and digest included.
   Any problem refuses the switchover (exit 4): nothing moved.
4. handover: this host's vrrp check fails on purpose (`supz.failover.handover`); keepalived goes
   FAULT (priority-0 advert), this host stops its applications, the target becomes MASTER and
   starts them. Waits until the target runs every active entry.
5. back: the check passes again; the hold-down a FAULT starts is ended (this was no failure);
   keepalived brings this host back as BACKUP (nopreempt keeps it there).

The downtime is from the moment this host began stopping its applications (its transition's
start, from the transition log) to the first look that saw all of them running on the target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supz.alerts.spool import emit
from supz.audit import AuditLog, AuditRecord, current_who
from supz.cluster import peer_status
from supz.config import ConfigFile
from supz.errors import ExitCode, OperationFailed, SupzError
from supz.failover.damping import end_hold_down
from supz.failover.handover import end_handover, handing_over, start_handover
from supz.failover.maintenance import read_maintenance
from supz.failover.readiness import standby_readiness
from supz.failover.standing import TAIL
from supz.failover.transitions import LOCK_TIMEOUT, read_log
from supz.fsutil import file_lock
from supz.paths import HostPaths
from supz.role import HA_ROLE, read_role
from supz.sync.peers import find_peer, push_once
from supz.sync.settings import Peer, SyncSettings, load_sync_settings

HANDOVER_LIMIT = 180.0  # the target activating a thousand entries, with room
BACK_LIMIT = 60.0
POLL = 0.2


class SwitchoverRefused(SupzError):
    """The switchover was refused before anything moved."""

    exit_code = ExitCode.REFUSED


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    detail: str


@dataclass
class Switchover:
    host: str
    target: str
    steps: list[Step] = field(default_factory=list)
    downtime: float | None = None


StepHook = Callable[[Step], None]


def pick_target(settings: SyncSettings, to: str | None) -> Peer:
    if to:
        return find_peer(settings, to)
    if len(settings.peers) != 1:
        raise SwitchoverRefused(f"{len(settings.peers)} sync peers: name the target with --to", thing="--to")
    return settings.peers[0]


def _last_transition(paths: HostPaths, since: float) -> dict[str, Any] | None:
    """This host's latest transition out of MASTER since `since` (epoch), from the transition log."""
    try:
        entries = read_log(paths, 20, tail=TAIL)
    except SupzError:
        return None
    for entry in reversed(entries):
        if entry.get("from") == HA_ROLE and entry.get("epoch", 0) >= since:
            return dict(entry)
    return None


def _wait(what: str, limit: float, look: Callable[[], Any]) -> Any:
    ends = time.monotonic() + limit
    while True:
        seen = look()
        if seen:
            return seen
        if time.monotonic() > ends:
            raise OperationFailed(f"switchover: {what} did not happen within {limit:g}s", thing=what)
        time.sleep(POLL)


def switchover(paths: HostPaths, file: ConfigFile, host: str, to: str | None = None,
               on_step: StepHook | None = None) -> Switchover:
    """Move the applications from this host (the MASTER) to its standby; see the module's steps.
    Audited (`failover-switchover`), whether it worked or not."""
    report = Switchover(host, to or "")
    try:
        _run(paths, file, host, to, report, on_step)
    except SupzError as exc:
        audit_switchover(paths, host, report, f"{'refused' if isinstance(exc, SwitchoverRefused) else 'failed'}: {exc}")
        raise
    audit_switchover(paths, host, report, "ok")
    return report


def _run(paths: HostPaths, file: ConfigFile, host: str, to: str | None, report: Switchover,
         on_step: StepHook | None) -> None:
    clock = time.monotonic()

    def step(name: str, detail: str) -> None:
        nonlocal clock
        now = time.monotonic()
        done = Step(name, now - clock, detail)
        clock = now
        report.steps.append(done)
        if on_step is not None:
            on_step(done)

    settings = load_sync_settings(file)
    peer = pick_target(settings, to)
    report.target = peer.spec
    role = read_role(paths)
    if role != HA_ROLE:
        raise SwitchoverRefused(f"{host} is {role}: a switchover starts from the MASTER", thing=host)
    if read_maintenance(paths) is not None:
        raise SwitchoverRefused(f"{host} is frozen for maintenance: `supz failover unfreeze` first", thing=host)
    if handing_over(paths) is not None:
        raise SwitchoverRefused(f"{host}: a switchover is already under way", thing=host)
    step("target", f"{host} (MASTER) -> {peer.spec}")

    pushed = dict(push_once(paths))
    outcome = pushed.get(peer.spec)
    if isinstance(outcome, SupzError):
        raise SwitchoverRefused(f"{peer.spec}: the push failed: {outcome}", thing=peer.spec)
    step("push", f"registry pushed to {peer.spec}")

    readiness = standby_readiness(paths, peer, settings)
    if not readiness.ready:
        lines = [p.line() for p in readiness.problems]
        more = f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""
        raise SwitchoverRefused(f"{readiness.host} is not ready: {'; '.join(lines[:3])}{more}", thing=peer.spec)
    step("ready", f"{readiness.host} ready: {readiness.entries} entries, generation {readiness.generation}")

    since = time.time()
    start_handover(paths, readiness.host, HANDOVER_LIMIT)
    try:
        mine = _wait(f"{host} leaving MASTER", HANDOVER_LIMIT, lambda: _last_transition(paths, since))
        stop_began = float(mine["epoch"]) - float(mine.get("seconds", 0))

        def target_runs_all() -> dict[str, Any] | None:
            view = peer_status(peer, settings)
            good = view.get("role") == HA_ROLE and view.get("running") == view.get("active")
            return view if good else None

        view = _wait(f"{readiness.host} running every application as MASTER", HANDOVER_LIMIT, target_runs_all)
        report.downtime = time.time() - stop_began
        step("handover", f"{host} {HA_ROLE} -> {mine['to']} ({mine.get('stopped', 0)} stopped), "
                         f"{view['host']} MASTER running {view['running']}")
    finally:
        end_handover(paths)
        with file_lock(paths.failover_lock, timeout=LOCK_TIMEOUT, what="failover"):
            end_hold_down(paths)
    _wait(f"{host} back as BACKUP", BACK_LIMIT, lambda: read_role(paths) == "BACKUP")
    step("back", f"{host} BACKUP")


def audit_switchover(paths: HostPaths, host: str, report: Switchover, result: str) -> None:
    target = report.target
    downtime = f", downtime {report.downtime:.3f}s" if report.downtime is not None else ""
    try:
        AuditLog(paths.audit_log).append(
            AuditRecord("failover-switchover", [target] if target else [], result, current_who(host),
                        detail=f"from {host}{downtime}"))
    except (OSError, SupzError):
        pass
    emit(paths, host, "switchover", target=target, result=result, downtime=report.downtime,
         steps=[{"name": s.name, "seconds": round(s.seconds, 3)} for s in report.steps])
