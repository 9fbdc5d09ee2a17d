"""Running a `supz` command on a sync peer, over the syncer's own ssh (like `supz status --cluster`)."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from supz.errors import PeerUnreachable
from supz.sync.settings import DAEMON, LOCAL, Peer, SyncSettings

SSH_FAILED = 255


@dataclass(frozen=True)
class Answer:
    code: int
    stdout: str
    stderr: str

    def last_line(self) -> str:
        lines = (self.stderr or self.stdout).strip().splitlines()
        return lines[-1] if lines else f"exited {self.code}"


def ask_peer(peer: Peer, settings: SyncSettings, args: list[str], timeout: float = 60.0) -> Answer:
    """`supz --root ROOT ARGS...` on an ssh peer, whatever it exits with; PeerUnreachable when
    ssh itself failed or the peer did not answer in time."""
    if peer.transport in (LOCAL, DAEMON):
        raise PeerUnreachable(f"{peer.spec}: no ssh channel to run supz there", thing=peer.spec)
    target = f"{peer.user}@{peer.host}" if peer.user else peer.host
    remote = [settings.remote_supz, "--root", peer.root, *args]
    # ssh hands the remote shell one string: quote each word.
    argv = [settings.ssh, *settings.ssh_options, target, *(shlex.quote(word) for word in remote)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PeerUnreachable(f"{peer.spec}: no answer within {timeout:g}s", thing=peer.spec) from exc
    answer = Answer(done.returncode, done.stdout, done.stderr)
    if done.returncode == SSH_FAILED:
        raise PeerUnreachable(f"{peer.spec}: ssh: {answer.last_line()}", thing=peer.spec)
    return answer


def run_on_peer(peer: Peer, settings: SyncSettings, args: list[str], timeout: float = 60.0,
                answers: tuple[int, ...] = (0,)) -> str:
    """Its stdout when it exits with one of `answers`, else PeerUnreachable with its last line."""
    answer = ask_peer(peer, settings, args, timeout)
    if answer.code not in answers:
        raise PeerUnreachable(f"{peer.spec}: {answer.last_line()}", thing=peer.spec)
    return answer.stdout
