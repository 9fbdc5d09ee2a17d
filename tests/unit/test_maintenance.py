"""Maintenance mode on a bare root: announcements recorded, none applied, until unfreeze."""

from __future__ import annotations

from supz.failover.maintenance import maintenance_notice, maintenance_view, read_maintenance
from supz.failover.operator import freeze
from supz.failover.transitions import Announcement, announce, read_wanted, reconcile
from supz.paths import HostPaths
from supz.role import read_role, write_role


def test_a_frozen_host_records_announcements_and_applies_none(paths: HostPaths) -> None:
    write_role(paths, "BACKUP")
    outcome = freeze(paths, "host-a", reason="disk swap")
    assert outcome.frozen and outcome.changed and not freeze(paths, "host-a").changed
    announce(paths, Announcement("MASTER", (10, 1)))
    assert reconcile(paths, "host-a") == []
    assert read_role(paths) == "BACKUP" and read_wanted(paths).state == "MASTER"  # type: ignore[union-attr]
    view = {"host": "host-a", "role": "BACKUP", "failover": maintenance_view(paths)}
    line = maintenance_notice(view)
    assert "FROZEN for maintenance" in line and "disk swap" in line and "keepalived says MASTER" in line
    assert read_maintenance(paths) is not None


def test_a_frozen_standby_is_not_ready(paths: HostPaths) -> None:
    from supz.failover.readiness import local_readiness

    write_role(paths, "BACKUP")
    freeze(paths, "host-b")
    found = [p.line() for p in local_readiness(paths).problems]
    assert any("frozen for maintenance" in line and "unfreeze" in line for line in found), found
