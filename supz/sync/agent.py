"""The receiver's request handler, and the two ways a sender reaches it.

Requests and answers are JSON objects:
    hello      -> the receiver's state (generation, digest, role, entries) and a ready spare
    state      -> the receiver's state alone
    commit     -> publish the spare the sender filled (or a refusal with a code), then a new spare;
                  when the push was expected and already committed, the answer of that commit
    spare      -> a spare to push into
    expect     -> the paths a push into a spare brings: the agent commits as soon as they are in
    checksums  -> every entry file of the current version, hashed (for `supz sync check`)

`serve_stdio` is `supz sync receive --stdio`: a long-lived agent a sender starts over ssh, one
JSON line per message; after each commit answer it writes one more line, the next spare, once it
is ready, so preparing it never delays the sender's view of the commit. `answer_hook` is the rsync
daemon's pre-xfer exec: the request is the name of the file asked for, the answer that file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import sys
from pathlib import Path
from typing import Any, BinaryIO

from supz.errors import SupzError, SyncRefused
from supz.fsutil import write_quick
from supz.paths import HostPaths
from supz.sync import layout
from supz.sync.arrival import Arrival
from supz.sync.landing import Landing
from supz.sync.manifests import scan_checksums

PROTOCOL = 1
_HOOK_REQUEST = re.compile(
    r"(?P<op>hello|state|checksums|commit)(?:\.(?P<spare>v-[0-9a-f]+-[0-9a-f]+))?\.[0-9a-f]{4,32}\.json")


class Agent:
    """Answers requests for one sender; owns at most one spare and one arrival watch at a time."""

    def __init__(self, landing: Landing) -> None:
        self.landing = landing
        self.spare: Path | None = None
        self._arrival: Arrival | None = None
        self.early: tuple[Path, dict[str, Any]] | None = None

    def ensure_spare(self) -> Path:
        if self.spare is None or not self.spare.is_dir():
            self.spare = self.landing.prepare_spare()
        return self.spare

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        try:
            if op == "hello":
                spare = self.ensure_spare()
                state = self.landing.state(spare, with_entries=bool(request.get("entries", True)))
                return {"ok": True, "protocol": PROTOCOL, "state": state.as_dict()}
            if op == "state":
                return {"ok": True, "protocol": PROTOCOL, "state": self.landing.state().as_dict()}
            if op == "spare":
                return {"ok": True, "spare": str(self.ensure_spare())}
            if op == "expect":
                self._expect(str(request.get("spare", "")), [str(p) for p in request.get("paths", [])])
                return {"ok": True}
            if op == "checksums":
                state = self.landing.state()
                return {"ok": True, "state": state.as_dict(), "files": scan_checksums(Path(state.current))}
            if op == "commit":
                name = Path(str(request.get("spare", ""))).name
                if self.early is not None and self.early[0].name == name:
                    reply, self.early = self.early[1], None
                    return reply
                self._stop_watching()
                return self._commit(self.landing.spare_path(name), early=False) or {}
            raise SyncRefused("bad-request", f"unknown request {op!r}")
        except SyncRefused as exc:
            return {"ok": False, "code": exc.code, "message": str(exc), "state": self._state_or_none()}
        except SupzError as exc:
            return {"ok": False, "code": "storage", "message": str(exc), "state": self._state_or_none()}

    # -- committing as soon as a push has landed ---------------------------------------------

    @property
    def arrival(self) -> Arrival | None:
        """The watch on the spare of an expected push, while there is one."""
        return self._arrival if self._arrival is not None and self._arrival.watching else None

    def _expect(self, name: str, paths: list[str]) -> None:
        self.early = None
        if self._arrival is None:
            self._arrival = Arrival()
        self._arrival.expect(self.landing.spare_path(name), paths)
        self.arrived()

    def arrived(self) -> None:
        """Called when the arrival watch is readable: commit once every expected file is in."""
        if self.arrival is None or not self.arrival.poll():
            return
        spare = self.arrival.spare
        assert spare is not None
        self._stop_watching()
        reply = self._commit(spare, early=True)
        if reply is not None:
            self.early = (spare, reply)

    def _stop_watching(self) -> None:
        if self._arrival is not None:
            self._arrival.stop()

    def _commit(self, spare: Path, *, early: bool) -> dict[str, Any] | None:
        """Commit `spare`; None when an early attempt was premature (the sender's commit retries)."""
        if self.spare == spare:
            self.spare = None
        try:
            result = self.landing.commit(spare)
        except SyncRefused as exc:
            if early and exc.code in ("mismatch", "incomplete", "bad-request"):
                return None
            # A refused spare is half-filled: never reuse it.
            self.landing.discard(spare)
            return {"ok": False, "code": exc.code, "message": str(exc), "state": self._state_or_none()}
        except SupzError as exc:
            if early:
                return None
            self.landing.discard(spare)
            return {"ok": False, "code": "storage", "message": str(exc), "state": self._state_or_none()}
        return {
            "ok": True,
            "result": result.result,
            "generation_before": result.generation_before,
            "generation_after": result.generation_after,
            "set_aside": result.set_aside,
            "state": self.landing.state().as_dict(),
        }

    def _state_or_none(self) -> dict[str, Any] | None:
        try:
            return self.landing.state().as_dict()
        except SupzError:
            return None

    def close(self) -> None:
        if self._arrival is not None:
            self._arrival.close()
            self._arrival = None
        if self.spare is not None:
            self.landing.discard(self.spare)
            self.spare = None


def landing_for(paths: HostPaths) -> Landing:
    """The receiving side of the host at `paths`, which must be a supz host (a mistyped peer
    root must not grow a registry of its own)."""
    from supz.config import load_config, read_config

    if not paths.config_file.exists():
        raise SyncRefused("config", f"no supz host at {paths.root} ({paths.config_file} missing: run supz init there)",
                          thing=str(paths.root))
    return Landing(paths, host=load_config(read_config(paths.config_file)).host)


def serve_stdio(paths: HostPaths, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer JSON-line requests until the sender closes the channel.

    Between requests it watches the spare of an expected push, commits it as soon as it has
    landed, and prepares the next spare, so both are done before the sender asks.
    """
    try:
        agent = Agent(landing_for(paths))
    except SupzError as exc:
        # Answer the first request with the reason, so the sender can say it.
        stdout.write(json.dumps({"ok": False, "code": "config", "message": str(exc)}).encode("utf-8") + b"\n")
        stdout.flush()
        return 1
    fd = stdin.fileno()
    buffer = b""

    def send(message: dict[str, Any]) -> None:
        stdout.write(json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n")
        stdout.flush()

    def answer(line: bytes) -> None:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            send({"ok": False, "code": "bad-request", "message": f"unreadable request: {exc}"})
            return
        send(agent.handle(request))
        if request.get("op") == "commit":
            send(agent.handle({"op": "spare"}))

    try:
        while True:
            watched = [fd] if agent.arrival is None else [fd, agent.arrival.fileno()]
            ready, _, _ = select.select(watched, [], [])
            if agent.arrival is not None and agent.arrival.fileno() in ready:
                agent.arrived()
                if agent.early is not None and agent.early[1].get("ok"):
                    with contextlib.suppress(SupzError):
                        agent.ensure_spare()
            if fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        answer(line)
    finally:
        agent.close()
    return 0


def answer_hook(paths: HostPaths, module: str, request: str) -> int:
    """rsync daemon pre-xfer exec: write the answer to the file the client asked for.

    Requests for anything but hook/<op>...json (a peer pulling a version) pass untouched.
    """
    wanted = request.split()[0] if request.split() else ""
    prefix = f"{module}/{layout.HOOK_ANSWERS}/"
    if not wanted.startswith(prefix):
        return 0
    name = wanted[len(prefix):]
    match = _HOOK_REQUEST.fullmatch(name)
    if match is None:
        sys.stdout.write(f"supz: unknown hook request {name!r}\n")
        return 1
    agent = Agent(landing_for(paths))
    op = match["op"]
    if op == "commit":
        answer = agent.handle({"op": "commit", "spare": match["spare"] or ""})
        spare = agent.handle({"op": "spare"})
        if answer.get("state") and spare.get("ok"):
            answer["state"]["spare"] = spare["spare"]
    else:
        answer = agent.handle({"op": op, "entries": True})
    folder = layout.hook_dir(paths)
    folder.mkdir(parents=True, exist_ok=True)
    write_quick(folder / name, json.dumps(answer))
    layout.collect(paths, keep=tuple(p for p in (agent.spare,) if p is not None))
    return 0


def hook_main(argv: list[str] | None = None) -> int:
    """Entry of `python -m supz.sync.hook --root ROOT`, with rsync's RSYNC_* environment."""
    from supz.paths import resolve_root

    args = list(sys.argv[1:] if argv is None else argv)
    root = args[args.index("--root") + 1] if "--root" in args else None
    try:
        return answer_hook(resolve_root(root), os.environ.get("RSYNC_MODULE_NAME", ""),
                           os.environ.get("RSYNC_REQUEST", ""))
    except SupzError as exc:
        sys.stdout.write(f"supz: {exc}\n")
        return 1
