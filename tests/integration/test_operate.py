"""Operating the pair with real keepalived in network namespaces: maintenance mode (freeze).

Copies of applications are counted from /proc (tests/integration/procs.py) and sampled while
keepalived moves the VIP, never asked of a supervisord.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.test_failover_chaos import DETECTION, copies, exactly_once_on, start_pair
from tests.integration.test_keepalived import REASON, Node, pair, wait  # noqa: F401 - pair is a fixture

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
