"""Damping and the watchdog on a bare root: hold-down, flapping freeze, silent keepalived."""

from __future__ import annotations

import json
import os
import time

from supz.failover.damping import after_transition, read_damping, refusal, thaw
from supz.failover.settings import FailoverSettings
from supz.failover.watchdog import watch_once
from supz.paths import HostPaths
from supz.role import read_role, write_role


def _log(paths: HostPaths, *moves: tuple[str, str], at: float) -> None:
    paths.failover_log.parent.mkdir(parents=True, exist_ok=True)
    with open(paths.failover_log, "a") as handle:
        for previous, to in moves:
            handle.write(json.dumps({"from": previous, "to": to, "epoch": at, "result": "ok"}) + "\n")


def test_a_host_that_lost_master_by_its_own_failure_is_held_down(paths: HostPaths) -> None:
    now = time.time()
    after_transition(paths, "MASTER", "FAULT", hold_down=30, flap_count=6, flap_window=60, now=now)
    assert "hold-down" in (refusal(paths, "FAULT", now=now + 29) or "")
    assert refusal(paths, "BACKUP", now=now + 31) is None
    after_transition(paths, "MASTER", "BACKUP", hold_down=30, flap_count=6, flap_window=60, now=now + 40)
    assert refusal(paths, "BACKUP", now=now + 41) is None  # a handover is no failure of its own


def test_flapping_freezes_the_host_until_thawed(paths: HostPaths) -> None:
    now = time.time()
    _log(paths, ("BACKUP", "MASTER"), ("MASTER", "FAULT"), ("FAULT", "BACKUP"), ("BACKUP", "MASTER"),
         ("MASTER", "FAULT"), at=now - 10)
    _log(paths, ("BACKUP", "MASTER"), ("MASTER", "FAULT"), at=now - 600)  # outside the window
    assert not after_transition(paths, "FAULT", "BACKUP", 0, flap_count=5, flap_window=60, now=now).frozen
    _log(paths, ("BACKUP", "MASTER"), at=now)
    damping = after_transition(paths, "BACKUP", "MASTER", 0, flap_count=5, flap_window=60, now=now)
    assert damping.frozen and "5 transitions in 60s" in damping.frozen_reason
    assert refusal(paths, "MASTER") is None  # a frozen MASTER stays one
    assert "frozen" in (refusal(paths, "BACKUP") or "")  # a frozen BACKUP never takes over
    thaw(paths)
    assert not read_damping(paths).frozen and refusal(paths, "BACKUP") is None


def test_the_watchdog_ends_a_master_whose_keepalived_went_silent(paths: HostPaths) -> None:
    settings = FailoverSettings(check_interval=1)
    write_role(paths, "MASTER")
    assert watch_once(paths, settings, "h") == []  # keepalived never ran here: nothing to guard
    paths.check_heartbeat.touch()
    assert watch_once(paths, settings, "h") == []  # fresh heartbeat
    stale = time.time() - settings.silence_limit - 1
    os.utime(paths.check_heartbeat, (stale, stale))
    done = watch_once(paths, settings, "h")
    assert [(r.previous, r.to) for r in done] == [("MASTER", "FAULT")]
    assert read_role(paths) == "FAULT"
    assert watch_once(paths, settings, "h") == []  # not MASTER any more


def test_pull_before_activation_asks_a_silent_peer_again_within_its_budget(paths: HostPaths, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A slow peer is not a dead one: silent twice, then it answers with a newer registry."""
    from supz.failover import pull
    from supz.sync import peers
    from supz.sync.peers import PeerView, PullResult

    answers = [PeerView("b", False, error="timeout"), PeerView("b", False, error="timeout"), PeerView("b", True, 7)]
    monkeypatch.setattr(peers, "peer_generations", lambda _paths: [answers.pop(0)])
    monkeypatch.setattr(peers, "pull_from", lambda _paths, peer: PullResult(peer, "pulled", 0, 7))
    monkeypatch.setattr(pull, "RETRY_PAUSE", 0.01)
    monkeypatch.setattr(pull.Registry, "generation", property(lambda self: 0))
    decided = pull.pull_if_newer(paths, budget=3.0)
    assert decided.startswith("pulled generation 7 from b") and "after 3 attempt(s)" in decided

    monkeypatch.setattr(peers, "peer_generations", lambda _paths: [PeerView("b", False, error="timeout")])
    decided = pull.pull_if_newer(paths, budget=0.1)
    assert "taken as dead" in decided and "b: timeout" in decided
