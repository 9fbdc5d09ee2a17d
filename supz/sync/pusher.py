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
from supz.sync.manifests import MANIFEST, Relation, State, VersionInfo, differing, relate
from supz.sync.reconcile import MergeReport, merge_with_peer
from supz.sync.settings import Peer, SyncSettings
from supz.sync.transport import Channel, connect

# Refusals that stop pushing to a peer until it is checked again.
BLOCKING = ("newer", "diverged", "master", "unrelated")
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
        self.merged: MergeReport | None = None  # the merge the last push began with

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

    def relation(self, local: VersionInfo, held: ReceiverState) -> tuple[Relation, State | None]:
        """How the peer's registry relates to the local one (supz.sync.manifests.relate)."""
        return relate(local.state, lineage.load(self.paths), (held.generation, held.digest), list(held.lineage or ()),
                      peer_empty=held.generation == 0 and not held.entries,
                      shared=lineage.shared_with(self.paths, self.peer.spec))

    def judge(self, local: VersionInfo, held: ReceiverState) -> tuple[Relation, State | None]:
        """Refuse early what the receiver would refuse; say whether a merge comes first.

        A peer that holds changes this host never saw (diverged from a common state, or ahead
        of it) is merged, never overwritten; one with no state in common with this host is
        refused until `supz sync resolve` settles it."""
        if held.role == HA_ROLE:
            raise SyncRefused("master", f"{held.host} is MASTER too: not pushing to it")
        found = self.relation(local, held)
        if found[0] is not Relation.SAME and lineage.overruled(self.paths, self.peer.spec) == (
                held.generation, held.digest):
            found = (Relation.BEHIND, None)  # `supz sync resolve --keep-local`: this host's registry wins
        if found[0] is Relation.UNRELATED:
            names = differing(local.entries, held.entries or {})
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            raise SyncRefused(
                "unrelated",
                f"{held.host}'s registry (generation {held.generation}) has no state in common with this host's "
                f"(generation {local.generation}; differing: {shown or 'none'}): not pushing; resolve with "
                f"`supz sync resolve --take {self.sender}` on {held.host} or `supz sync resolve --keep-local` here",
            )
        return found

    def push(self, *, full: bool) -> PushReport:
        """Bring the peer to the local registry; raise PeerUnreachable or SyncRefused."""
        started = time.monotonic()
        if self.channel is None or self.held is None:
            self.connect()
        assert self.channel is not None and self.held is not None
        held = self.held
        self.merged = None
        try:
            local = snapshot.local_version(self.paths)
            relation, base = self.judge(local, held)
            if relation in (Relation.DIVERGED, Relation.AHEAD):
                self.merged = merge_with_peer(self.paths, self.sender, self.channel, held, self.peer.spec,
                                              self.peer.key, base or local.state)
                local = snapshot.local_version(self.paths)
                full = True
            if not full and local.generation == held.generation and relation is Relation.SAME:
                self.blocked = None
                return PushReport(self.peer.spec, "in sync", False, held.generation, held.generation, 0,
                                  (time.monotonic() - started) * 1000)
            snap = snapshot.take(self.paths, self.channel.outbox, sender=self.sender,
                                 known=None if full else held.entries, lock_timeout=self.settings.timeout)
            try:
                self.judge(snap.info, held)
                spare = self.channel.next_spare()
                reply = self.channel.push(snap, spare)
                # This host's registry held that state, and so does the peer now: a common base.
                if reply.get("ok", True):
                    lineage.record(self.paths, snap.info.generation, snap.info.digest,
                                   manifest=snap.folder / MANIFEST, peer=self.peer.spec)
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
