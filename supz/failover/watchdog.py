"""`supz failover watchdog`: a MASTER whose keepalived is gone stops its HA applications.

keepalived that dies without running its notify (kill -9 of both of its processes, an OOM kill, a
hang) leaves its host MASTER while the peer takes over after the detection time: the
applications would run on both hosts. keepalived runs the vrrp check every `check_interval`
seconds in every state, and every run touches `var/lib/supz/state/check-heartbeat`: when that
file is older than `keepalived_silence` (3 check intervals plus 1 s) on a MASTER, the watchdog
announces FAULT in keepalived's own order and reconciles, as a notify would (the applications
stop, the hold-down starts). A heartbeat never written means keepalived never ran here (a
standalone test, a role set by hand): the watchdog then does nothing.

It runs as the host-local program `supz-watchdog` (etc/supz/host.d/supz-watchdog.conf, written by
`supz init --ha`), so it lives and dies with the supervisord whose programs it guards.
"""

from __future__ import annotations

import time

from supz.failover.settings import FailoverSettings
from supz.failover.transitions import Announcement, TransitionResult, announce, now_sequence, reconcile
from supz.paths import HostPaths
from supz.role import HA_ROLE, read_role

POLL = 0.5


def silence(paths: HostPaths, now: float | None = None) -> float | None:
    """Seconds since keepalived last ran the check here; None when it never did."""
    try:
        beat = paths.check_heartbeat.stat().st_mtime
    except OSError:
        return None
    return (time.time() if now is None else now) - beat


def watch_once(paths: HostPaths, settings: FailoverSettings, host: str) -> list[TransitionResult]:
    """One look: on a MASTER whose keepalived is silent, go FAULT; return the transitions made."""
    if read_role(paths) != HA_ROLE:
        return []
    quiet = silence(paths)
    if quiet is None or quiet < settings.silence_limit:
        return []
    announce(paths, Announcement("FAULT", now_sequence(), "watchdog"))
    return reconcile(paths, host)


def run(paths: HostPaths, settings: FailoverSettings, host: str, log: object = None) -> None:  # pragma: no cover
    """Look every half second, forever (supervisord stops it)."""
    while True:
        for result in watch_once(paths, settings, host):
            if callable(log):
                log(f"keepalived silent for {settings.silence_limit:g}s on the MASTER: "
                    f"{result.previous} -> {result.to} in {result.seconds:.3f}s: {result.result}")
        time.sleep(POLL)
