"""Operating the pair with real keepalived in network namespaces: maintenance mode (freeze),
switchover and standby readiness.

Copies of applications are counted from /proc (tests/integration/procs.py) and sampled while
keepalived moves the VIP, never asked of a supervisord.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from supz.cli.main import run
from supz.config import set_options
from tests.integration import test_keepalived
from tests.integration.test_failover_chaos import DETECTION, copies, exactly_once_on, start_pair
from tests.integration.test_keepalived import REASON, Node, wait

pair = test_keepalived.pair  # the keepalived pair fixture, used here by name

pytestmark = pytest.mark.skipif(REASON is not None, reason=f"failover lab: {REASON}")


def pids(node: Node) -> dict[str, int]:
    with node.supz.client() as client:
        infos = client.call("supervisor", "getAllProcessInfo")
    return {i["name"]: i["pid"] for i in infos if i["pid"]}  # type: ignore[union-attr]


def test_a_frozen_pair_moves_the_vip_but_no_application(pair: tuple[Node, Node, str]) -> None:
    """freeze --pair, kill -9 of A's keepalived: the VIP moves to B, no application starts or
    stops on either host; unfreeze B: B runs the set; unfreeze A: A runs none."""
    a, b, vip = pair
    names = [f"app{i:02d}" for i in range(12)]
    start_pair(a, b, names)
    before = pids(a)

    frozen = a.supz.supz("failover", "freeze", "--pair", "--reason", "kernel update", check=True)
    assert "host-a: failover frozen" in frozen.stdout and "host-b: failover frozen" in frozen.stdout, frozen.stdout
    shown = a.supz.supz("status", "--cluster")
    assert "FROZEN" in shown.stdout and "FROZEN for maintenance" in shown.stderr and "kernel update" in shown.stderr
    assert shown.returncode == 0, shown.stderr

    a.kill_keepalived()
    wait("the VIP to move to B", lambda: b.holds_vip(vip), timeout=DETECTION + 10)
    wait("B's keepalived to announce MASTER",
         lambda: json.loads(b.supz.paths.failover_wanted.read_text())["state"] == "MASTER", timeout=10)
    quiet_until = time.monotonic() + 6  # past the watchdog's silence limit on A
    while time.monotonic() < quiet_until:
        assert copies(a, b) == {n: [1, 0] for n in names}
        time.sleep(0.2)
    assert pids(a) == before, "an application was restarted on the frozen MASTER"
    assert a.role() == "MASTER" and b.role() == "BACKUP"
    view = json.loads(b.supz.supz("status", "--json").stdout)
    assert view["failover"]["keepalived"] == "MASTER" and view["failover"]["maintenance"]["reason"] == "kernel update"

    thawed = b.supz.supz("failover", "unfreeze", check=True)
    assert "BACKUP -> MASTER" in thawed.stdout, thawed.stdout
    assert b.role() == "MASTER"
    a.supz.supz("failover", "unfreeze", check=True)
    took = exactly_once_on(b, a, names, limit=30)
    print(f"\nunfreeze: every application exactly once, on B, after {took:.2f}s")
    assert a.role() == "FAULT"
    audit = [json.loads(line)["command"] for line in a.supz.paths.audit_log.read_text().splitlines()]
    assert "failover-freeze" in audit and "failover-unfreeze" in audit


def test_switchover_there_and_back_and_refused_to_a_standby_that_is_not_ready(pair: tuple[Node, Node, str]) -> None:
    """A -> B with 200 entries (SUPZ_SWITCHOVER_PROGRAMS), B -> A asked on the standby, then B
    frozen for maintenance: refused with the reason, nothing moved. (A release deleted on B alone
    cannot be shown here: the lab's hosts share one filesystem; tests/unit/test_readiness.py shows
    that check.)"""
    a, b, vip = pair
    count = int(os.environ.get("SUPZ_SWITCHOVER_PROGRAMS", "200"))
    names = [f"sw{i:03d}" for i in range(count)]
    start_pair(a, b, names)
    wait("B's keepalived to run its check", lambda: b.supz.paths.check_heartbeat.exists(), timeout=10)

    ready = a.supz.supz("failover", "ready")
    assert ready.returncode == 0 and f"host-b: ready ({count} entries" in ready.stdout, ready.stdout + ready.stderr

    moved = a.supz.supz("failover", "switchover", "--yes", timeout=400)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    print(f"\nswitchover A -> B, {count} entries:\n{moved.stdout}")
    downtime = float(re.search(r"applications down ([0-9.]+)s", moved.stdout).group(1))  # type: ignore[union-attr]
    assert [line.split()[0] for line in moved.stdout.splitlines()[:5]] == ["target", "push", "ready", "handover", "back"]
    assert b.role() == "MASTER" and a.role() == "BACKUP" and b.holds_vip(vip) and not a.holds_vip(vip)
    exactly_once_on(b, a, names, limit=10)
    assert set(b.supz.states().values()) == {"RUNNING"} and len(b.supz.states()) == count
    assert 0 < downtime < 120

    back = a.supz.supz("failover", "switchover", "--yes", timeout=400)  # asked on the standby
    assert back.returncode == 0, back.stdout + back.stderr
    print(f"switchover B -> A, asked on A:\n{back.stdout}")
    assert a.role() == "MASTER" and b.role() == "BACKUP" and a.holds_vip(vip)
    exactly_once_on(a, b, names, limit=10)

    b.supz.supz("failover", "freeze", check=True)
    refused = a.supz.supz("failover", "switchover", "--yes", timeout=400)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "host-b is not ready: host-b: -: frozen for maintenance" in refused.stderr, refused.stderr
    assert a.role() == "MASTER" and b.role() == "BACKUP" and a.holds_vip(vip)
    assert not a.supz.paths.failover_handover.exists()
    assert copies(a, b) == {n: [1, 0] for n in names}
    shown = a.supz.supz("status", "--cluster")
    assert "NOT READY (1): host-b: -: frozen for maintenance" in shown.stdout, shown.stdout
    assert "last failover BACKUP -> MASTER" in shown.stdout and "last failover FAULT -> BACKUP" in shown.stdout
    unready = a.supz.supz("failover", "ready")
    assert unready.returncode == 1 and "host-b: -: frozen for maintenance" in unready.stdout
    b.supz.supz("failover", "unfreeze", check=True)
    audit = [json.loads(line) for line in a.supz.paths.audit_log.read_text().splitlines()]
    assert [r["result"].split(":")[0] for r in audit if r["command"] == "failover-switchover"] == ["ok", "refused"]


def test_alerts_of_a_failover_and_a_switchover_reach_a_receiver_that_was_down(
        pair: tuple[Node, Node, str]) -> None:
    """Both hosts spool their events while the loopback receiver is down (delivery fails), then
    deliver them, in order and each once, when it is back: A's crash and B's takeover, then a
    switchover back to A."""
    from tests.unit.test_alerts import Receiver

    a, b, _ = pair
    receiver = Receiver()
    try:
        for node in (a, b):
            set_options(node.supz.paths.config_file, "alerts",
                        {"target.hook": f"webhook http://127.0.0.1:{receiver.port}/supz", "timeout": 2})
        names = [f"al{i}" for i in range(5)]
        start_pair(a, b, names)
        a.kill_keepalived()
        exactly_once_on(b, a, names, limit=DETECTION + 10)
        wait("A to leave MASTER", lambda: a.role() == "FAULT", timeout=20)
        a.start_keepalived()
        wait("A back as BACKUP after its hold-down", lambda: a.role() == "BACKUP", timeout=60)
        wait("A's keepalived to run its check", lambda: a.supz.paths.check_heartbeat.exists(), timeout=10)
        moved = a.supz.supz("failover", "switchover", "--yes", timeout=300)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        # Delivered from this namespace, where the receiver listens on 127.0.0.1 (down so far).
        for node in (a, b):
            assert run(["--root", str(node.supz.root), "alerts", "deliver", "--once"]) == 1
        receiver.up()
        for node in (a, b):
            assert run(["--root", str(node.supz.root), "alerts", "deliver", "--once"]) == 0
            assert run(["--root", str(node.supz.root), "alerts", "deliver", "--once"]) == 0  # nothing twice
    finally:
        receiver.down()
    by_host: dict[str, list[tuple[int, str, str]]] = {}
    for event in receiver.got:
        what = event.get("to", "") if event["kind"] == "failover" else event.get("result", "")
        by_host.setdefault(event["host"], []).append((event["seq"], event["kind"], what))
    assert len({e["id"] for e in receiver.got}) == len(receiver.got)
    for host, events in by_host.items():
        assert [seq for seq, _, _ in events] == sorted(seq for seq, _, _ in events), (host, events)
    kinds_b = [(kind, what) for _, kind, what in by_host["host-b"]]
    kinds_a = [(kind, what) for _, kind, what in by_host["host-a"]]
    assert kinds_b[:1] == [("failover", "MASTER")] and ("switchover", "ok") in kinds_b, kinds_b
    assert kinds_b.index(("switchover", "ok")) > kinds_b.index(("failover", "FAULT")), kinds_b
    assert ("failover", "FAULT") in kinds_a and kinds_a[-1] == ("failover", "MASTER"), kinds_a
