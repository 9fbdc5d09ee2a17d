"""Benchmark hosts: a supz root (supervisord with the extension) and a stock root (plain supervisord).

Every supervisord the benchmark starts is recorded in a `Fleet`, and `Fleet.destroy_all()` kills
it with its whole process tree and removes its root, on success, failure or Ctrl-C alike.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from supz.audit import current_who
from supz.paths import HostPaths
from supz.registry import Registry
from supz.supervisord.client import SupervisorClient

BIN = Path(sys.executable).parent
STOCK_CONF = "supervisord.stock.conf"
_SUPZ_SECTION = re.compile(r"^\[rpcinterface:supz\]\n(?:[^\[\n].*\n)*", re.MULTILINE)
_MINFDS = re.compile(r"^minfds = \d+$", re.MULTILINE)


class BenchError(Exception):
    """A benchmark step did not reach the state it needs (a program not RUNNING, a command failed)."""


def sleep_program(name: str, startsecs: int = 1) -> str:
    """The benchmark's application: a `sleep` that counts as started after `startsecs`."""
    return (
        f"[program:{name}]\ncommand = /bin/sleep 1000000\nstartsecs = {startsecs}\n"
        "stopwaitsecs = 5\nautorestart = false\n"
    )


def program_names(count: int, prefix: str = "app") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(count)]


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (supervisord's programs live in their own process groups)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class BenchHost:
    """One root with one supervisord: `kind` is "supz" (extension loaded) or "stock" (plain)."""

    root: Path
    kind: str
    pids: set[int] = field(default_factory=set)

    @property
    def paths(self) -> HostPaths:
        return HostPaths(self.root)

    @property
    def conf(self) -> Path:
        if self.kind == "stock":
            return self.paths.etc / STOCK_CONF
        return self.paths.supervisord_conf

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, SUPZ_ROOT=str(self.root), HOME=str(self.root))

    def client(self) -> SupervisorClient:
        return SupervisorClient(f"unix://{self.paths.socket}")

    def run(self, program: str, *args: str, check: bool = True,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run one of the venv's commands against this host, as an operator would type it."""
        command = [str(BIN / program), *args]
        if program == "supervisorctl":
            command[1:1] = ["-c", str(self.conf)]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode not in (0,):
            output = (result.stdout + result.stderr).strip()[-400:]
            raise BenchError(f"{program} {' '.join(args)} exited {result.returncode}: {output}")
        return result

    def registry(self) -> Registry:
        return Registry(self.paths, host=self.root.name)

    def add_entries(self, names: Iterable[str], startsecs: int = 1) -> None:
        """Admit entries through the registry itself (what `supz registry add` does), in-process."""
        registry, who = self.registry(), current_who(self.root.name)
        for name in names:
            registry.add(name, sleep_program(name, startsecs), who=who, op="add")

    def write_programs(self, names: Iterable[str], folder: Path, startsecs: int = 1) -> None:
        """Stock side: plain program files, the way operators keep them today."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / f"{name}.conf").write_text(sleep_program(name, startsecs), encoding="utf-8")

    def start(self, timeout: float = 600) -> None:
        """Start this host's supervisord (whatever its programs) and wait until it answers."""
        if self.kind == "supz":
            self.run("supz", "up", "--timeout", str(timeout), timeout=timeout + 30)
        else:
            self.run("supervisord", "-c", str(self.conf))
            deadline = time.monotonic() + timeout
            with self.client() as client:
                while not client.is_up():
                    if time.monotonic() > deadline:
                        raise BenchError(f"stock supervisord under {self.root} did not answer in {timeout:g}s")
                    time.sleep(0.05)
        pid = self.pid()
        if pid is None:
            raise BenchError(f"no supervisord pid under {self.root}")
        self.pids.add(pid)

    def pid(self) -> int | None:
        try:
            return int(self.paths.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """Stop supervisord and every program it started, now: freeze it, kill its tree, kill it."""
        pid = self.pid()
        if pid is not None:
            self.pids.add(pid)
        for pid in list(self.pids):
            if not _alive(pid):
                self.pids.discard(pid)
                continue
            _signal(pid, signal.SIGSTOP)
            for child in _children(pid):
                _signal(child, signal.SIGKILL)
            _signal(pid, signal.SIGKILL)
            _signal(pid, signal.SIGCONT)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.pids.discard(pid)
        with_socket = self.paths.socket
        if with_socket.exists():
            with_socket.unlink()

    def restart(self) -> None:
        self.kill()
        self.start()

    def wait_loaded(self, expected: int, state: str = "RUNNING", timeout: float = 600) -> None:
        """Block (untimed) until `expected` processes are in `state`; fail loudly otherwise."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                infos = client.supervisor("getAllProcessInfo")
                count = sum(1 for i in infos if i["statename"] == state)
                if count == expected:
                    return
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.root}: {count} of {expected} processes {state} after {timeout:g}s")
                time.sleep(0.5)


def _without_syncer(host: BenchHost) -> None:
    """No registry syncer, health daemon, failover watchdog or alert programs on benchmark roots:
    each would be one more program on one side only (sync and health have their own cases)."""
    for own in ("supz-sync.conf", "supz-health.conf", "supz-watchdog.conf", "supz-alerts.conf",
                "supz-alerts-events.conf"):
        (host.paths.host_programs / own).unlink(missing_ok=True)


class Fleet:
    """Every host the benchmark made; `destroy_all` leaves no supervisord, program or root behind."""

    def __init__(self) -> None:
        self.hosts: list[BenchHost] = []

    def _new_root(self, label: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"supzb-{label}-", dir="/tmp"))
        os.chmod(path, 0o755)
        return path

    def supz_host(self, label: str, *init_args: str) -> BenchHost:
        """A supz root: `supz init` (with `init_args`, e.g. --ha), supervisord not started yet."""
        host = BenchHost(self._new_root(label), "supz")
        self.hosts.append(host)
        host.run("supz", "init", "--host", label, *init_args)
        _without_syncer(host)
        return host

    def stock_host(self, label: str, programs: int) -> BenchHost:
        """A stock root: the same layout and supervisord settings, without the supz extension.

        Its `active/` folder plays the conf.d operators include today, `parked/` the folder they
        move files out to. Its minfds is what `programs` need (5 fds each, plus room for clients,
        rounded up to a power of two) and no more: supervisor's forked child closes every fd up
        to minfds one Python call at a time, so a larger minfds would slow the stock side down.
        """
        host = BenchHost(self._new_root(label), "stock")
        self.hosts.append(host)
        host.run("supz", "init", "--host", label)
        _without_syncer(host)
        text = host.paths.own_supervisord_conf.read_text(encoding="utf-8")
        stock = _SUPZ_SECTION.sub("", text)
        minfds = 1 << (5 * programs + 1024 - 1).bit_length()
        stock, found = _MINFDS.subn(f"minfds = {minfds}", stock)
        # supz's own file includes host.d only (the extension loads the registry); the stock side
        # includes its `active/` folder, as operators include conf.d.
        include = f"files = {host.paths.host_programs}/*.conf"
        stock, included = stock.replace(include, f"{include} {host.paths.active}/*.conf"), stock.count(include)
        if "rpcinterface:supz" in stock or found != 1 or included != 1:
            raise BenchError("could not make a stock supervisord.conf from supz's")
        host.conf.write_text(stock, encoding="utf-8")
        return host

    def destroy_all(self) -> None:
        for host in self.hosts:
            try:
                host.kill()
            finally:
                shutil.rmtree(host.root, ignore_errors=True)
        self.hosts.clear()


def move_all(names: Sequence[str], src: Path, dst: Path) -> None:
    """What an operator does with `mv`: move program files between folders."""
    for name in names:
        os.replace(src / f"{name}.conf", dst / f"{name}.conf")
