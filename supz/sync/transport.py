"""How a sender reaches a receiver: rsync argument lists and the request channel, per transport.

ssh     one long-lived `ssh peer supz sync receive --stdio` (the agent) that is also the ssh
        ControlMaster; every rsync rides on that connection, so a push costs no new handshake.
daemon  rsync to the receiver's `rsync --daemon`; requests are files fetched from the read
        module, answered by its pre-xfer exec (`python -m supz.sync.hook`).
local   another root on this machine: the agent runs in this process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import select
import shlex
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from supz.errors import PeerUnreachable, SupzError, SyncRefused
from supz.paths import HostPaths
from supz.sync import rsync
from supz.sync.landing import ReceiverState
from supz.sync.manifests import Entries
from supz.sync.rsync import Watch, first_error
from supz.sync.settings import DAEMON, LOCAL, SSH, Peer, SyncSettings
from supz.sync.snapshot import Snapshot

# Past this many files a delta is sent by a fresh rsync walking the snapshot (see delta_argv).
WARM_MAX_PATHS = 32


def _answer(peer: Peer, reply: dict[str, Any]) -> dict[str, Any]:
    """An agent's answer, or SyncRefused carrying its code, message and the receiver's state."""
    if reply.get("ok"):
        return reply
    exc = SyncRefused(str(reply.get("code", "error")), str(reply.get("message", "refused")), thing=peer.spec)
    with contextlib.suppress(KeyError, TypeError, ValueError):
        exc.state = ReceiverState.from_dict(reply["state"])  # type: ignore[attr-defined]
    raise exc


class Channel:
    """The sender's end of one connection to a receiver."""

    # Whether a delta rsync may be started ahead of the push (it needs no per-push handshake).
    warm_rsync = True

    def __init__(self, peer: Peer, settings: SyncSettings, paths: HostPaths) -> None:
        self.peer = peer
        self.settings = settings
        self.paths = paths
        # Snapshots for this peer are always taken in this folder, so a warm rsync can read them.
        self.outbox = paths.sync_work / f"out-{peer.key}"
        self._next_spare: str | None = None
        self._warm: rsync.Job | None = None
        self._abandoned: list[rsync.Job] = []

    # -- requests ----------------------------------------------------------------------------

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def hello(self, sender: str) -> ReceiverState:
        state = ReceiverState.from_dict(_answer(self.peer, self.request({"op": "hello", "sender": sender}))["state"])
        self._next_spare = state.spare
        return state

    def state(self) -> ReceiverState:
        """The receiver's state, without preparing anything."""
        return ReceiverState.from_dict(_answer(self.peer, self.request({"op": "state"}))["state"])

    def commit(self, spare: str) -> dict[str, Any]:
        self._next_spare = None
        try:
            return _answer(self.peer, self.request({"op": "commit", "spare": spare}))
        finally:
            self._after_commit()

    def _after_commit(self) -> None:
        """Transport hook: the ssh agent announces the next spare on its own after a commit."""

    def next_spare(self) -> str:
        if self._next_spare is None:
            self._next_spare = str(_answer(self.peer, self.request({"op": "spare"}))["spare"])
        spare, self._next_spare = self._next_spare, None
        return spare

    def prefetch(self) -> None:
        """Between pushes: learn the next spare and start the rsync that will fill it."""
        if not self.warm_rsync:
            return
        with contextlib.suppress(SupzError):
            if self._next_spare is None:
                self._next_spare = str(_answer(self.peer, self.request({"op": "spare"}))["spare"])
            if self._warm is None or not self._warm.alive or self._warm.spare != self._next_spare:
                self._drop_warm()
                self._warm = rsync.start(self.peer, self.delta_argv(self._next_spare), env=self.rsync_env(), fed=True)
                self._warm.spare = self._next_spare

    def _drop_warm(self) -> None:
        # Killing rsync takes its own cleanup time: a warm one is given nothing to do instead.
        if self._warm is not None:
            self._warm.abandon()
            self._abandoned.append(self._warm)
            self._warm = None
        self._abandoned = [job for job in self._abandoned if not job.reaped()]

    def checksums(self) -> tuple[ReceiverState, Entries]:
        reply = _answer(self.peer, self.request({"op": "checksums"}))
        return ReceiverState.from_dict(reply["state"]), dict(reply["files"])

    def close(self) -> None:
        self._drop_warm()
        for job in self._abandoned:
            job.kill()
        self._abandoned = []

    # -- rsync -------------------------------------------------------------------------------

    def rsync_base(self, *, timeout: bool = True) -> list[str]:
        # Whole files: registry entries are small, rsync's delta algorithm would only add a round.
        argv = [self.settings.rsync, "-rtp", "--whole-file"]
        if timeout:
            # Not for a warm rsync, which waits on its stdin for as long as nothing changes.
            argv.append(f"--timeout={int(self.settings.timeout)}")
        if self.settings.compress:
            argv.append("-z")
        return argv

    def remote(self, path: str) -> str:
        """How rsync names `path` (absolute, on the peer) for this transport."""
        raise NotImplementedError

    def rsync_env(self) -> dict[str, str] | None:
        return None

    def delta_argv(self, spare: str, *, listed: bool = True) -> list[str]:
        # A delta holds only changed files: send them whatever their times say. Listed on stdin
        # (a warm rsync waits for that list), or found by walking the snapshot: rsync handles a
        # listed path several times slower than a walked one, which shows past a few dozen.
        what = ["--files-from=-", "--from0", "--no-implied-dirs"] if listed else []
        return [*self.rsync_base(timeout=not (listed and self.warm_rsync)), "--ignore-times", *what,
                "--", f"{self.outbox}/", f"{self.remote(spare)}/"]

    def full_argv(self, spare: str) -> list[str]:
        # A full resync compares every file by checksum and deletes what the source lacks.
        return [*self.rsync_base(), "--delete", "--checksum", "--", f"{self.outbox}/", f"{self.remote(spare)}/"]

    def expect(self, snap: Snapshot, spare: str) -> None:
        """Transport hook: tell the receiver which files the push brings (early commit)."""

    def watch(self) -> tuple[Watch | None, Any]:
        """Transport hook: descriptors to watch while rsync runs, and what to call then."""
        return None, None

    def push(self, snap: Snapshot, spare: str) -> dict[str, Any]:
        """rsync the snapshot into the spare and have the receiver commit it; the commit answer."""
        if snap.full:
            self._drop_warm()
            job, feed = rsync.start(self.peer, self.full_argv(spare), env=self.rsync_env()), None
        elif len(snap.paths) > WARM_MAX_PATHS:
            self._drop_warm()
            job, feed = rsync.start(self.peer, self.delta_argv(spare, listed=False), env=self.rsync_env()), None
            self.expect(snap, spare)
        else:
            warm = self._warm if self._warm is not None and self._warm.spare == spare and self._warm.alive else None
            self._warm = None
            if warm is None:
                self._drop_warm()
                job = rsync.start(self.peer, self.delta_argv(spare), env=self.rsync_env(), fed=True)
            else:
                job = warm
            feed = b"".join(p.encode("utf-8") + b"\0" for p in snap.paths)
            self.expect(snap, spare)
        watch, on_ready = self.watch()
        job.finish(timeout=self.settings.timeout * 4, feed=feed, watch=watch, on_ready=on_ready)
        return self.commit(spare)

    def fetch(self, remote_dir: str, dest: Path) -> None:
        """Copy a peer's version (entry files and manifest only) into `dest`."""
        argv = [*self.rsync_base(), "--delete", "--checksum", "--exclude=.*", "--exclude=*~", "--",
                f"{self.remote(remote_dir)}/", f"{dest}/"]
        rsync.run(self.peer, argv, timeout=self.settings.timeout * 4, env=self.rsync_env())


class LocalChannel(Channel):
    """A receiver root on this machine; its agent runs in this process."""

    def __init__(self, peer: Peer, settings: SyncSettings, paths: HostPaths) -> None:
        super().__init__(peer, settings, paths)
        from supz.sync.agent import Agent, landing_for

        target = HostPaths(Path(peer.root))
        if not target.config_file.exists():
            raise PeerUnreachable(f"no supz host there ({target.config_file} missing)", thing=peer.spec)
        self.agent = Agent(landing_for(target))

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.agent.handle(message)

    def expect(self, snap: Snapshot, spare: str) -> None:
        self.request({"op": "expect", "spare": spare, "paths": snap.paths})

    def watch(self) -> tuple[Watch | None, Any]:
        return (lambda: [] if self.agent.arrival is None else [self.agent.arrival.fileno()]), self.agent.arrived

    def remote(self, path: str) -> str:
        return path

    def close(self) -> None:
        super().close()
        self.agent.close()


def remove_stale_sockets(folder: Path) -> list[Path]:
    """Remove ssh control sockets (cm-*) whose master is gone: the owning pid is dead, or nothing
    accepts a connection on it. Returns those removed."""
    removed = []
    with contextlib.suppress(OSError):
        for path in folder.glob("cm-*"):
            pid = path.name.rsplit("-", 1)[-1].split(".", 1)[0]
            owner_alive = pid.isdigit() and Path(f"/proc/{pid}").exists()
            # A live owner's socket that answers, or that ssh is still creating (a temp name), stays.
            if owner_alive and ("." in path.name or _listening(path)):
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _listening(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


class SshChannel(Channel):
    """`ssh peer supz sync receive --stdio`, kept open; rsync multiplexes over the same connection."""

    def __init__(self, peer: Peer, settings: SyncSettings, paths: HostPaths) -> None:
        super().__init__(peer, settings, paths)
        paths.sync_run.mkdir(parents=True, exist_ok=True, mode=0o700)
        # ssh appends 17 characters while creating the socket: keep the name short (AF_UNIX: 108 bytes).
        # One per process (the syncer, a failover pull and a status may talk to the peer at once),
        # and those a dead process left are removed: ssh will not make a master over a stale one.
        self.control = paths.sync_run / f"cm-{hashlib.sha1(peer.spec.encode()).hexdigest()[:12]}-{os.getpid()}"
        remove_stale_sockets(paths.sync_run)
        self.target = f"{peer.user}@{peer.host.strip('[]')}" if peer.user else peer.host.strip("[]")
        self._stderr = tempfile.TemporaryFile()
        self._buffer = b""
        self._spare_coming = False
        self._acks = 0
        remote = shlex.join([settings.remote_supz, "--root", peer.root, "sync", "receive", "--stdio"])
        argv = [settings.ssh, *settings.ssh_options, "-T", "-x", "-o", "ControlMaster=yes",
                "-o", f"ControlPath={self.control}", "-o", "ControlPersist=no", self.target, remote]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        except OSError as exc:
            self._stderr.close()
            raise PeerUnreachable(f"cannot run {settings.ssh}: {exc.strerror}", thing=peer.spec) from exc

    def _failure(self, what: str) -> PeerUnreachable:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace")
        why = first_error(text) if text.strip() else what
        self.close()
        return PeerUnreachable(f"unreachable ({why})", thing=self.peer.spec)

    def _readline(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._failure(f"no answer from the agent in {self.settings.timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise self._failure("the connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return dict(json.loads(line))
        except ValueError as exc:
            raise self._failure(f"garbled answer from the agent: {line[:80]!r}") from exc

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failure("the connection closed") from None

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self._spare_coming:
            # The agent announced a spare after the last commit; it precedes any other answer.
            self._spare_coming = False
            self._next_spare = str(_answer(self.peer, self._readline()).get("spare"))
            if message.get("op") == "spare":
                return {"ok": True, "spare": self._next_spare}
        self._send(message)
        while self._acks:
            # Answers to requests sent without waiting (expect): an error there shows in the commit.
            self._acks -= 1
            self._readline()
        return self._readline()

    def expect(self, snap: Snapshot, spare: str) -> None:
        # Not waited for: the agent notices files that landed before it read this, too.
        self._send({"op": "expect", "spare": spare, "paths": snap.paths})
        self._acks += 1

    def _after_commit(self) -> None:
        self._spare_coming = self.proc.poll() is None

    def next_spare(self) -> str:
        if self._next_spare is None and self._spare_coming:
            self.request({"op": "spare"})
        return super().next_spare()

    def remote(self, path: str) -> str:
        # rsync's remote syntax keeps an IPv6 address in its brackets: user@[::1]:path.
        host = self.peer.host
        target = f"{self.peer.user}@{host}" if self.peer.user else host
        return f"{target}:{path}"

    def rsync_base(self, *, timeout: bool = True) -> list[str]:
        rsh = shlex.join([self.settings.ssh, *self.settings.ssh_options, "-T", "-x", "-o", "ControlMaster=no",
                          "-o", f"ControlPath={self.control}"])
        return [*super().rsync_base(timeout=timeout), "-e", rsh, f"--rsync-path={self.settings.remote_rsync}"]

    def close(self) -> None:
        super().close()
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, AttributeError):
                stream.close()  # type: ignore[union-attr]
        self._stderr.close()


class DaemonChannel(Channel):
    """An rsync daemon: pushes go to MODULE (the receiver's incoming/), requests to MODULE-read."""

    def __init__(self, peer: Peer, settings: SyncSettings, paths: HostPaths) -> None:
        super().__init__(peer, settings, paths)
        self.user = peer.user or settings.daemon_user
        hostport = peer.host + (f":{peer.port}" if peer.port else "")
        self.base_url = f"rsync://{self.user}@{hostport}"
        self.read_module = f"{peer.module}-read"

    warm_rsync = False  # every push is committed by a request after it anyway

    def rsync_base(self, *, timeout: bool = True) -> list[str]:
        argv = [*super().rsync_base(timeout=timeout), f"--contimeout={int(self.settings.timeout)}"]
        if self.settings.password_file is not None:
            argv.append(f"--password-file={self.settings.password_file}")
        return argv

    def rsync_env(self) -> dict[str, str] | None:
        # Never let rsync ask for a password on a terminal: no password file means none.
        env = dict(os.environ)
        env.pop("RSYNC_PASSWORD", None)
        if self.settings.password_file is None:
            env["RSYNC_PASSWORD"] = ""
        return env

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        op = str(message.get("op"))
        if op == "spare":
            op = "hello"
        nonce = secrets.token_hex(6)
        name = f"commit.{Path(str(message['spare'])).name}.{nonce}.json" if op == "commit" else f"{op}.{nonce}.json"
        # Under the host's root, not /tmp: a syncer stopped mid-request leaves nothing elsewhere.
        self.paths.sync_work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="answer-", dir=self.paths.sync_work) as tmp:
            dest = Path(tmp) / "answer.json"
            argv = [*self.rsync_base(), "--", f"{self.base_url}/{self.read_module}/hook/{name}", str(dest)]
            rsync.run(self.peer, argv, timeout=self.settings.timeout * 2, env=self.rsync_env())
            try:
                reply = dict(json.loads(dest.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                raise PeerUnreachable(f"unreadable answer to {op}: {exc}", thing=self.peer.spec) from exc
        if message.get("op") == "spare" and reply.get("ok"):
            return {"ok": True, "spare": reply["state"]["spare"]}
        return reply

    def commit(self, spare: str) -> dict[str, Any]:
        reply = super().commit(spare)
        self._next_spare = (reply.get("state") or {}).get("spare")
        return reply

    def remote(self, path: str) -> str:
        # Pushes land in incoming/ (the write module); versions are read from the read module.
        name = Path(path).name
        if Path(path).parent.name == "incoming":
            return f"{self.base_url}/{self.peer.module}/{name}"
        return f"{self.base_url}/{self.read_module}/{name}"


def connect(peer: Peer, settings: SyncSettings, paths: HostPaths) -> Channel:
    kind = {SSH: SshChannel, DAEMON: DaemonChannel, LOCAL: LocalChannel}[peer.transport]
    return kind(peer, settings, paths)
