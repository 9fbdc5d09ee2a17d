"""Shared fixtures: real supz hosts (a root folder, its supervisord) driven through the real CLIs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from supz.paths import HostPaths
from supz.supervisord.client import SupervisorClient

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
SYNCER_PROGRAM = "supz-sync"
# supz's own host-local programs: the syncer and the health daemon on every host; on HA hosts the
# failover watchdog, the alert deliverer and the event listener (supz.host.layout.HA_PROGRAMS).
HEALTH_PROGRAM = "supz-health"
SUPZ_PROGRAMS = (SYNCER_PROGRAM, HEALTH_PROGRAM, "supz-watchdog", "supz-alerts", "supz-alerts-events")


def sleep_program(name: str, *, numprocs: int = 1, startsecs: int = 0, extra: str = "") -> str:
    """A program file whose processes just sleep: the cheapest real application."""
    lines = [f"[program:{name}]", "command = /bin/sleep 100000", f"startsecs = {startsecs}", "stopwaitsecs = 5"]
    if numprocs > 1:
        lines += ["process_name = %(program_name)s_%(process_num)02d", f"numprocs = {numprocs}", "numprocs_start = 1"]
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def short_tempdir(prefix: str = "supz-") -> Path:
    """Roots live under /tmp with short names: a unix socket path must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)
    return path


@dataclass
class SupzHost:
    """One supz host under a root folder, driven the way a user would: through the CLIs."""

    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    netns: str | None = None  # run its commands (and so its supervisord) inside this namespace

    @property
    def paths(self) -> HostPaths:
        return HostPaths(self.root)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["SUPZ_ROOT"] = str(self.root)
        env["HOME"] = str(self.root)
        return env

    def run(self, program: str, *args: str, user: str | None = None, input: str | None = None,
            check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / program), *args]
        if user is not None:
            command = ["runuser", "-u", user, "--", "env", f"SUPZ_ROOT={self.root}", f"HOME={self.root}", *command]
        if self.netns is not None:
            command = ["ip", "netns", "exec", self.netns, *command]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, input=input,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{program} {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def supz(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run("supz", *args, **kwargs)  # type: ignore[arg-type]

    def supzcli(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run("supzcli", *args, **kwargs)  # type: ignore[arg-type]

    def client(self) -> SupervisorClient:
        return SupervisorClient.for_host(self.paths)

    def call(self, namespace: str, method: str, *args: object) -> object:
        """One XML-RPC call on a fresh connection (closed after, so no socket leaks)."""
        with self.client() as client:
            return client.call(namespace, method, *args)

    def pid_of(self, namespec: str) -> int:
        return int(self.call("supervisor", "getProcessInfo", namespec)["pid"])  # type: ignore[index]

    def add(self, name: str, text: str) -> None:
        path = self.root / f"{name}.conf"
        path.write_text(text)
        self.supz("registry", "add", str(path), check=True)
        path.unlink()

    def states(self, *, with_syncer: bool = False) -> dict[str, str]:
        """namespec -> state, as supervisord's own API reports it (PARKED ones are not loaded).

        supz's own host-local programs (the syncer and health daemon every host runs, the watchdog of an HA host)
        are left out unless asked.
        """
        with self.client() as client:
            infos = client.supervisor("getAllProcessInfo")
        return {f"{i['group']}:{i['name']}": i["statename"] for i in infos
                if with_syncer or i["group"] not in SUPZ_PROGRAMS}

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def audit_lines(self) -> list[dict]:  # type: ignore[type-arg]
        import json

        if not self.paths.audit_log.exists():
            return []
        return [json.loads(line) for line in self.paths.audit_log.read_text().splitlines() if line.strip()]

    def supervisord_pid(self) -> int | None:
        try:
            return int(self.paths.pidfile.read_text())
        except (OSError, ValueError):
            return None

    def kill_everything(self) -> None:
        """Last-resort cleanup of this host's supervisord, its whole process tree and anything
        naming its root. supervisord is frozen first, so it cannot restart a child it loses, and
        the tree is read while the children are still its children (from /proc: no truncated
        command lines)."""
        pid = self.supervisord_pid()
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        for _ in range(5):
            rows = list(_processes())
            doomed = {p for p, _, cmd in rows if str(self.root) in cmd and p != os.getpid()}
            if pid and any(p == pid for p, _, _ in rows):
                doomed.add(pid)
            grew = True
            while grew:
                more = {p for p, parent, _ in rows if parent in doomed and p not in doomed}
                doomed |= more
                grew = bool(more)
            if not doomed:
                return
            for victim in doomed:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(victim, signal.SIGKILL)
            time.sleep(0.05)
            pid = None


def _processes() -> Iterator[tuple[int, int, str]]:
    """(pid, ppid, command line) of every process, read from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmd = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        yield int(entry), ppid, cmd


def make_host(*init_args: str, up: bool = True, netns: str | None = None) -> SupzHost:
    host = SupzHost(short_tempdir(), netns=netns)
    host.supz("init", "--host", host.root.name, *init_args, check=True)
    if up:
        host.supz("up", check=True)
    return host


def allow_changes_off_master(host: SupzHost, allow: bool = True) -> None:
    """Seeding an HA host that is not MASTER: registry changes there are refused unless allowed."""
    from supz.config import set_options

    set_options(host.paths.config_file, "failover", {"changes_off_master": "yes" if allow else "no"})


def destroy_host(host: SupzHost) -> None:
    """Tear down at once: SIGKILL the host's supervisord and its whole tree, remove the root."""
    try:
        host.kill_everything()
    finally:
        shutil.rmtree(host.root, ignore_errors=True)


@pytest.fixture
def host() -> Iterator[SupzHost]:
    """A fresh standalone host with supervisord running."""
    h = make_host()
    try:
        yield h
    finally:
        destroy_host(h)


def needs_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root (creates users, groups or namespaces)")


@pytest.fixture
def traversable_venv() -> Iterator[None]:
    """Let other users reach supz's executables (a checkout under /root is not): restored after."""
    changed: list[tuple[Path, int]] = []
    reach = [Path(sys.executable), Path(os.path.realpath(sys.executable)), Path(sys.base_prefix) / "lib",
             Path(__file__).resolve()]
    for folder in {parent for path in reach for parent in path.parents}:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            changed.append((folder, mode))
            os.chmod(folder, mode | 0o005)
    try:
        yield
    finally:
        for folder, mode in reversed(changed):
            os.chmod(folder, mode & 0o7777)


@pytest.fixture
def member(traversable_venv: None) -> Iterator[tuple[str, str]]:
    """(group, user): a socket group and a user in it (not root), who can reach supz's executables;
    removed afterwards. Needs root."""
    tag = uuid.uuid4().hex[:6]
    group, user = f"supzg{tag}", f"supzu{tag}"
    subprocess.run(["groupadd", group], check=True, capture_output=True)
    try:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", group, user],
                       check=True, capture_output=True)
        yield group, user
    finally:
        subprocess.run(["userdel", user], check=False, capture_output=True)
        subprocess.run(["groupdel", group], check=False, capture_output=True)
