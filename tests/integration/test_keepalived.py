"""Failover end to end: real keepalived, supervisord, syncer and rsync over ssh, two hosts in
network namespaces on one private segment. Skipped, with the reason, where namespaces cannot be
made (not root) or keepalived is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from supz.config import set_options
from supz.role import read_role
from tests.conftest import BIN, SupzHost, allow_changes_off_master, destroy_host, make_host, sleep_program
from tests.netns import PREFIX, Daemon, Lab, NetnsHost, unavailable
from tests.synchelp import content

REASON = unavailable() or (None if shutil.which("keepalived") else "keepalived is not installed")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"failover lab: {REASON}")

APPS = ("app1", "app2", "app3")


@dataclass
class Node:
    """One host of the pair: its supz root, its namespace, its keepalived and sshd."""

    name: str
    supz: SupzHost
    net: NetnsHost
    keepalived: Daemon | None = None

    def start_keepalived(self) -> None:
        conf = self.supz.paths.keepalived_conf
        base = self.supz.paths.run
        argv = ["keepalived", "-n", "-l", "-P", "-f", str(conf), "-p", str(base / "keepalived.pid"),
                "-r", str(base / "vrrp.pid")]
        if self.keepalived is None:
            self.keepalived = self.net.start_daemon(argv, log=self.supz.paths.log / "keepalived.log")
        else:
            self.keepalived.start()

    def keepalived_pids(self) -> list[int]:
        pids = subprocess.run(["ip", "netns", "pids", self.net.netns], capture_output=True, text=True).stdout.split()
        found = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/comm") as comm:
                    if comm.read().strip() == "keepalived":
                        found.append(int(pid))
            except OSError:
                pass
        return found

    def kill_keepalived(self) -> None:
        """kill -9, as a crash: keepalived gets no chance to say goodbye."""
        for pid in self.keepalived_pids():
            os.kill(pid, signal.SIGKILL)
        if self.keepalived is not None and self.keepalived.proc is not None:
            self.keepalived.proc.wait(timeout=10)
            self.keepalived.proc = None

    def stop_keepalived(self) -> None:
        """A clean stop (SIGTERM): keepalived hands the VIP over with priority 0."""
        assert self.keepalived is not None
        self.keepalived.stop()

    def role(self) -> str:
        return read_role(self.supz.paths)

    def ha_running(self) -> set[str]:
        try:
            states = self.supz.states()
        except Exception:  # noqa: BLE001 - supervisord down counts as running nothing
            return set()
        running = {spec.split(":")[0] for spec, state in states.items() if state == "RUNNING"}
        return running & set(APPS)

    def holds_vip(self, vip: str) -> bool:
        out = self.net.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
        return f" {vip}/" in out


def configure(node: Node, other: Node, vip: str, priority: int, key: str, notify: str = "notify") -> None:
    ssh = (f"-i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
           "-o BatchMode=yes -o ConnectTimeout=2 -o ServerAliveInterval=1 -o ServerAliveCountMax=3")
    conf = node.supz.paths.config_file
    set_options(conf, "failover", {"vip": vip, "interface": "eth0", "router_id": 51, "priority": priority,
                                   "unicast_src": node.net.address, "peers": other.net.address, "advert_int": 1,
                                   "notify": notify, "hold_down": 5})
    set_options(conf, "sync", {"peers": f"root@{other.net.address}:{other.supz.root}", "ssh_options": ssh,
                               "retry_min": 0.2, "retry_max": 1, "timeout": 5})
    node.supz.supz("keepalived", "render", "--write", check=True)


@pytest.fixture
def pair() -> Iterator[tuple[Node, Node, str]]:
    with Lab() as lab:
        nodes: list[Node] = []
        try:
            for name in ("a", "b"):
                net = lab.add_host(name)
                nodes.append(Node(name, make_host("--ha", "--host", f"host-{name}", up=False, netns=net.netns), net))
            a, b = nodes
            vip = f"{PREFIX}.{lab.subnet}.100"
            keys = a.supz.root / "ssh"
            keys.mkdir()
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True)
            public = (keys / "id.pub").read_text()
            for node, other, priority in ((a, b, 150), (b, a, 100)):
                node.net.start_sshd(node.supz.root / "sshd", authorized_key=public)
                configure(node, other, f"{vip}/24", priority, str(keys / "id"))
                node.supz.supz("role", "set", "BACKUP", check=True)
                node.supz.supz("up", check=True)
            yield a, b, vip
        finally:
            for node in nodes:
                destroy_host(node.supz)


def seed(node: Node, names: list[str] | tuple[str, ...], text=sleep_program) -> None:  # type: ignore[no-untyped-def]
    """Register applications on a host that is not MASTER yet (a pair being set up)."""
    allow_changes_off_master(node.supz)
    try:
        for name in names:
            node.supz.add(name, text(name))
    finally:
        allow_changes_off_master(node.supz, False)


def cluster(node: Node) -> subprocess.CompletedProcess[str]:
    return node.supz.supz("status", "--cluster", "--json")


def wait(what: str, predicate, timeout: float = 30.0) -> float:  # type: ignore[no-untyped-def]
    """Wait for `predicate`; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def test_failover_end_to_end(pair: tuple[Node, Node, str]) -> None:
    a, b, vip = pair
    # 1. A starts first and becomes MASTER with every active application; B runs none and holds
    #    the same registry.
    seed(a, APPS)
    a.start_keepalived()
    wait("A to become MASTER and run every application",
         lambda: a.role() == "MASTER" and a.ha_running() == set(APPS))
    assert a.holds_vip(vip)
    b.start_keepalived()
    wait("B to settle as BACKUP", lambda: b.role() == "BACKUP")
    wait("B to hold A's registry", lambda: content(a.supz) == content(b.supz))
    assert b.ha_running() == set() and not b.holds_vip(vip)
    view = cluster(a)
    assert view.returncode == 0, view.stderr
    hosts = {h["host"]: h for h in json.loads(view.stdout)["hosts"]}
    assert (hosts["host-a"]["role"], hosts["host-a"]["vip_held"], hosts["host-a"]["running"]) == ("MASTER", True, 3)
    assert (hosts["host-b"]["role"], hosts["host-b"]["vip_held"], hosts["host-b"]["running"]) == ("BACKUP", False, 0)
    assert hosts["host-a"]["generation"] == hosts["host-b"]["generation"]

    # 2. Park an application on A, crash A's keepalived: B takes over with exactly A's active set.
    a.supz.supzcli("stop", "app3", check=True)
    wait("B to receive the park", lambda: content(a.supz) == content(b.supz))
    a.kill_keepalived()
    took = wait("B to run exactly A's active set", lambda: b.role() == "MASTER" and b.ha_running() == {"app1", "app2"})
    print(f"\nfailover after kill -9 of the master's keepalived: {took:.2f}s until all RUNNING on the new master")
    # A's watchdog sees keepalived silent: A leaves MASTER and stops its applications.
    wait("A's watchdog to stop A's applications", lambda: a.role() == "FAULT" and a.ha_running() == set())
    assert b.ha_running() == {"app1", "app2"}, "the parked application must stay parked"
    # A's keepalived died holding the VIP: the address is on both hosts until it comes back.
    split = cluster(b)
    assert split.returncode == 1 and "split brain: the VIP is on 2 hosts" in split.stdout
    shown = b.supz.supz("status", "--cluster")
    assert shown.returncode == 1 and "ERROR: split brain" in shown.stderr
    print(shown.stdout + shown.stderr)
    # A is not MASTER: registry changes there are refused, naming the MASTER, nothing written.
    before = content(a.supz)
    refused = a.supz.supzcli("stop", "app1")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "refused: this host is FAULT" in refused.stdout + refused.stderr and "host-b" in refused.stdout + refused.stderr
    assert content(a.supz) == before

    # 3. A comes back: it stays BACKUP, runs no HA application, and receives B's registry,
    #    including a change made on B meanwhile.
    b.supz.supzcli("start", "app3", check=True)
    a.start_keepalived()
    wait("A to go BACKUP and stop its applications", lambda: a.role() == "BACKUP" and a.ha_running() == set())
    wait("A to receive B's registry", lambda: content(a.supz) == content(b.supz))
    assert b.role() == "MASTER" and b.ha_running() == set(APPS) and b.holds_vip(vip)
    assert "app3" in a.supz.supz("registry", "list", "--json", check=True).stdout
    assert cluster(b).returncode == 0

    # 4. B's keepalived stops cleanly: A takes over within about the skew time.
    b.stop_keepalived()
    took = wait("A to take over after a clean stop", lambda: a.role() == "MASTER" and a.ha_running() == set(APPS))
    print(f"takeover after a clean stop of the master's keepalived: {took:.2f}s")
    wait("B to stop its applications", lambda: b.ha_running() == set())
    b.start_keepalived()
    wait("B to come back as BACKUP", lambda: b.role() == "BACKUP")

    # 5. supervisord dies on the MASTER: its check fails and the peer takes over.
    pid = a.supz.supervisord_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    took = wait("B to take over from a master without supervisord",
                lambda: b.role() == "MASTER" and b.ha_running() == set(APPS), timeout=45)
    print(f"takeover after supervisord died on the master: {took:.2f}s")
    wait("A to leave MASTER", lambda: a.role() in ("FAULT", "BACKUP"))

    # 6. A BACKUP (or FAULT) host whose supervisord restarts starts no HA application.
    a.supz.supz("up", check=True)
    time.sleep(2)
    assert a.ha_running() == set()
    wait("A to recover to BACKUP", lambda: a.role() == "BACKUP")
    assert a.ha_running() == set() and b.ha_running() == set(APPS)


def test_fifo_mode_applies_keepalived_transitions_in_order() -> None:
    """notify_fifo: keepalived writes each transition to a FIFO, `supz failover fifo` applies them."""
    with Lab() as lab:
        net, other_net = lab.add_host("a"), lab.add_host("b")
        node = Node("a", make_host("--ha", "--host", "host-a", up=False, netns=net.netns), net)
        try:
            other = Node("b", SupzHost(node.supz.root / "nobody"), other_net)
            configure(node, other, f"{PREFIX}.{lab.subnet}.100/24", 150, "/dev/null", notify="fifo")
            assert "vrrp_notify_fifo" in node.supz.paths.keepalived_conf.read_text()
            node.supz.supz("role", "set", "BACKUP", check=True)
            node.supz.supz("up", check=True)
            seed(node, APPS)
            reader = net.start_daemon([str(BIN / "supz"), "--root", str(node.supz.root), "failover", "fifo"],
                                      log=node.supz.paths.log / "fifo.log")
            wait("the FIFO", lambda: node.supz.paths.notify_fifo.exists())
            node.start_keepalived()
            wait("MASTER through the FIFO", lambda: node.role() == "MASTER" and node.ha_running() == set(APPS))
            node.stop_keepalived()
            wait("the STOP transition through the FIFO", lambda: node.role() == "STOP" and node.ha_running() == set())
            reader.stop()
            log = node.supz.paths.failover_log.read_text().splitlines()
            assert [json.loads(line)["to"] for line in log][-2:] == ["MASTER", "STOP"]
        finally:
            destroy_host(node.supz)
