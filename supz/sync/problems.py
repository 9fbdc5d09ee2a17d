"""What is wrong with this host's part of the pair, until someone resolves it.

One list of one-line problems, each naming the peer or entries involved and the command that
resolves it, shared by `supz doctor` (this host) and `supz status --cluster` (every host's).
"""

from __future__ import annotations

import time

from supz.errors import SupzError
from supz.paths import HostPaths
from supz.role import HA_ROLE
from supz.sync import aside
from supz.sync.state import SyncStatus, daemon_alive, read_status

# A reachable peer whose generation differs from this MASTER's for longer than this is reported.
LAG_TOLERANCE = 10.0

RESOLVE_HINT = {
    "unrelated": "",  # the syncer's message names both commands
    "newer": "; the syncer merges it when it can, else resolve with `supz sync resolve --take PEER` or "
             "`supz sync resolve --keep-local`",
    "diverged": "; the syncer merges it when it can, else resolve with `supz sync resolve --take PEER` or "
                "`supz sync resolve --keep-local`",
}


def sync_problems(paths: HostPaths, status: SyncStatus | None = None, now: float | None = None) -> list[str]:
    """Blocked or lagging peers (as this host's syncer last saw them) and unreviewed set-asides."""
    now = time.time() if now is None else now
    problems: list[str] = []
    try:
        status = status if status is not None else read_status(paths)
    except SupzError as exc:
        problems.append(str(exc))
        status = None
    if status is not None and status.role == HA_ROLE and status.note != "stopped" and daemon_alive(status):
        for peer in status.peers:
            if peer.blocked and peer.blocked != "master":
                problems.append(f"sync to {peer.peer} blocked ({peer.blocked}): {peer.last_error}"
                                f"{RESOLVE_HINT.get(peer.blocked, '')}")
            elif (peer.reachable and peer.peer_generation is not None
                  and peer.peer_generation != status.local_generation and peer.lag(now) > LAG_TOLERANCE):
                problems.append(f"{peer.peer} holds generation {peer.peer_generation}, this host "
                                f"{status.local_generation}, for {peer.lag(now):.0f} s: {peer.last_error or peer.state} "
                                "(see `supz sync status`)")
    try:
        items = aside.unreviewed(paths)
    except SupzError as exc:
        problems.append(str(exc))
        items = []
    for item in items:
        problems.append(f"{item.line()}: review it, then `{aside.REVIEW_COMMAND} {item.id}`")
    return problems
