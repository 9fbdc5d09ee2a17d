"""Failover logic: latest-announcement-wins, FIFO parsing, the check's deadline, rendering."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import supz.failover.transitions as transitions
from supz.config import read_config
from supz.errors import ConfigError, SupzError
from supz.failover.check import check
from supz.failover.fifo import parse_line, run_fifo
from supz.failover.keepalived import render_keepalived
from supz.failover.settings import FailoverSettings, load_failover_settings
from supz.failover.transitions import Announcement, TransitionResult, announce, read_wanted, reconcile
from supz.paths import HostPaths


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the states `reconcile` applies instead of talking to supervisord."""
    states: list[str] = []

    def fake_apply(paths, state, host, pull_first=None):  # type: ignore[no-untyped-def]
        states.append(state)
        return TransitionResult(state, "x", 0.0, "ok", {})

    monkeypatch.setattr(transitions, "apply", fake_apply)
    return states


def test_the_latest_announcement_wins_whatever_order_they_arrive_in(paths: HostPaths, applied: list[str]) -> None:
    assert announce(paths, Announcement("MASTER", (200, 7)))
    assert not announce(paths, Announcement("BACKUP", (100, 5)))  # forked earlier, ran later
    assert read_wanted(paths).state == "MASTER"  # type: ignore[union-attr]
    reconcile(paths, "h")
    reconcile(paths, "h")  # a second notify for the same announcement changes nothing
    assert applied == ["MASTER"]
    announce(paths, Announcement("BACKUP", (300, 9)))
    reconcile(paths, "h")
    assert applied == ["MASTER", "BACKUP"]


def test_unknown_states_are_refused(paths: HostPaths) -> None:
    with pytest.raises(Exception, match="unknown keepalived state"):
        announce(paths, Announcement("BOSS", (1, 1)))


def test_fifo_lines_are_applied_in_order(paths: HostPaths, applied: list[str]) -> None:
    assert parse_line('INSTANCE "supz" MASTER 100\n').state == "MASTER"  # type: ignore[union-attr]
    assert parse_line("SCRIPT supz_check GOOD\n") is None
    assert parse_line('INSTANCE "broken\n') is None
    lines = ['INSTANCE "supz" BACKUP 100\n', 'INSTANCE "supz" MASTER 100\n', 'INSTANCE "supz" FAULT 0\n']
    run_fifo(paths, "h", iter(lines))
    assert applied == ["BACKUP", "MASTER", "FAULT"]


def test_check_tells_a_busy_supervisord_from_a_hung_or_dead_one(paths: HostPaths) -> None:
    """A stand-in supervisord (this root's mark, a socket that accepts and never answers)."""
    import os
    import signal
    import subprocess
    import sys

    from supz.host.leftovers import mark

    name, value = mark(paths)
    script = ("import socket, sys, time\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\n"
              "s.listen(5)\nprint('ready', flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(paths.socket)], stdout=subprocess.PIPE,
                            env=dict(os.environ, **{name: value}))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        paths.pidfile.write_text(f"{proc.pid}\n")
        started = time.monotonic()
        healthy, why = check(paths, FailoverSettings(check_timeout=0.3, busy_grace=30))
        assert time.monotonic() - started < 5  # generous: the point is that it returns at all
        assert healthy and "busy" in why, why
        os.utime(paths.check_busy, (time.time() - 60, time.time() - 60))
        healthy, why = check(paths, FailoverSettings(check_timeout=0.3, busy_grace=30))
        assert not healthy and "hung" in why, why
        os.kill(proc.pid, signal.SIGSTOP)
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            time.sleep(0.01)
        healthy, why = check(paths, FailoverSettings(check_timeout=0.3, busy_grace=30))
        assert not healthy and "stopped" in why, why
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    healthy, why = check(paths, FailoverSettings(check_timeout=0.3, busy_grace=30))
    assert not healthy and "not running" in why, why


def test_check_fails_when_supervisord_is_down(paths: HostPaths) -> None:
    healthy, why = check(paths, FailoverSettings())
    assert not healthy and "not running" in why


def test_settings_and_rendering(paths: HostPaths) -> None:
    paths.config_file.write_text(
        "[failover]\nvip = 10.9.0.100/24\ninterface = eth1\npriority = 90\nunicast_src = 10.9.0.1\n"
        "peers = 10.9.0.2\ncritical = db web\n"
    )
    settings = load_failover_settings(read_config(paths.config_file))
    text = render_keepalived(paths, settings, "hosta")
    assert "state BACKUP" in text and "nopreempt" in text and "enable_script_security" in text
    assert "supz_check weight 0" in text and "10.9.0.100/24 dev eth1" in text and "priority 90" in text
    assert f"--root {paths.root} failover notify" in text
    paths.config_file.write_text("[failover]\nvip = 10.9.0.100/24\ninterface = eth1\nnotify = fifo\n")
    fifo = render_keepalived(paths, load_failover_settings(read_config(paths.config_file)), "hosta")
    assert f"vrrp_notify_fifo {paths.notify_fifo}" in fifo and "failover notify" not in fifo
    for bad in ("vip = nonsense\n", "peers = 10.0.0.1 rm\n", "notify = mail\n", "critical = ../x\n"):
        paths.config_file.write_text("[failover]\ninterface = eth1\n" + bad)
        with pytest.raises(SupzError):
            load_failover_settings(read_config(paths.config_file))
    paths.config_file.write_text("[failover]\n")
    with pytest.raises(ConfigError, match="needs vip and interface"):
        render_keepalived(paths, load_failover_settings(read_config(paths.config_file)), "hosta")


def test_concurrent_reconcilers_serialize(paths: HostPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = []

    def slow_apply(paths, state, host, pull_first=None):  # type: ignore[no-untyped-def]
        inside.append(1)
        assert len(inside) == 1, "two transitions at once"
        time.sleep(0.05)
        inside.pop()
        return TransitionResult(state, "x", 0.05, "ok", {})

    monkeypatch.setattr(transitions, "apply", slow_apply)
    threads = []
    for seq, state in enumerate(["BACKUP", "MASTER", "BACKUP", "MASTER"]):
        announce(paths, Announcement(state, (seq, seq)))
        threads.append(threading.Thread(target=reconcile, args=(paths, "h")))
        threads[-1].start()
    for thread in threads:
        thread.join()
    assert read_wanted(paths).state == "MASTER"  # type: ignore[union-attr]


def test_the_transition_log_is_read_by_one_reader_with_a_tail_bound(paths: HostPaths) -> None:
    """`supz failover log`, `supz status` (the last failover) and the switchover (this host's move
    out of MASTER) all read var/log/supz/failover.jsonl through `read_log`; a tail bound reads
    only the end of a long log, dropping the line it cut."""
    import json

    from supz.failover.standing import last_failover
    from supz.failover.switchover import _last_transition

    lines = [json.dumps({"from": "BACKUP", "to": "MASTER", "epoch": 100.0 + i, "seconds": 0.5, "result": "ok",
                         "time": f"t{i}", "pad": "x" * 40}) for i in range(50)]
    lines.append(json.dumps({"from": "MASTER", "to": "MASTER", "epoch": 200.0, "result": "ok"}))
    lines.append(json.dumps({"from": "MASTER", "to": "FAULT", "epoch": 300.0, "seconds": 1.5, "result": "ok",
                             "time": "t-last"}))
    paths.failover_log.write_text("\n".join(lines) + "\nnot json\n")
    assert len(transitions.read_log(paths, None)) == 52
    cut = transitions.read_log(paths, None, tail=len(lines[-1]) + len(lines[-2]) + 40)
    assert [e["epoch"] for e in cut] == [200.0, 300.0]  # the cut line before them is dropped, not misread
    exact = transitions.read_log(paths, None, tail=len(lines[-1]) + 1 + len("not json\n"))
    assert [e["epoch"] for e in exact] == [300.0]  # a line ending just before the bound is whole
    assert transitions.read_log(paths, 3, tail=1 << 16)[-1]["to"] == "FAULT"
    assert last_failover(paths) == {"time": "t-last", "from": "MASTER", "to": "FAULT", "seconds": 1.5, "result": "ok"}
    assert _last_transition(paths, since=250.0)["to"] == "FAULT"  # type: ignore[index]
    assert _last_transition(paths, since=350.0) is None
    paths.failover_log.unlink()
    assert transitions.read_log(paths, None, tail=100) == [] and last_failover(paths) is None


def test_one_liveness_helper_refuses_pid_0_and_zombies(paths: HostPaths) -> None:
    """supz.host.leftovers.pid_alive is the one way supz asks whether a pid lives: `supz down`
    with a pid file naming 0 and no supervisord says so (kill(0) would have said alive)."""
    import os
    import subprocess

    from supz.failover import readiness
    from supz.host import daemon, leftovers
    from supz.sync import state

    assert not any(hasattr(module, "_alive") for module in (daemon, leftovers, readiness, state))
    assert leftovers.pid_alive(os.getpid()) and not leftovers.pid_alive(0) and not leftovers.pid_alive(-1)
    zombie = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and leftovers.pid_alive(zombie.pid):
        time.sleep(0.01)
    assert not leftovers.pid_alive(zombie.pid)  # exited, not yet reaped
    zombie.wait()
    paths.pidfile.write_text("0\n")
    (paths.supervisord_conf).write_text("[supervisord]\n")
    assert daemon.down(paths, timeout=1) == "supervisord is not running"
