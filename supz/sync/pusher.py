"""One peer, from the sender's side: its channel, what it holds, and one push at a time.

A push is: snapshot what differs from what the peer holds (everything, for a full resync),
rsync it into the spare the peer prepared, and ask the peer to commit. The generation rules are
checked here first (no transfer is wasted on a peer that will refuse) and again by the receiver,
under its lock, which is the check that counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from supz.errors import PeerUnreachable, SyncRefused
from supz.paths import HostPaths
from supz.role import HA_ROLE
from supz.sync import lineage, snapshot
from supz.sync.landing import ReceiverState
from supz.sync.manifests import VersionInfo, differing
from supz.sync.settings import Peer, SyncSettings
from supz.sync.transport import Channel, connect

# Refusals that stop pushing to a peer until it is checked again.
BLOCKING = ("newer", "diverged", "master")
# Refusals that mean "what I believed the peer holds is wrong": reconnect and push everything.
RESYNC = ("stale-base", "incomplete", "mismatch", "bad-request")


@dataclass(frozen=True)
class PushReport:
    peer: str
    action: str  # "pushed", "in sync"
    full: bool
    generation_before: int
    generation_after: int
    entries: int
    millis: float
    set_aside: str | None = None


class PeerLink:
    """The sender's view of one peer across pushes; not thread-safe (one worker owns it)."""

    def __init__(self, paths: HostPaths, settings: SyncSettings, peer: Peer, sender: str) -> None:
        self.paths = paths
        self.settings = settings
        self.peer = peer
        self.sender = sender
        self.channel: Channel | None = None
        self.held: ReceiverState | None = None
        self.blocked: SyncRefused | None = None

    @property
    def connected(self) -> bool:
        return self.channel is not None

    def connect(self) -> ReceiverState:
        self.disconnect()
        channel = connect(self.peer, self.settings, self.paths)
        try:
            self.held = channel.hello(self.sender)
        except BaseException:
            channel.close()
            raise
        self.channel = channel
        return self.held

    def disconnect(self) -> None:
        if self.channel is not None:
            channel, self.channel = self.channel, None
            channel.close()

    def pending(self, local: VersionInfo) -> int:
        """Entries the peer lacks or holds differently (as far as this sender knows)."""
        if self.held is None or self.held.entries is None:
            return len(local.entries)
        return len(differing(local.entries, self.held.entries))

    def judge(self, local: VersionInfo, held: ReceiverState) -> None:
        """Refuse early what the receiver would refuse; keep refusing a peer found newer until
        its registry is one this host has held (for instance after `supz sync pull`)."""
        if held.role == HA_ROLE:
            raise SyncRefused("master", f"{held.host} is MASTER too: not pushing to it")
        if held.generation > local.generation:
            raise SyncRefused(
                "newer",
                f"{held.host} holds generation {held.generation}, newer than this host's "
                f"{local.generation}: not pushing to it; both copies kept",
            )
        if held.generation == local.generation and held.digest != local.digest:
            raise SyncRefused(
                "diverged",
                f"{held.host} and this host both hold generation {held.generation} with "
                "different entries: not pushing to it; both copies kept",
            )
        if self.blocked is not None and self.blocked.code != "master":
            if (held.generation, held.digest) not in lineage.load(self.paths):
                raise SyncRefused(
                    self.blocked.code,
                    f"{held.host} was found {self.blocked.code} and its registry (generation "
                    f"{held.generation}) is not in this host's history: not pushing (pull it first)",
                )

    def push(self, *, full: bool) -> PushReport:
        """Bring the peer to the local registry; raise PeerUnreachable or SyncRefused."""
        started = time.monotonic()
        if self.channel is None or self.held is None:
            self.connect()
        assert self.channel is not None and self.held is not None
        held = self.held
        try:
            local = snapshot.local_version(self.paths)
            self.judge(local, held)
            if not full and local.generation == held.generation:
                self.blocked = None
                return PushReport(self.peer.spec, "in sync", False, held.generation, held.generation, 0,
                                  (time.monotonic() - started) * 1000)
            snap = snapshot.take(self.paths, self.channel.outbox, sender=self.sender,
                                 known=None if full else held.entries, lock_timeout=self.settings.timeout)
            try:
                self.judge(snap.info, held)
                spare = self.channel.next_spare()
                reply = self.channel.push(snap, spare)
            finally:
                snap.discard()
        except PeerUnreachable:
            self.disconnect()
            raise
        except SyncRefused as exc:
            told = getattr(exc, "state", None)
            if told is not None and self.held is not None:
                # What the receiver says it holds now (its entries come with the next hello).
                self.held = replace(told, entries=self.held.entries if told.digest == self.held.digest else None)
            if exc.code in BLOCKING:
                self.blocked = exc
            if exc.code in RESYNC:
                # What this sender believed the peer holds was wrong: ask again next time.
                self.disconnect()
            raise
        self.blocked = None
        # This host's registry held that state: a receiver holding it later is not diverged.
        lineage.record(self.paths, snap.info.generation, snap.info.digest)
        state = ReceiverState.from_dict(reply["state"])
        self.held = replace(state, entries=dict(snap.info.entries), spare=None)
        self.channel.prefetch()
        return PushReport(
            peer=self.peer.spec,
            action="pushed" if reply.get("result") == "committed" else "in sync",
            full=full,
            generation_before=int(reply.get("generation_before", held.generation)),
            generation_after=int(reply.get("generation_after", state.generation)),
            entries=len(snap.names),
            millis=(time.monotonic() - started) * 1000,
            set_aside=reply.get("set_aside"),
        )
