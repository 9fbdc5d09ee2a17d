"""The syncer's status file: what `supz sync run` last did for each peer, for `supz sync status`.

Written after every push and every error with a rename (readers never see half a file), but
without fsync: it is rewritten constantly and a crash loses nothing the next push does not redo.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from supz.errors import StorageError
from supz.fsutil import write_quick
from supz.host.leftovers import pid_alive
from supz.paths import HostPaths

FORMAT = 1


@dataclass
class PeerStatus:
    """One peer as the syncer last saw it. Times are epoch seconds (None: never)."""

    peer: str
    transport: str
    state: str = "starting"
    reachable: bool | None = None
    peer_host: str = ""
    peer_role: str = ""
    peer_generation: int | None = None
    pending: int = 0
    behind_since: float | None = None
    last_sync: float | None = None
    last_push_ms: float | None = None
    last_error: str = ""
    last_error_time: float | None = None
    blocked: str = ""
    pushes: int = 0
    full_resyncs: int = 0
    last_full: float | None = None
    last_full_reason: str = ""

    def lag(self, now: float | None = None) -> float:
        """Seconds the peer has been behind this host's registry (0 when in sync)."""
        if self.behind_since is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self.behind_since)


@dataclass
class SyncStatus:
    host: str
    pid: int
    role: str = "unknown"
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    local_generation: int = 0
    note: str = ""
    peers: list[PeerStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT
        now = time.time()
        for peer, raw in zip(self.peers, data["peers"]):
            raw["lag"] = round(peer.lag(now), 3)
        return data


def _peer_from(raw: dict[str, Any]) -> PeerStatus:
    known = {f.name for f in fields(PeerStatus)}
    return PeerStatus(**{k: v for k, v in raw.items() if k in known})


def write_status(paths: HostPaths, status: SyncStatus) -> None:
    status.updated = time.time()
    paths.sync_status.parent.mkdir(parents=True, exist_ok=True)
    write_quick(paths.sync_status, json.dumps(status.as_dict(), indent=1, sort_keys=True))


def read_status(paths: HostPaths) -> SyncStatus | None:
    """The last status written, or None when the syncer never ran on this host."""
    try:
        data = json.loads(paths.sync_status.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {paths.sync_status}: {exc}", thing=str(paths.sync_status)) from exc
    known = {f.name for f in fields(SyncStatus)} - {"peers"}
    status = SyncStatus(**{k: v for k, v in data.items() if k in known})
    status.peers = [_peer_from(p) for p in data.get("peers", [])]
    return status


def daemon_alive(status: SyncStatus) -> bool:
    return pid_alive(status.pid)
