"""Failover under crashes and load, with real keepalived, supervisord, sshd and rsync in network
namespaces: applications never run on both hosts, no program outlives its supervisord, a host's
own activation never fails it, a lossy link loses no change.

Copies of applications are counted from /proc (tests/integration/procs.py), never by asking a
supervisord, and sampled in a loop while things change.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from supz.audit import current_who
from supz.config import set_options
from supz.registry import Registry
from supz.role import write_role
from tests.conftest import BIN, REPO, SUPZ_PROGRAMS, destroy_host, make_host, sleep_program
from tests.integration import test_keepalived
from tests.integration.procs import programs_by_root
from tests.integration.test_keepalived import REASON, Node, seed, wait
from tests.synchelp import content

pair = test_keepalived.pair  # the keepalived pair fixture, used here by name

pytestmark = pytest.mark.skipif(REASON is not None, reason=f"failover lab: {REASON}")

# keepalived's detection of a dead MASTER: 3 x advert_int + skew (priority 100) = 3.61 s.
DETECTION = 3.61
SUPZ_OWN = SUPZ_PROGRAMS  # supz's own host-local programs: not applications


def copies(*nodes: Node) -> dict[str, list[int]]:
    """application -> copies per node (in the order given), from /proc."""
    counts = programs_by_root([node.supz.root for node in nodes])
    names = {n for c in counts.values() for n in c if n not in SUPZ_OWN}
    return {name: [counts[node.supz.root][name] for node in nodes] for name in sorted(names)}


def exactly_once_on(target: Node, other: Node, names: list[str], limit: float) -> float:
    """Sample /proc until every application runs exactly once, on `target`, and stays so for 2 s;
    return the seconds that took. Fails at `limit` with what was seen last."""
    started = time.monotonic()
    good_since: float | None = None
    worst_both = 0
    seen: dict[str, list[int]] = {}
    while time.monotonic() - started < limit + 2:
        seen = copies(target, other)
        worst_both = max(worst_both, sum(1 for c in seen.values() if c[0] and c[1]))
        ok = sorted(seen) == sorted(names) and all(c == [1, 0] for c in seen.values())
        if ok and good_since is None:
            good_since = time.monotonic()
        elif not ok:
            good_since = None
        if good_since is not None and time.monotonic() - good_since >= 2:
            return good_since - started
        if good_since is None and time.monotonic() - started > limit:
            break
        time.sleep(0.1)
    wrong = {n: c for n, c in seen.items() if c != [1, 0]}
    missing = sorted(set(names) - set(seen))
    raise AssertionError(f"not exactly once on {target.name} within {limit:g}s: wrong {dict(list(wrong.items())[:5])}, "
                         f"missing {missing[:5]}, at worst {worst_both} ran on both hosts")


def transitions_since(node: Node, since: float) -> list[tuple[str, str]]:
    try:
        lines = node.supz.paths.failover_log.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        entry = json.loads(line)
        if entry.get("epoch", 0) >= since and entry["from"] != entry["to"]:
            found.append((entry["from"], entry["to"]))
    return found


def start_pair(a: Node, b: Node, names: list[str], text: Callable[[str], str] = sleep_program) -> None:
    if len(names) <= 50:
        seed(a, names, text)
    else:  # in-process, as `supz registry add` would, without a CLI start per entry
        registry = Registry(a.supz.paths, host="host-a")
        for name in names:
            registry.add(name, text(name), who=current_who("host-a"))
    # The check's timing follows the program count (fall grows by one per thousand).
    a.supz.supz("keepalived", "render", "--write", check=True)
    a.start_keepalived()
    wait("A to become MASTER and run every application",
         lambda: a.role() == "MASTER" and copies(a, b) == {n: [1, 0] for n in names}, timeout=120)
    wait("A's transition to end", lambda: ("BACKUP", "MASTER") in transitions_since(a, 0), timeout=120)
    wait("B to hold A's registry", lambda: content(a.supz) == content(b.supz), timeout=120)
    b.supz.supz("keepalived", "render", "--write", check=True)
    b.start_keepalived()
    wait("B to settle as BACKUP", lambda: b.role() == "BACKUP")


def test_applications_never_run_on_both_hosts(pair: tuple[Node, Node, str]) -> None:
    """kill -9 of both of the MASTER's keepalived processes, then of the new MASTER's supervisord."""
    a, b, _ = pair
    names = [f"app{i:02d}" for i in range(50)]
    start_pair(a, b, names)

    pids = a.keepalived_pids()
    assert len(pids) == 2, f"keepalived and its VRRP child, found {pids}"
    a.kill_keepalived()
    took = exactly_once_on(b, a, names, limit=DETECTION + 10)
    print(f"\nkill -9 of both keepalived processes: every application exactly once, on B, after {took:.2f}s")
    assert a.role() == "FAULT"

    a.start_keepalived()
    wait("A to come back as BACKUP (after its hold-down)", lambda: a.role() == "BACKUP", timeout=60)
    pid = b.supz.supervisord_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    took = exactly_once_on(a, b, names, limit=DETECTION + 10)
    print(f"kill -9 of the MASTER's supervisord: every application exactly once, on A, after {took:.2f}s")
    assert b.role() == "FAULT" and a.role() == "MASTER"
    swept = [json.loads(line) for line in b.supz.paths.failover_log.read_text().splitlines()][-1]
    assert swept["to"] == "FAULT" and swept.get("swept", 0) >= len(names) + len(SUPZ_OWN), swept


def test_supervisord_killed_during_activation_then_up_runs_everything_once() -> None:
    """kill -9 of supervisord half-way through activating 1000 entries, then `supz up`."""
    count = 1000
    host = make_host("--ha", up=False)
    try:
        write_role(host.paths, "BACKUP")
        registry = Registry(host.paths, host=host.root.name)
        names = [f"act{i:04d}" for i in range(count)]
        for name in names:
            registry.add(name, sleep_program(name, startsecs=1), who=current_who(host.root.name))
        host.supz("up", check=True)
        notify = subprocess.Popen([str(BIN / "supz"), "--root", str(host.root), "failover", "notify", "INSTANCE",
                                   "supz", "MASTER", "100", "--wait"], env=host.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            host.wait_for(lambda: sum(programs_by_root([host.root])[host.root].values()) >= 400, timeout=120,
                          what="400 programs spawned")
            pid = host.supervisord_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            spawned = sum(programs_by_root([host.root])[host.root].values())
        finally:
            notify.wait(timeout=120)
        print(f"\nsupervisord killed with {spawned} programs spawned")
        assert host.paths.role_file.read_text().strip() == "MASTER"
        host.supz("up", check=True, timeout=300)
        wanted = {**{n: 1 for n in names}, **{own: 1 for own in SUPZ_PROGRAMS}}
        started = time.monotonic()
        seen: dict[str, int] = {}
        while time.monotonic() - started < 180:
            seen = dict(programs_by_root([host.root])[host.root])
            if seen == wanted:
                break
            assert all(c <= 1 for c in seen.values()), {n: c for n, c in seen.items() if c > 1}
            time.sleep(0.2)
        assert seen == wanted, {n: seen.get(n, 0) for n in wanted if seen.get(n, 0) != 1}
        print(f"every application once, one syncer, {time.monotonic() - started:.1f}s after `supz up`")
    finally:
        destroy_host(host)


class StallProbe:
    """getState every 50 ms on a host's socket, from its own process (bench/probe.py, so the
    test's own polling never delays it); the longest wait for an answer."""

    def __init__(self, node: Node) -> None:
        self.socket = node.supz.paths.socket
        self.longest = 0.0
        self.calls = 0

    def __enter__(self) -> StallProbe:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.probe", str(self.socket)], cwd=str(REPO),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self.proc.communicate("stop\n", timeout=60)
        figures = json.loads(out)
        self.longest, self.calls = float(figures["longest"]), int(figures["calls"])


def test_a_failover_at_scale_settles_at_once(pair: tuple[Node, Node, str]) -> None:
    """300 entries (startsecs 1; SUPZ_FAILOVER_PROGRAMS=2000 for the figure in bench/RESULTS.md):
    kill -9 of the MASTER's keepalived moves them once, and nothing flaps for the next 60 s."""
    a, b, _ = pair
    count = int(os.environ.get("SUPZ_FAILOVER_PROGRAMS", "300"))
    names = [f"big{i:04d}" for i in range(count)]
    start_pair(a, b, names, text=lambda n: sleep_program(n, startsecs=1))

    def all_running() -> bool:
        states = b.supz.states()
        return len(states) == count and all(s == "RUNNING" for s in states.values())

    since = time.time()
    with StallProbe(b) as probe:
        killed = time.monotonic()
        a.kill_keepalived()
        took = wait("every program RUNNING on B", lambda: b.role() == "MASTER" and all_running(), timeout=120)
    print(f"\n{count} programs: kill -9 of the MASTER's keepalived to all RUNNING on the new MASTER: {took:.2f}s; "
          f"longest getState wait on B meanwhile: {probe.longest * 1000:.0f} ms over {probe.calls} calls")
    quiet = 60.0
    while time.monotonic() - killed < quiet:
        time.sleep(1)
    assert transitions_since(b, since) == [("BACKUP", "MASTER")]
    assert transitions_since(a, since) == [("MASTER", "FAULT")]
    assert all_running() and copies(b, a) == {n: [1, 0] for n in names}


def slow_peers(a: Node, b: Node, delay: float) -> None:
    """Route each host's sync traffic (ssh, rsync) through a forwarder in its own namespace that
    delays every chunk by `delay`, both ways (tests/integration/slowlink.py)."""
    key = a.supz.root / "ssh" / "id"
    for node, other in ((a, b), (b, a)):
        forwarder = node.net.popen([sys.executable, "-m", "tests.integration.slowlink", "127.0.0.1", str(SLOW_PORT),
                                    other.net.address, "22", str(delay)], cwd=str(REPO), stdout=subprocess.PIPE)
        assert forwarder.stdout is not None and forwarder.stdout.readline().strip() == b"ready"
        forwarder.stdout.close()
        ssh = (f"-i {key} -p {SLOW_PORT} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
               "-o BatchMode=yes -o ConnectTimeout=2 -o ServerAliveInterval=1 -o ServerAliveCountMax=3")
        set_options(node.supz.paths.config_file, "sync", {"peers": f"root@127.0.0.1:{other.supz.root}",
                                                           "ssh_options": ssh})


SLOW_PORT = 2201


def test_a_lossy_slow_link_loses_no_change(pair: tuple[Node, Node, str]) -> None:
    """10% of A's outgoing packets dropped (nftables in A's namespace) and 150 ms each way on the
    sync traffic (a userspace forwarder): 50 changes on the MASTER all reach B, changes on B are
    refused, and after a failover B activates the newest registry, pulling it from A itself."""
    a, b, _ = pair
    names = [f"web{i}" for i in range(5)]
    start_pair(a, b, names)
    rules = "table inet lossy {\n chain out {\n  type filter hook output priority 0;\n" \
            '  oifname "eth0" numgen random mod 10 == 0 drop\n }\n}\n'
    loaded = a.net.run(["nft", "-f", "-"], input=rules)
    assert loaded.returncode == 0, loaded.stderr
    slow_peers(a, b, 0.15)
    ctx = {"user": "root", "real_user": "root", "command": "test", "args": []}
    for i in range(50):
        name = names[i % len(names)]
        method = "park" if (i // len(names)) % 2 == 0 else "unpark"
        a.supz.call("supz", method, [name], ctx)
    wait("B to hold all 50 changes", lambda: content(a.supz) == content(b.supz), timeout=120)

    refused = b.supz.supzcli("stop", names[0])
    assert refused.returncode == 4 and "host-a" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert content(a.supz) == content(b.supz)

    # A's syncer stops (it would have pushed), one more change, and A's keepalived dies: B must
    # not activate an older registry; it pulls the newest from A over the slow, lossy link.
    a.supz.call("supervisor", "stopProcess", "supz-sync")
    a.supz.call("supz", "park", [names[1]], ctx)
    newest = content(a.supz)
    assert content(b.supz)[0] < newest[0]
    a.kill_keepalived()
    wait("B to become MASTER", lambda: b.role() == "MASTER", timeout=30)
    wait("B to run A's newest active set",
         lambda: copies(b, a) == {n: [1, 0] for n in names if n != names[1]}, timeout=30)
    assert content(b.supz) == newest
    # The transition's log line is written once its activation is done: B may run the set first.
    wait("B's transition to MASTER in its log", lambda: ("BACKUP", "MASTER") in transitions_since(b, 0), timeout=30)
    lines = [json.loads(line) for line in b.supz.paths.failover_log.read_text().splitlines()]
    decision = [entry for entry in lines if entry.get("to") == "MASTER" and entry.get("from") != "MASTER"][-1]
    print(f"\nB's pull before activation: {decision.get('pull')}")
    assert "pulled generation" in decision.get("pull", "")
