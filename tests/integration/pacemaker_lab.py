"""A 3-node Corosync + Pacemaker cluster on this one machine, for the tests of ocf:supz:registry.

Each node is a network namespace on a private bridge plus its own mount, UTS and PID namespace,
whose PID 1 is tests/integration/pacemaker_node.sh: corosync, pacemakerd, an sshd (the syncer's
transport) and one supervisord per supz group root (/srv/GROUP inside the node). Killing a node
is a power-off: SIGKILL of its PID 1 (the kernel ends every process of the node) and its link down.
Names and addresses carry the prefix `s17` and 10.217.N.0/24; everything is removed on close.

    with PacemakerLab(groups=("ga", "gb")) as lab:
        lab.up()                              # 3 nodes online with quorum
        lab.x(1, ["crm_mon", "-1"])           # a command inside node 1
        lab.supz(1, "ga", "registry", "list") # supz on group ga's root of node 1
        lab.kill(1); lab.start(1)             # power-off, boot
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from supz.host.leftovers import MARK
from tests.integration.procs import supervised_process

PREFIX = "s17"
NODES = (1, 2, 3)
NODE_INIT = Path(__file__).with_name("pacemaker_node.sh")
SUPZ = str(Path(sys.executable).parent / "supz")
PACKAGES = ("corosync", "pacemakerd", "crm_mon", "cibadmin", "crm_resource", "ocf-tester", "nft", "sshd")
SEED_CIB = """<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-stonith" name="stonith-enabled" value="false"/>
        <nvpair id="opt-nqp" name="no-quorum-policy" value="stop"/>
        <nvpair id="opt-dcdt" name="dc-deadtime" value="5s"/>
        <nvpair id="opt-recheck" name="cluster-recheck-interval" value="30s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""


def unavailable() -> str | None:
    """Why this lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network, mount and PID namespaces)"
    missing = [name for name in PACKAGES if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if missing:
        return (f"Pacemaker lab needs {', '.join(missing)} (apt-get install pacemaker corosync pacemaker-cli-utils "
                "resource-agents libxml2-utils nftables openssh-server; ./bin/bootstrap as root does)")
    return None


def _run(argv: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


class PacemakerLab:
    def __init__(self, groups: tuple[str, ...] = ("ga",), token_ms: int = 1000) -> None:
        self.groups = groups
        self.token_ms = token_ms
        self.tag = f"{PREFIX}-{os.getpid() % 10000}"
        self.subnet = f"10.217.{20 + os.getpid() % 200}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}pcmk-", dir="/tmp"))
        os.chmod(self.workdir, 0o755)
        self.init_pids: dict[int, int] = {}
        self.launchers: dict[int, subprocess.Popen[bytes]] = {}
        self.key = self.workdir / "id_ed25519"

    # ---- addresses and names -------------------------------------------------------------

    def netns(self, n: int) -> str:
        return f"{self.tag}-n{n}"

    def address(self, n: int) -> str:
        return f"{self.subnet}.1{n}"

    def vip(self, index: int) -> str:
        return f"{self.subnet}.{100 + index}"

    def node_dir(self, n: int) -> Path:
        return self.workdir / f"n{n}"

    def root(self, n: int, group: str) -> Path:
        """Group `group`'s supz root of node n, as the host sees it (inside the node: /srv/GROUP)."""
        return self.node_dir(n) / group

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> PacemakerLab:
        try:
            self._network()
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
            for n in NODES:
                self._prepare(n)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _network(self) -> None:
        hub = f"{self.tag}-hub"
        _run(["ip", "netns", "add", hub])
        _run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", hub, "link", "set", "br0", "up"])
        for n in NODES:
            ns = self.netns(n)
            _run(["ip", "netns", "add", ns])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", hub, "link", "add", f"veth{n}", "type", "veth", "peer", "name", "eth0", "netns", ns])
            _run(["ip", "-n", hub, "link", "set", f"veth{n}", "master", "br0", "up"])

    def _corosync_conf(self) -> str:
        nodes = "".join(f"\tnode {{\n\t\tname: n{n}\n\t\tnodeid: {n}\n\t\tring0_addr: {self.address(n)}\n\t}}\n"
                        for n in NODES)
        return (f"totem {{\n\tversion: 2\n\tcluster_name: {self.tag}\n\ttransport: knet\n\tcrypto_cipher: none\n"
                f"\tcrypto_hash: none\n\ttoken: {self.token_ms}\n}}\n"
                "logging {\n\tto_stderr: no\n\tto_logfile: yes\n\tlogfile: /var/log/corosync/corosync.log\n"
                "\tto_syslog: no\n\ttimestamp: hires\n}\n"
                f"quorum {{\n\tprovider: corosync_votequorum\n}}\nnodelist {{\n{nodes}}}\n")

    def _prepare(self, n: int) -> None:
        d = self.node_dir(n)
        for sub in ("lib-pacemaker/cib", "lib-pacemaker/pengine", "lib-pacemaker/blackbox", "lib-pacemaker/cores",
                    "lib-corosync", "lib-heartbeat/lrm", "lib-heartbeat/cores", "log/pacemaker/bundles",
                    "log/corosync", "etc-corosync", "sshd"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        _run(["chown", "-R", "hacluster:haclient", str(d / "lib-pacemaker"), str(d / "log/pacemaker")])
        (d / "etc-corosync/corosync.conf").write_text(self._corosync_conf())
        cib = d / "lib-pacemaker/cib/cib.xml"
        cib.write_text(SEED_CIB)
        _run(["chown", "hacluster:haclient", str(cib)])
        os.chmod(cib, 0o600)
        hostkey = d / "sshd/ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
        (d / "sshd/authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        os.chmod(d / "sshd/authorized_keys", 0o600)
        (d / "sshd/sshd_config").write_text("\n".join([
            f"ListenAddress {self.address(n)}", f"HostKey {hostkey}", "PidFile none",
            f"AuthorizedKeysFile {d / 'sshd/authorized_keys'}", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            "MaxStartups 50", "MaxSessions 50", "LogLevel ERROR"]) + "\n")
        for group in self.groups:
            self._init_root(n, group)

    def _init_root(self, n: int, group: str) -> None:
        """`supz init --ha` of /srv/GROUP as node n will see it, then its settings: managed by
        Pacemaker, the other nodes' roots of the group as sync peers over ssh."""
        from supz.config import set_options

        root = self.root(n, group)
        root.mkdir()
        script = (f"mount -t tmpfs tmpfs /srv && mkdir /srv/{group} && mount --bind {root} /srv/{group} && "
                  f"exec {SUPZ} --root /srv/{group} init --ha --host n{n}-{group}")
        _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
        ssh = (f"-i {self.key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
               "-o BatchMode=yes -o ConnectTimeout=1 -o ServerAliveInterval=1 -o ServerAliveCountMax=2")
        conf = root / "etc/supz/supz.conf"
        set_options(conf, "ha", {"manager": "pacemaker"})
        set_options(conf, "failover", {"pull_budget": 1})
        set_options(conf, "sync", {"peers": ", ".join(f"root@{self.address(m)}:/srv/{group}" for m in NODES if m != n),
                                   "ssh_options": ssh, "retry_min": 0.2, "retry_max": 1, "timeout": 3})

    def start(self, n: int) -> None:
        """Boot node n: only its own address on eth0, link up, then its PID 1."""
        ns = self.netns(n)
        _run(["ip", "-n", ns, "addr", "flush", "dev", "eth0"])
        _run(["ip", "-n", ns, "addr", "add", f"{self.address(n)}/24", "dev", "eth0"])
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        out = open(self.node_dir(n) / "init.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            launcher = subprocess.Popen(
                ["ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc",
                 "--propagation", "private", str(NODE_INIT), str(self.node_dir(n)), f"n{n}", SUPZ, *self.groups],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
        self.launchers[n] = launcher
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = _run(["pgrep", "-P", str(launcher.pid)], check=False).stdout.split()
            if children:
                self.init_pids[n] = int(children[0])
                return
            time.sleep(0.05)
        raise RuntimeError(f"node n{n} did not start: {(self.node_dir(n) / 'init.out').read_text()[-500:]}")

    def kill(self, n: int) -> None:
        """Power-off: SIGKILL the node's PID 1 (the kernel ends every process of it), link down."""
        pid = self.init_pids.pop(n, None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        launcher = self.launchers.pop(n, None)
        if launcher is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                launcher.wait(timeout=10)
        _run(["ip", "-n", self.netns(n), "link", "set", "eth0", "down"], check=False)

    def close(self) -> None:
        for n in list(self.init_pids):
            self.kill(n)
        for n in NODES:
            _run(["ip", "netns", "del", self.netns(n)], check=False)
        _run(["ip", "netns", "del", f"{self.tag}-hub"], check=False)
        if os.environ.get("SUPZ_KEEP_LAB"):
            print(f"lab kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- inside a node -------------------------------------------------------------------

    def x(self, n: int, argv: list[str], check: bool = False, timeout: float = 60,
          input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv inside node n (its network, mount, UTS and PID namespaces)."""
        done = subprocess.run(["nsenter", "-t", str(self.init_pids[n]), "-m", "-u", "-n", "-p", "--", *argv],
                              capture_output=True, text=True, timeout=timeout, input=input, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"n{n}: {' '.join(argv)}: exit {done.returncode}: "
                               f"{(done.stderr or done.stdout).strip()[-800:]}")
        return done

    def supz(self, n: int, group: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.x(n, [SUPZ, "--root", f"/srv/{group}", *args], check=check)

    def pids(self, n: int) -> list[int]:
        """Every process of node n, from /proc (its PID namespace)."""
        pid = self.init_pids.get(n)
        if pid is None:
            return []
        try:
            ns = os.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                        found.append(int(entry))
        return found

    def program_pids(self, n: int, group: str) -> list[tuple[str, int]]:
        """(program name, pid) of every copy that group's supervisord started on node n, from /proc
        (a program's own children are not copies)."""
        mark = f"{MARK}=/srv/{group}".encode()
        named: dict[int, str] = {}
        parents: dict[int, int] = {}
        for pid in self.pids(n):
            found = supervised_process(pid)
            if found is None or mark not in found[0] or found[1].startswith("supz-"):
                continue
            named[pid], parents[pid] = found[1], found[2]
        return [(name, pid) for pid, name in named.items() if named.get(parents[pid]) != name]

    def programs(self, n: int, group: str) -> Counter[str]:
        """Application name -> live copies on node n (supz's own host-local programs left out)."""
        return Counter(name for name, _ in self.program_pids(n, group))

    # ---- the cluster ---------------------------------------------------------------------

    def crm_mon(self, n: int) -> ET.Element | None:
        done = self.x(n, ["crm_mon", "--output-as=xml", "-1"], timeout=20)
        if not done.stdout.strip():
            return None
        try:
            return ET.fromstring(done.stdout)
        except ET.ParseError:
            return None

    def online(self, n: int) -> tuple[set[str], bool]:
        """(nodes node n sees online, whether it has quorum)."""
        mon = self.crm_mon(n)
        if mon is None:
            return set(), False
        summary = mon.find("summary/current_dc")
        quorate = summary is not None and summary.get("with_quorum") == "true"
        nodes = {node.get("name", "") for node in mon.iter("node") if node.get("online") == "true"
                 and node.get("unclean") != "true" and mon.find("nodes") is not None}
        return nodes, quorate

    def wait(self, what: str, predicate, limit: float = 60, pause: float = 0.2) -> float:  # type: ignore[no-untyped-def]
        """Poll until predicate() is true; the seconds it took. Fails at `limit` naming `what`."""
        started = time.monotonic()
        while True:
            if predicate():
                return time.monotonic() - started
            if time.monotonic() - started > limit:
                raise AssertionError(f"{what}: not after {limit:g} s")
            time.sleep(pause)

    def wait_members(self, nodes: tuple[int, ...], limit: float = 60) -> float:
        """Until every node in `nodes` sees exactly them online, with quorum."""
        want = {f"n{n}" for n in nodes}

        def agreed() -> bool:
            for n in nodes:
                seen, quorate = self.online(n)
                if seen != want or not quorate:
                    return False
            return True
        return self.wait(f"nodes {sorted(want)} online with quorum", agreed, limit)

    def where(self, n: int, resource: str) -> list[str]:
        """The nodes node n's cluster view says `resource` is active on."""
        mon = self.crm_mon(n)
        if mon is None:
            return []
        for item in mon.iter("resource"):
            if item.get("id") == resource and item.get("active") == "true":
                return sorted(node.get("name", "") for node in item.iter("node"))
        return []

    def holds(self, n: int, address: str) -> bool:
        out = _run(["ip", "-n", self.netns(n), "-o", "-4", "addr", "show", "dev", "eth0"], check=False).stdout
        return f" {address}/" in out

    def isolate(self, n: int, cut: bool = True) -> None:
        """Cut node n off the others (nftables inside its namespace), or heal it."""
        if cut:
            rules = ('table inet s17_partition {\n chain in { type filter hook input priority 0; policy accept; '
                     'iifname "eth0" drop; }\n chain out { type filter hook output priority 0; policy accept; '
                     'oifname "eth0" drop; }\n}\n')
            subprocess.run(["ip", "netns", "exec", self.netns(n), "nft", "-f", "-"], input=rules, text=True,
                           check=True)
        else:
            _run(["ip", "netns", "exec", self.netns(n), "nft", "delete", "table", "inet", "s17_partition"])
