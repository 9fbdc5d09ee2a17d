"""Network namespaces for tests: hosts on a private bridge, daemons inside them, always cleaned up.

A `Lab` is a Linux bridge living in its own namespace, one namespace per host plugged into it
with a veth pair, and one uplink from the test process's own namespace, so the test (and
anything it runs directly) reaches every host and the hosts reach each other (VRRP multicast
included). Addresses are 10.231.N.0/24 with N chosen free (no route, no address, and a lock
file held for the lab's life, so concurrent test runs never share a subnet).

    from tests.netns import Lab, unavailable

    reason = unavailable()                   # None, or why namespaces cannot be used here
    with Lab() as lab:
        b = lab.add_host("b")                # namespace <lab>-b, b.address == "10.231.N.2"
        lab.gateway                          # "10.231.N.254": the test process's address on the lab
        b.run(["ip", "-br", "addr"])         # CompletedProcess of a command run inside the namespace
        proc = b.popen(["sleep", "100"])     # a Popen inside the namespace (killed when the lab closes)
        sshd = b.start_sshd(workdir, authorized_key=pub)   # sshd on b.address:22, key login only
        rsyncd = b.start_daemon(["rsync", "--daemon", "--no-detach", "--config", conf], port=873)
        rsyncd.stop(); rsyncd.start()        # a daemon can be stopped and started again
        b.set_link(up=False)                 # unplug the host (its interface goes down), True to replug
    # on exit, even after a failure: every daemon and every process left in the lab's namespaces
    # is killed, the namespaces and links are deleted, the subnet lock is released.

Everything is done with `ip` (iproute2) and argument lists; it needs root (see `unavailable`).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

# SUPZ_LAB_PREFIX (two octets) and SUPZ_LAB_TAG (up to 3 letters, the start of every namespace and
# link name) keep concurrent runs of different people apart on one machine.
PREFIX = os.environ.get("SUPZ_LAB_PREFIX", "10.231")
TAG = os.environ.get("SUPZ_LAB_TAG", "sz")[:3]
GATEWAY_OCTET = 254
SSHD = "/usr/sbin/sshd"
_counter = itertools.count()


def unavailable() -> str | None:
    """Why network namespaces cannot be used by this test run, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    probe = f"szprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def quiet_shell(argv: list[str], binds: Sequence[tuple[Path, Path]] = ()) -> list[str]:
    """Run `argv` in a private mount namespace where root's ~/.bashrc is empty, and each
    (source, target) of `binds` is bind-mounted: what this host alone sees (a folder of its own
    over a shared path).

    bash reads ~/.bashrc for every command run over ssh; on a developer's machine that may start
    pyenv or worse (0.2 s per command), which would swamp every ssh round trip a test makes.
    """
    rc = Path(os.path.expanduser("~root")) / ".bashrc"
    mounts = [(Path("/dev/null"), rc)] if rc.exists() else []
    mounts += list(binds)
    if not mounts or shutil.which("unshare") is None:
        if binds:
            raise RuntimeError("unshare is needed for a private mount namespace")
        return argv
    steps = [f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}" for source, target in mounts]
    script = " && ".join([*steps, f"exec {shlex.join(argv)}"])
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]


def wait_port(address: str, port: int, timeout: float = 10.0,
              proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once a TCP connection to address:port succeeds (the daemon listens).

    With `proc`, give up as soon as that process has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with status {proc.returncode} before listening") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {address}:{port} after {timeout:g} s") from None
            time.sleep(0.05)


@dataclass
class Daemon:
    """A long-running program inside a namespace; `stop()` and `start()` may be repeated."""

    host: NetnsHost
    argv: list[str]
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, timeout: float = 10.0) -> Daemon:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = self.host.popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        if self.port is not None:
            try:
                wait_port(self.host.address, self.port, timeout, self.proc)
            except (TimeoutError, RuntimeError) as exc:
                self.stop()
                tail = self.log.read_text(errors="replace")[-500:] if self.log and self.log.exists() else ""
                raise RuntimeError(f"{self.argv[0]} did not start: {exc}\n{tail}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _terminate(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class NetnsHost:
    lab: Lab
    name: str
    netns: str
    address: str
    ifname: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(argv), **kwargs)  # type: ignore[call-overload, no-any-return]

    def popen(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.command(argv), **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc  # type: ignore[no-any-return]

    def start_daemon(self, argv: list[str], *, port: int | None = None, log: Path | None = None,
                     timeout: float = 10.0) -> Daemon:
        daemon = Daemon(self, argv, port=port, log=log)
        self.daemons.append(daemon)
        return daemon.start(timeout)

    def start_sshd(self, workdir: Path, *, authorized_key: str, port: int = 22,
                   binds: Sequence[tuple[Path, Path]] = ()) -> Daemon:
        """sshd listening on this host's address: root may log in with `authorized_key` only;
        what it runs sees `binds` (see `quiet_shell`)."""
        workdir.mkdir(parents=True, exist_ok=True)
        hostkey = workdir / "ssh_host_ed25519_key"
        if not hostkey.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
        (workdir / "authorized_keys").write_text(authorized_key.strip() + "\n")
        os.chmod(workdir / "authorized_keys", 0o600)
        config = workdir / "sshd_config"
        config.write_text("\n".join([
            f"Port {port}",
            f"ListenAddress {self.address}",
            f"HostKey {hostkey}",
            f"PidFile {workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 50",
            "MaxSessions 50",
            "LogLevel ERROR",
        ]) + "\n")
        # Debian's sshd wants its privilege separation directory (systemd makes it at boot).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        return self.start_daemon(quiet_shell([SSHD, "-D", "-e", "-f", str(config)], binds), port=port,
                                 log=workdir / "sshd.log")

    def set_link(self, *, up: bool) -> None:
        ip("-n", self.netns, "link", "set", "eth0", "up" if up else "down")

    def kill_all(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        for proc in self.procs:
            _terminate(proc, grace=2.0)
        # Anything still inside the namespace was started by this test: end it.
        left = ip("netns", "pids", self.netns, check=False).stdout.split()
        for pid in left:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


class Lab:
    """A private L2 segment of namespaced hosts; use it as a context manager."""

    def __init__(self, prefix: str = PREFIX, tag: str = TAG) -> None:
        # `prefix` (the /16 of the lab's subnets) and `tag` (the start of its namespace and link
        # names) let concurrent test runs of different branches keep apart.
        self.prefix = prefix
        self.name = f"{tag}{os.getpid() % 100000}{next(_counter)}"
        self.switch = f"{self.name}-sw"
        self.uplink = f"{self.name}u"
        self.hosts: dict[str, NetnsHost] = {}
        self.subnet: int | None = None
        self._lock: int | None = None
        self._lock_path = ""

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.{self.subnet}.{GATEWAY_OCTET}"

    def _reserve_subnet(self) -> int:
        start = 20 + os.getpid() % 200
        for offset in range(230):
            n = 20 + (start - 20 + offset) % 230
            fd = os.open(f"/tmp/.supz-netns-{self.prefix}.{n}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            used = ip("-4", "route", "show", f"{self.prefix}.{n}.0/24").stdout.strip() or \
                ip("-4", "addr", "show", "to", f"{self.prefix}.{n}.0/24").stdout.strip()
            if used:
                os.close(fd)
                continue
            self._lock = fd
            self._lock_path = f"/tmp/.supz-netns-{self.prefix}.{n}.lock"
            return n
        raise RuntimeError(f"no free {self.prefix}.N.0/24 subnet for a test lab")

    def __enter__(self) -> Lab:
        try:
            self.subnet = self._reserve_subnet()
            ip("netns", "add", self.switch)
            ip("-n", self.switch, "link", "set", "lo", "up")
            ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", self.switch, "link", "set", "br0", "up")
            ip("link", "add", self.uplink, "type", "veth", "peer", "name", "up0", "netns", self.switch)
            ip("-n", self.switch, "link", "set", "up0", "master", "br0", "up")
            ip("addr", "add", f"{self.gateway}/24", "dev", self.uplink)
            ip("link", "set", self.uplink, "up")
        except BaseException:
            self.close()
            raise
        return self

    def add_host(self, name: str) -> NetnsHost:
        if not name.isalnum() or len(name) > 4 or name in self.hosts:
            raise ValueError(f"host name {name!r}: up to 4 letters or digits, unique in the lab")
        number = len(self.hosts) + 2
        netns = f"{self.name}-{name}"
        outside = f"{self.name}{name}"
        ip("netns", "add", netns)
        host = NetnsHost(self, name, netns, f"{self.prefix}.{self.subnet}.{number}", "eth0")
        self.hosts[name] = host
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", self.switch, "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("-n", self.switch, "link", "set", outside, "master", "br0", "up")
        ip("-n", netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.kill_all()
            ip("netns", "del", host.netns, check=False)
        self.hosts = {}
        ip("link", "del", self.uplink, check=False)
        ip("netns", "del", self.switch, check=False)
        if self._lock is not None:
            # The links are gone: the subnet is free again (a lab locking a fresh file of this name
            # from now on is right to take it).
            with contextlib.suppress(OSError):
                os.unlink(self._lock_path)
            os.close(self._lock)
            self._lock = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
