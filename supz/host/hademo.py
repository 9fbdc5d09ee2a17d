"""`supz demo --ha`: two hosts in network namespaces on one machine, each with its own root,
supervisord, syncer (rsync over ssh), sshd and keepalived, and sample applications.

The namespaces are joined by one veth pair and reach nothing else; the demo's addresses live
only inside them.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supz.audit import current_who
from supz.config import set_options
from supz.errors import ConfigError, OperationFailed, PolicyRefused
from supz.executables import supz_executable
from supz.host.layout import InitOptions, init_host
from supz.paths import HostPaths
from supz.programfile import read_program_file
from supz.registry import Registry
from supz.role import read_role, write_role

SUBNET = "10.231.250"
VIP = f"{SUBNET}.100/24"


@dataclass(frozen=True)
class DemoHost:
    name: str
    netns: str
    address: str
    priority: int
    paths: HostPaths

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-300:]
            raise OperationFailed(f"{self.name}: {' '.join(argv[:3])}...: {output}")
        return done


def _hosts(base: Path) -> list[DemoHost]:
    return [
        DemoHost("a", "supzdemo-a", f"{SUBNET}.1", 150, HostPaths(base / "a")),
        DemoHost("b", "supzdemo-b", f"{SUBNET}.2", 100, HostPaths(base / "b")),
    ]


def _supz() -> str:
    return str(supz_executable())


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OperationFailed(f"ip {' '.join(args)}: {done.stderr.strip()}")


def preflight() -> None:
    if os.geteuid() != 0:
        raise PolicyRefused("the HA demo needs root (network namespaces, keepalived, sshd)")
    for tool in ("ip", "keepalived", "rsync", "ssh", "/usr/sbin/sshd", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise ConfigError(f"the HA demo needs {tool}: install it (./bin/bootstrap does, as root)")


def _sshd(host: DemoHost, keydir: Path) -> None:
    work = host.paths.root / "sshd"
    work.mkdir(exist_ok=True)
    hostkey = work / "host_key"
    if not hostkey.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
    (work / "authorized_keys").write_text((keydir / "id.pub").read_text())
    os.chmod(work / "authorized_keys", 0o600)
    (work / "sshd_config").write_text("\n".join([
        f"ListenAddress {host.address}", f"HostKey {hostkey}", f"PidFile {work / 'sshd.pid'}",
        f"AuthorizedKeysFile {work / 'authorized_keys'}", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "LogLevel ERROR",
    ]) + "\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host.run(["/usr/sbin/sshd", "-f", str(work / "sshd_config")])


def _configure(host: DemoHost, other: DemoHost, keydir: Path) -> None:
    ssh = (f"-i {keydir / 'id'} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
           "-o BatchMode=yes -o ConnectTimeout=2 -o ServerAliveInterval=1 -o ServerAliveCountMax=3")
    set_options(host.paths.config_file, "failover", {
        "vip": VIP, "interface": "eth0", "router_id": 61, "priority": host.priority,
        "unicast_src": host.address, "peers": other.address,
    })
    set_options(host.paths.config_file, "sync", {
        "peers": f"root@{other.address}:{other.paths.root}", "ssh_options": ssh,
        "retry_min": 0.2, "retry_max": 2, "timeout": 5,
    })


def _keepalived(host: DemoHost) -> None:
    host.run([_supz(), "--root", str(host.paths.root), "keepalived", "render", "--write"])
    run = host.paths.run
    host.run(["keepalived", "-l", "-P", "-f", str(host.paths.keepalived_conf), "-p", str(run / "keepalived.pid"),
              "-r", str(run / "vrrp.pid")])


def _wait(what: str, predicate: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise OperationFailed(f"the HA demo: timed out waiting for {what}")


def up(base: Path, samples: Path, say: Callable[[str], None]) -> list[str]:
    """Build and start the pair; return the lines that tell what to try."""
    preflight()
    hosts = _hosts(base)
    if any(Path(f"/run/netns/{h.netns}").exists() for h in hosts):
        raise ConfigError(f"an HA demo is already running: `supz --root {base} demo --ha --down` first")
    if len(str(hosts[0].paths.socket)) > 100:
        raise ConfigError(f"{base} is too deep for a unix socket path: choose a shorter --root")
    base.mkdir(parents=True, exist_ok=True)
    a, b = hosts
    try:
        _ip("netns", "add", a.netns)
        _ip("netns", "add", b.netns)
        _ip("link", "add", "szdemo-a", "netns", a.netns, "type", "veth", "peer", "name", "szdemo-b", "netns", b.netns)
        for host, link in ((a, "szdemo-a"), (b, "szdemo-b")):
            _ip("-n", host.netns, "link", "set", link, "name", "eth0")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.netns, "link", "set", "eth0", "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")
        keydir = base / "ssh"
        keydir.mkdir(exist_ok=True)
        if not (keydir / "id").exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keydir / "id")], check=True)
        for host, other in ((a, b), (b, a)):
            init_host(host.paths, InitOptions(host=f"demo-{host.name}", ha=True))
            _configure(host, other, keydir)
            write_role(host.paths, "BACKUP")
            _sshd(host, keydir)
            host.run([_supz(), "--root", str(host.paths.root), "up"])
        registry = Registry(a.paths, host="demo-a")
        for sample in sorted(samples.glob("*.conf")):
            spec = read_program_file(sample)
            registry.add(spec.name, spec.text, who=current_who("demo-a"), op="demo")
        say("starting keepalived on host a (it becomes MASTER), then on host b")
        _keepalived(a)
        _wait("host a to become MASTER", lambda: read_role(a.paths) == "MASTER")
        _keepalived(b)
        _wait("host b to settle as BACKUP", lambda: read_role(b.paths) == "BACKUP")
    except BaseException:
        down(base)
        raise
    cli = f"ip netns exec {a.netns} env SUPZ_ROOT={a.paths.root} {supz_executable('supzcli')}"
    cli_b = f"ip netns exec {b.netns} env SUPZ_ROOT={b.paths.root} {supz_executable('supzcli')}"
    supz = _supz()
    return [
        f"HA demo up: host a ({a.address}, MASTER) and host b ({b.address}, BACKUP), VIP {VIP}",
        f"  the pair:              ip netns exec {a.netns} {supz} --root {a.paths.root} status --cluster",
        f"  the shell on a:        {cli}",
        f"  the shell on b:        {cli_b}",
        f"  stop an application:   {cli} stop worker     (it is parked, and stays stopped after a failover)",
        f"  fail over (crash a):   kill -9 $(cat {a.paths.run / 'keepalived.pid'})   then watch: {cli_b} status",
        f"  bring a back:          ip netns exec {a.netns} keepalived -l -P -f {a.paths.keepalived_conf} "
        f"-p {a.paths.run / 'keepalived.pid'} -r {a.paths.run / 'vrrp.pid'}   (a comes back BACKUP after its hold-down)",
        f"  transitions:           tail {a.paths.failover_log} {b.paths.failover_log}",
        f"  tear it all down:      {supz} --root {base} demo --ha --down",
    ]


def _kill_pidfile(path: Path) -> None:
    try:
        os.kill(int(path.read_text().strip()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


def down(base: Path) -> list[str]:
    """Stop everything the demo started and remove its namespaces and folders."""
    said = []
    for host in _hosts(base):
        _kill_pidfile(host.paths.run / "keepalived.pid")
        if host.paths.config_file.exists():
            subprocess.run(["ip", "netns", "exec", host.netns, _supz(), "--root", str(host.paths.root), "down"],
                           capture_output=True, check=False)
        _kill_pidfile(host.paths.root / "sshd" / "sshd.pid")
        left = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True, check=False)
        for pid in left.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        if subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, check=False).returncode == 0:
            said.append(f"removed namespace {host.netns}")
    if base.exists() and base != Path("/"):
        shutil.rmtree(base, ignore_errors=True)
        said.append(f"removed {base}")
    return said


def default_base() -> Path:
    return Path("/tmp") / f"supz-demo-ha-{platform.node()[:16]}"
