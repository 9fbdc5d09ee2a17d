"""The failover hooks on a real supervisord (keepalived itself: tests/integration/test_keepalived.py)."""

from __future__ import annotations

import json

from tests.conftest import allow_changes_off_master, destroy_host, make_host, sleep_program


def test_notify_master_then_backup_starts_and_stops_exactly_the_active_set() -> None:
    host = make_host("--ha")
    try:
        host.supz("role", "set", "BACKUP", check=True)
        allow_changes_off_master(host)
        for name in ("app1", "app2", "app3"):
            host.add(name, sleep_program(name))
        host.supzcli("stop", "app3", check=True)  # parked on purpose
        local = host.paths.host_programs / "agent.conf"
        local.write_text(sleep_program("agent"))
        update = host.supzcli("update")
        assert "agent: added process group" in update.stdout
        host.wait_for(lambda: host.states() == {"agent:agent": "RUNNING"}, what="the host-local agent")

        master = host.supz("failover", "notify", "INSTANCE", "supz", "MASTER", "100", "--wait")
        assert master.returncode == 0, master.stderr
        assert "-> MASTER" in master.stdout and ": ok" in master.stdout
        assert host.paths.role_file.read_text().strip() == "MASTER"
        states = host.states()
        apps = {k: v for k, v in states.items() if k != "agent:agent"}
        assert apps == {"app1:app1": "RUNNING", "app2:app2": "RUNNING"}

        pids = {name: host.pid_of(name) for name in ("app1", "app2")}
        again = host.supz("failover", "notify", "INSTANCE", "supz", "MASTER", "100", "--wait")
        assert "MASTER -> MASTER" in again.stdout and ": ok" in again.stdout
        assert {name: host.pid_of(name) for name in ("app1", "app2")} == pids  # nothing restarted

        backup = host.supz("failover", "notify", "INSTANCE", "supz", "BACKUP", "100", "--wait")
        assert "MASTER -> BACKUP" in backup.stdout
        assert list(host.states()) == ["agent:agent"]  # host-local programs stay
        log = [json.loads(line) for line in host.paths.failover_log.read_text().splitlines()]
        assert [(entry["from"], entry["to"], entry["result"]) for entry in log] == [
            ("BACKUP", "MASTER", "ok"), ("MASTER", "MASTER", "ok"), ("MASTER", "BACKUP", "ok")
        ]
        assert all("seconds" in entry for entry in log)
    finally:
        destroy_host(host)


def test_racing_notifies_end_in_the_state_announced_last() -> None:
    host = make_host("--ha")
    try:
        host.supz("role", "set", "BACKUP", check=True)
        allow_changes_off_master(host)
        host.add("app1", sleep_program("app1"))
        for state in ("BACKUP", "MASTER", "BACKUP", "MASTER"):
            # Without --wait, as keepalived runs it: record and reconcile in the background.
            assert host.supz("failover", "notify", "INSTANCE", "supz", state, "100").returncode == 0
        host.wait_for(lambda: host.paths.role_file.read_text().strip() == "MASTER"
                      and host.states() == {"app1:app1": "RUNNING"}, what="MASTER with app1 running")
        host.wait_for(lambda: json.loads((host.paths.state / "failover-applied.json").read_text())["state"] == "MASTER",
                      what="the last announcement applied")
    finally:
        destroy_host(host)


def test_check_follows_supervisord_and_critical_applications() -> None:
    host = make_host("--ha")
    try:
        with open(host.paths.config_file, "a") as conf:
            conf.write("\n[failover]\ncritical = app1\nchanges_off_master = yes\n")
        host.add("app1", sleep_program("app1"))
        assert host.supz("failover", "check").returncode == 0  # BACKUP: critical apps don't count
        host.supz("failover", "notify", "INSTANCE", "supz", "MASTER", "100", "--wait", check=True)
        assert host.supz("failover", "check").returncode == 0
        host.call("supervisor", "stopProcess", "app1")
        failed = host.supz("failover", "check")
        assert failed.returncode == 1 and "app1" in failed.stderr
        host.supz("down", check=True)
        down = host.supz("failover", "check")
        assert down.returncode == 1 and "not running" in down.stderr
    finally:
        destroy_host(host)
