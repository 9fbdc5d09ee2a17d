"""Health and failover with real keepalived: a critical application that spends its restart
budget fails the MASTER's vrrp check, the peer takes over and checks the same entries with the
same settings. The pair of tests/integration/test_keepalived.py (network namespaces)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import allow_changes_off_master
from tests.integration import test_keepalived
from tests.integration.test_health import app_entry
from tests.integration.test_keepalived import REASON, Node, wait

pair = test_keepalived.pair  # the keepalived pair fixture, used here by name

pytestmark = pytest.mark.skipif(REASON is not None, reason=f"failover lab: {REASON}")


def health_state(node: Node) -> dict[str, Any]:
    try:
        return dict(json.loads(node.supz.paths.health_state.read_text()))
    except (OSError, ValueError):
        return {}


def status_of(node: Node, namespec: str) -> str:
    return str(health_state(node).get("targets", {}).get(namespec, {}).get("status", ""))


def netns_flag(pid: int) -> str:
    """The flag name healthapp.py reads for every process of `pid`'s network namespace."""
    return os.readlink(f"/proc/{pid}/ns/net").replace(":", "-").strip("[]").replace("[", "")


def test_critical_application_exhausted_fails_the_master_over(pair: tuple[Node, Node, str],
                                                              tmp_path: Path) -> None:
    a, b, _vip = pair
    flags = tmp_path / "flags"
    flags.mkdir()
    os.chmod(tmp_path, 0o755)
    allow_changes_off_master(a.supz)  # seeding A while it is still BACKUP
    a.supz.add("crit", app_entry("crit", flags, health={"max_restarts": "1", "exhausted": "failover"}))
    a.supz.add("side", app_entry("side", flags, probe="tcp", health={"interval": "0.5"}))
    allow_changes_off_master(a.supz, False)
    a.start_keepalived()
    wait("A MASTER, crit HEALTHY on A", lambda: a.role() == "MASTER" and status_of(a, "crit:crit") == "HEALTHY")
    b.start_keepalived()
    wait("B BACKUP, its health daemon idle", lambda: b.role() == "BACKUP" and health_state(b).get("acting") is False)
    settings_on_a = {n: v["settings"] for n, v in health_state(a)["apps"].items()}
    assert set(settings_on_a) == {"crit", "side"}

    (flags / netns_flag(a.supz.pid_of("crit:crit"))).write_text("500")
    wait("B to take over from A", lambda: b.role() == "MASTER" and a.role() != "MASTER", timeout=90)
    audit = [line for line in a.supz.audit_lines() if line["command"].startswith("health ")]
    assert [line["command"] for line in audit] == ["health restart", "health failover"]
    assert audit[1]["args"][0] == "crit" and "1 restarts in 600 s" in audit[1]["args"][1]

    # The new MASTER probes the same entries with the same settings (they came with the registry).
    wait("crit HEALTHY on B", lambda: status_of(b, "crit:crit") == "HEALTHY" and status_of(b, "side:side") == "HEALTHY")
    assert {n: v["settings"] for n, v in health_state(b)["apps"].items()} == settings_on_a
    wait("A's health daemon idle", lambda: health_state(a).get("acting") is False)
    assert b.supz.supz("failover", "check").returncode == 0
