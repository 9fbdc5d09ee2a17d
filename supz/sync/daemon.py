"""`supz sync run`: watch the registry and keep every peer equal to it, while this host is MASTER.

The main thread blocks on inotify and turns events into wishes: "the registry changed" (a
counter), "resync everything" (overflow, the registry symlink moved, becoming MASTER). One worker
thread per peer turns wishes into pushes. A worker that wakes takes a snapshot of the registry
as it is *then*, so everything that happened while it was busy (a burst, or changes made during
the previous transfer) goes out together in its next push, and nothing is lost: what is pushed is
the difference between the registry and what the peer holds, not a list of events.

A peer that is down costs one remembered manifest (bounded, whatever happens meanwhile); it is
retried with backoff and gets a full resync when it answers again. The status file is rewritten
on every change of a peer's state; the log gets one line per push, refusal or state change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from supz.audit import AuditLog, AuditRecord, current_who
from supz.config import load_config, read_config
from supz.errors import PeerUnreachable, SupzError, SyncRefused
from supz.paths import HostPaths
from supz.role import HA_ROLE, read_role
from supz.sync import snapshot
from supz.sync.pusher import BLOCKING, PeerLink
from supz.sync.settings import Peer, SyncSettings, load_sync_settings
from supz.sync.state import PeerStatus, SyncStatus, write_status
from supz.sync.watcher import Watcher

log = logging.getLogger("supz.sync")

# Seconds between looks at a peer this host does not push to (refused as newer, diverged or
# unrelated): one short request, so a resolved peer is pushed to again within seconds.
BLOCKED_RECHECK = 2.0
# Seconds at most between looks at a peer that is MASTER too.
MASTER_RECHECK = 1.0
# Seconds between short state requests to an idle peer this host pushes to (see PeerWorker._look).
PEER_LOOK = 5.0


class _Stop(Exception):
    """Raised by the signal handler to leave the blocking wait."""


@dataclass
class Wishes:
    """What the main thread asks of the workers; guarded by `cond`."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    changes: int = 0
    master: bool = False
    stopping: bool = False
    full: dict[str, str] = field(default_factory=dict)  # peer spec -> reason

    def want_full(self, peers: list[Peer], reason: str) -> None:
        for peer in peers:
            self.full.setdefault(peer.spec, reason)


class StatusBook:
    """The status file, shared by the workers."""

    def __init__(self, paths: HostPaths, host: str, peers: list[PeerStatus]) -> None:
        self.paths = paths
        self.lock = threading.Lock()
        self.status = SyncStatus(host=host, pid=os.getpid(), peers=peers)

    def save(self) -> None:
        with self.lock:
            try:
                self.status.local_generation = snapshot.local_version(self.paths).generation
            except SupzError:
                pass
            try:
                write_status(self.paths, self.status)
            except SupzError as exc:
                log.warning("cannot write the status file: %s", exc)


class PeerWorker(threading.Thread):
    """Pushes to one peer whenever the registry moved past what the peer holds."""

    def __init__(self, daemon: SyncDaemon, peer: Peer, status: PeerStatus) -> None:
        super().__init__(name=f"sync-{peer.key}", daemon=True)
        self.d = daemon
        self.peer = peer
        self.status = status
        self.link = PeerLink(daemon.paths, daemon.settings, peer, daemon.host)
        self.seen = -1
        self.next_full = 0.0
        self.retry_at = 0.0
        self.next_look = 0.0
        self.backoff = daemon.settings.retry_min
        self.pending_reason = "start"

    def _due(self, now: float) -> tuple[bool, float | None]:
        w = self.d.wishes
        if not w.master:
            return False, None
        if not self.link.connected and now < self.retry_at:
            return False, self.retry_at - now
        if self.peer.spec in w.full or now >= self.next_full or not self.link.connected:
            return True, None
        if self.link.blocked is not None:
            return False, self.next_full - now
        if w.changes != self.seen or now >= self.next_look:
            return True, None
        return False, min(self.next_full, self.next_look) - now

    def run(self) -> None:
        w = self.d.wishes
        while True:
            with w.cond:
                while not w.stopping:
                    due, timeout = self._due(time.monotonic())
                    if due:
                        break
                    if not w.master and self.link.connected:
                        break  # leave the peer alone: disconnect below
                    w.cond.wait(timeout)
                if w.stopping:
                    break
                master = w.master
                changed = w.changes != self.seen
                self.seen = w.changes
                reason = w.full.pop(self.peer.spec, "")
            if not master:
                self.link.disconnect()
                self._set(state="idle (not MASTER)")
                continue
            now = time.monotonic()
            if not changed and not reason and self.link.connected and self.link.blocked is None \
                    and now < self.next_full and now >= self.next_look:
                self._look()
                continue
            self._attempt(reason)
        self.link.disconnect()

    def _look(self) -> None:
        """One short state request to an idle peer: a peer changed behind this host's back (rebuilt,
        resolved, its connection gone) gets a full resync now, not at the next periodic one."""
        self.next_look = time.monotonic() + PEER_LOOK
        held = self.link.held
        try:
            assert self.link.channel is not None
            state = self.link.channel.state()
        except SupzError as exc:
            self.link.disconnect()
            log.info("%s: the peer's session ended (%s): reconnecting", self.peer.spec, exc)
            self._attempt("peer answered again")
            return
        if held is None or (state.generation, state.digest, state.role) != (held.generation, held.digest, held.role):
            log.info("%s: the peer's registry changed (generation %s -> %d): full resync", self.peer.spec,
                     "?" if held is None else held.generation, state.generation)
            self.link.disconnect()
            self._attempt("peer changed")

    def _attempt(self, reason: str) -> None:
        self.next_look = time.monotonic() + PEER_LOOK
        now = time.monotonic()
        reconnecting = not self.link.connected
        if reconnecting and not reason:
            reason = self.pending_reason or "peer answered again"
        if not reason and now >= self.next_full:
            reason = "periodic"
        full = bool(reason)
        try:
            if reconnecting or (full and self.link.blocked is not None):
                self.link.connect()
                self._set(reachable=True)
            report = self.link.push(full=full)
        except PeerUnreachable as exc:
            self._unreachable(exc, reason or "peer answered again")
            return
        except SyncRefused as exc:
            self._refused(exc, reason)
            return
        except SupzError as exc:
            self._error(str(exc))
            return
        self.backoff = self.d.settings.retry_min
        self.pending_reason = ""
        if self.link.merged is not None:
            log.warning("%s: %s", self.peer.spec, self.link.merged.summary())
        held = self.link.held
        wall = time.time()
        changes: dict[str, object] = dict(
            state="in sync", reachable=True, blocked="", pending=0, behind_since=None, last_sync=wall,
            peer_generation=held.generation if held else None, peer_host=held.host if held else "",
            peer_role=held.role if held else "", last_error="",
        )
        if full:
            self.next_full = time.monotonic() + self.d.settings.full_resync_interval
            changes.update(full_resyncs=self.status.full_resyncs + 1, last_full=wall, last_full_reason=reason)
        if report.set_aside:
            with contextlib.suppress(SupzError):
                AuditLog(self.d.paths.audit_log).append(AuditRecord(
                    "sync set-aside", [self.peer.spec], "ok", current_who(self.d.host), report.generation_before,
                    report.generation_after, detail=f"the peer's own registry was set aside there in {report.set_aside}"))
        if report.action == "pushed":
            changes.update(pushes=self.status.pushes + 1, last_push_ms=round(report.millis, 1))
            log.info("%s: %s generation %d -> %d (%d entr%s sent, %.0f ms)%s%s", self.peer.spec,
                     "full resync" if full else "pushed", report.generation_before, report.generation_after,
                     report.entries, "y" if report.entries == 1 else "ies", report.millis,
                     f" [{reason}]" if full else "",
                     f"; the peer's own registry was set aside in {report.set_aside}" if report.set_aside else "")
        elif full:
            log.info("%s: full resync [%s]: already in sync at generation %d", self.peer.spec, reason,
                     report.generation_after)
        self._set(**changes)

    def _unreachable(self, exc: PeerUnreachable, reason: str) -> None:
        first = self.status.reachable is not False
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, self.d.settings.retry_max)
        self.pending_reason = "peer answered again" if self.status.reachable is not None else reason
        if first:
            log.warning("%s: %s; retrying with backoff up to %g s", self.peer.spec, exc, self.d.settings.retry_max)
        self._behind()
        self._set(state="unreachable", reachable=False, last_error=str(exc), last_error_time=time.time())

    def _refused(self, exc: SyncRefused, reason: str) -> None:
        if exc.code in BLOCKING:
            if self.status.blocked != exc.code:
                log.error("%s: %s", self.peer.spec, exc)
            if exc.code == "master":
                # Two MASTERs is a moment keepalived settles (a healed partition): look again
                # within a second, so the merge follows the peer's step down at once.
                self.next_full = time.monotonic() + min(self.backoff, MASTER_RECHECK)
                self.backoff = min(self.backoff * 2, self.d.settings.retry_max)
            else:
                # Look again soon: the peer may be resolved (`supz sync resolve`) at any moment.
                self.next_full = time.monotonic() + min(BLOCKED_RECHECK, self.d.settings.full_resync_interval)
            held = self.link.held
            self._behind()
            self._set(state=f"not pushing: peer {exc.code}", blocked=exc.code, reachable=True, last_error=str(exc),
                      last_error_time=time.time(), peer_generation=held.generation if held else None,
                      peer_host=held.host if held else "", peer_role=held.role if held else "")
            return
        if str(exc) != self.status.last_error:
            log.error("%s: refused (%s): %s", self.peer.spec, exc.code, exc)
        # Try again soon, with everything; back off if it keeps failing.
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, self.d.settings.retry_max)
        self.pending_reason = f"after refusal ({exc.code})"
        if self.link.connected:
            self.link.disconnect()
        self._behind()
        self._set(state=f"error: {exc.code}", last_error=str(exc), last_error_time=time.time())

    def _error(self, message: str) -> None:
        log.error("%s: %s", self.peer.spec, message)
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, self.d.settings.retry_max)
        self.link.disconnect()
        self._set(state="error", last_error=message, last_error_time=time.time())

    def _behind(self) -> None:
        try:
            local = snapshot.local_version(self.d.paths)
        except SupzError:
            return
        pending = self.link.pending(local)
        held = self.link.held
        in_sync = held is not None and held.digest == local.digest and held.generation == local.generation
        self.status.pending = 0 if in_sync else pending
        if in_sync:
            self.status.behind_since = None
        elif self.status.behind_since is None:
            self.status.behind_since = time.time()

    def _set(self, **changes: object) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        self.d.book.save()


class SyncDaemon:
    def __init__(self, paths: HostPaths) -> None:
        self.paths = paths
        self.config_error = ""
        config = read_config(paths.config_file)
        self.host = load_config(config).host
        try:
            self.settings: SyncSettings = load_sync_settings(config)
        except SupzError as exc:
            # Keep running without peers: the config watch picks up the fix.
            self.settings = SyncSettings()
            self.config_error = str(exc)
        self.wishes = Wishes()
        self.workers: list[PeerWorker] = []
        self.book = StatusBook(paths, self.host, [])

    def _start_workers(self) -> None:
        statuses = [PeerStatus(peer=p.spec, transport=p.transport) for p in self.settings.peers]
        self.book = StatusBook(self.paths, self.host, statuses)
        self.workers = [PeerWorker(self, p, s) for p, s in zip(self.settings.peers, statuses)]
        with self.wishes.cond:
            self.wishes.stopping = False
            self.wishes.want_full(list(self.settings.peers), "start")
        self._set_role()
        for worker in self.workers:
            worker.start()
        if not self.settings.peers:
            log.info("no peers in [sync] peers: nothing to push to")

    def _stop_workers(self) -> None:
        with self.wishes.cond:
            self.wishes.stopping = True
            self.wishes.cond.notify_all()
        for worker in self.workers:
            worker.join(timeout=self.settings.timeout + 5)
        self.workers = []

    def _set_role(self) -> bool:
        """Read the role file; return True when this host just became MASTER."""
        role = read_role(self.paths)
        with self.wishes.cond:
            became = role == HA_ROLE and not self.wishes.master
            self.wishes.master = role == HA_ROLE
            self.book.status.role = role
            self.book.status.note = "" if role == HA_ROLE else f"role {role}: only a MASTER pushes"
            if self.config_error:
                self.book.status.note = f"config error: {self.config_error}"
            self.wishes.cond.notify_all()
        self.book.save()
        return became

    def _reload(self) -> None:
        try:
            settings = load_sync_settings(read_config(self.paths.config_file))
        except SupzError as exc:
            log.error("config not reloaded: %s", exc)
            self.book.status.note = f"config error: {exc}"
            self.book.save()
            return
        self.config_error = ""
        if settings == self.settings:
            self._set_role()
            return
        log.info("config changed: restarting the peers")
        self._stop_workers()
        self.settings = settings
        self._start_workers()

    def run(self) -> int:
        def stop(signum: int, frame: object) -> None:
            raise _Stop()

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        snapshot.clear_work(self.paths)
        watcher = Watcher(self.paths)
        log.info("started on %s (root %s): %d peer(s), role %s", self.host, self.paths.root,
                 len(self.settings.peers), read_role(self.paths))
        if self.config_error:
            log.error("config not loaded, no peers until it is fixed: %s", self.config_error)
        try:
            self._start_workers()
            while True:
                wake = watcher.wait(None)
                if wake.config:
                    self._reload()
                if wake.role and self._set_role():
                    log.info("this host is MASTER: full resync to every peer")
                    with self.wishes.cond:
                        self.wishes.want_full(list(self.settings.peers), "became MASTER")
                if wake.overflow:
                    log.warning("inotify queue overflow: events were lost; full resync to every peer")
                if wake.relinked:
                    log.info("the registry now points to %s: full resync", watcher.version)
                with self.wishes.cond:
                    if wake.overflow:
                        self.wishes.want_full(list(self.settings.peers), "inotify queue overflow")
                    if wake.relinked:
                        self.wishes.want_full(list(self.settings.peers), "registry replaced")
                    if wake.registry:
                        self.wishes.changes += 1
                    self.wishes.cond.notify_all()
        except _Stop:
            log.info("stopping")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._stop_workers()
            watcher.close()
            self.book.status.note = "stopped"
            self.book.save()
        return 0


def run(paths: HostPaths) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s supz-sync %(levelname)s %(message)s",
    )
    try:
        return SyncDaemon(paths).run()
    except SupzError as exc:
        log.error("%s", exc)
        return int(exc.exit_code)


def main(argv: list[str] | None = None) -> int:
    """`python -m supz.sync.daemon --root ROOT`: what `supz sync run` becomes (see exec_lean)."""
    from supz.paths import resolve_root

    args = list(sys.argv[1:] if argv is None else argv)
    root = args[args.index("--root") + 1] if "--root" in args else None
    return run(resolve_root(root))


def exec_lean(paths: HostPaths) -> None:
    """Replace this process with a Python that loads the syncer alone (not the whole CLI):
    a third less memory for a program that runs forever on every host. Same pid for supervisord."""
    os.execv(sys.executable, [sys.executable, "-m", "supz.sync.daemon", "--root", str(paths.root)])


if __name__ == "__main__":
    sys.exit(main())
