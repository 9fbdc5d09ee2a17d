"""What an operator does to the failover of a host: freeze it for maintenance, unfreeze it.

`freeze` waits for a transition under way (it takes the failover lock), so once it returns no
application is started or stopped by failover on this host until `unfreeze`, which clears the
freeze and brings the host to the latest state keepalived announced meanwhile. Both are audited.
`--pair` does the same on every sync peer, over the syncer's transport (a peer root on this
machine directly, an ssh peer by running `supz failover freeze|unfreeze` there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from supz.alerts.spool import emit
from supz.audit import AuditLog, AuditRecord, current_who
from supz.config import load_config, read_config
from supz.errors import PeerUnreachable, SupzError
from supz.failover.maintenance import Maintenance, clear_maintenance, read_maintenance, write_maintenance
from supz.failover.remote import run_on_peer
from supz.failover.transitions import LOCK_TIMEOUT, PullHook, TransitionResult, read_wanted, reconcile
from supz.fsutil import file_lock
from supz.paths import HostPaths
from supz.role import read_role
from supz.sync.settings import DAEMON, LOCAL, Peer, SyncSettings

REMOTE_TIMEOUT = 60.0


@dataclass
class FreezeOutcome:
    """What a freeze or an unfreeze did on one host."""

    host: str
    frozen: bool
    changed: bool
    role: str
    keepalived: str
    transitions: list[TransitionResult] = field(default_factory=list)

    def describe(self) -> str:
        state = "frozen" if self.frozen else "unfrozen"
        already = "" if self.changed else " (already)"
        said = f"; keepalived says {self.keepalived}" if self.keepalived else ""
        moves = "".join(f"; {t.previous} -> {t.to} in {t.seconds:.3f}s: {t.result}" for t in self.transitions)
        return f"{self.host}: failover {state}{already}: role {self.role}{said}{moves}"


def _audit(paths: HostPaths, host: str, command: str, detail: str) -> None:
    """An audit line and an alert event (`freeze` / `unfreeze`)."""
    try:
        AuditLog(paths.audit_log).append(AuditRecord(command, [], "ok", current_who(host), detail=detail))
    except (OSError, SupzError):
        pass
    emit(paths, host, command.split("-", 1)[1], detail=detail, who=current_who(host).real_user)


def _said(paths: HostPaths) -> str:
    wanted = read_wanted(paths)
    return wanted.state if wanted is not None else ""


def freeze(paths: HostPaths, host: str, reason: str = "") -> FreezeOutcome:
    """Freeze this host's failover, once any transition under way has ended."""
    with file_lock(paths.failover_lock, timeout=LOCK_TIMEOUT, what="failover"):
        before = read_maintenance(paths)
        if before is None:
            write_maintenance(paths, Maintenance(time.time(), current_who(host).real_user, reason))
    outcome = FreezeOutcome(host, True, before is None, read_role(paths), _said(paths))
    if outcome.changed:
        _audit(paths, host, "failover-freeze", f"role {outcome.role}" + (f": {reason}" if reason else ""))
    return outcome


def unfreeze(paths: HostPaths, host: str, pull_first: PullHook | None = None) -> FreezeOutcome:
    """End the freeze and bring this host to keepalived's latest announced state."""
    was = clear_maintenance(paths)
    if was:
        _audit(paths, host, "failover-unfreeze", f"keepalived says {_said(paths) or 'nothing yet'}")
    done = reconcile(paths, host, pull_first)
    return FreezeOutcome(host, False, was, read_role(paths), _said(paths), done)


def on_peer(peer: Peer, settings: SyncSettings, action: str, pull_first: PullHook | None = None,
            reason: str = "") -> str:
    """Freeze or unfreeze a sync peer over the syncer's transport; one line saying what it did."""
    if peer.transport == LOCAL:
        target = HostPaths(Path(peer.root))
        name = load_config(read_config(target.config_file)).host
        outcome = freeze(target, name, reason) if action == "freeze" else unfreeze(target, name, pull_first)
        return outcome.describe()
    if peer.transport == DAEMON:
        raise PeerUnreachable(f"{peer.spec}: an rsync daemon peer has no command channel (use ssh)", thing=peer.spec)
    args = ["failover", action, *(["--reason", reason] if action == "freeze" and reason else [])]
    lines = run_on_peer(peer, settings, args, REMOTE_TIMEOUT).strip().splitlines()
    return lines[0] if lines else f"{peer.spec}: {action} done"
