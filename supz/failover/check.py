"""`supz failover check`, the vrrp_script: is this host fit to be (or stay) MASTER?

It must answer within a second even when supervisord hangs, so the whole check runs under an
interval timer that raises out of any blocked socket call. A timer that expires is not a
failure by itself: a supervisord that is alive (its pid runs, not stopped) but slow, because it
is starting two thousand programs, is busy, and passes for `busy_grace` seconds; a supervisord
that is gone fails at once. Every run of `supz-check` (the entry point keepalived runs) touches a heartbeat file: the
watchdog's proof that keepalived is alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from supz.errors import SupzError
from supz.failover.damping import refusal
from supz.failover.handover import handing_over
from supz.failover.settings import FailoverSettings
from supz.host.leftovers import mark
from supz.paths import HostPaths
from supz.role import HA_ROLE, read_role
from supz.supervisord.client import SupervisorClient


class CheckTimeout(Exception):
    pass


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def heartbeat(paths: HostPaths) -> None:
    """keepalived ran its check just now: the watchdog reads this file's age."""
    try:
        paths.check_heartbeat.touch()
        os.utime(paths.check_heartbeat)
    except OSError:
        pass


def supervisord_process(paths: HostPaths) -> tuple[int | None, str]:
    """(pid, state letter from /proc) of this root's supervisord; (None, "") when it is not running."""
    try:
        pid = int(paths.pidfile.read_text().strip())
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            letter = handle.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/environ", "rb") as handle:
            name, value = mark(paths)
            if f"{name}={value}".encode() not in handle.read().split(b"\0"):
                return None, ""
    except (OSError, ValueError, IndexError):
        return None, ""
    return (None, "") if letter in ("Z", "X") else (pid, letter)


def _busy(paths: HostPaths, settings: FailoverSettings, pid: int, letter: str) -> tuple[bool, str]:
    """supervisord is alive but did not answer in time: busy (healthy, for a while) or hung."""
    if letter in ("T", "t"):
        return False, f"supervisord (pid {pid}) is stopped"
    now = time.time()
    try:
        since = paths.check_busy.stat().st_mtime
    except OSError:
        since = now
        with contextlib.suppress(OSError):
            paths.check_busy.touch()
    try:
        programs = len(os.listdir(paths.active))
    except OSError:
        programs = 0
    grace = settings.busy_grace_for(programs)
    if now - since < grace:
        return True, (f"supervisord (pid {pid}) busy: alive, no answer within {settings.check_timeout:g}s "
                      f"for {now - since:.1f}s (grace {grace:g}s at {programs} programs)")
    return False, f"supervisord (pid {pid}) alive but has not answered for {now - since:.0f}s: taken as hung"


def check(paths: HostPaths, settings: FailoverSettings) -> tuple[bool, str]:
    """(healthy, why): supervisord answers (or is alive and busy, for a bounded time), and, if
    configured, every critical application runs; damping (hold-down, freeze) and a switchover
    under way (`supz.failover.handover`) may say no."""
    role = read_role(paths)
    damped = refusal(paths, role) or handing_over(paths)
    if damped is not None:
        return False, damped
    pid, letter = supervisord_process(paths)
    if pid is None:
        return False, "supervisord is not running"
    try:
        with deadline(settings.check_timeout), SupervisorClient.for_host(paths) as client:
            state = client.supervisor("getState")
            if state.get("statename") != "RUNNING":
                return False, f"supervisord is {state.get('statename')}"
            # A BACKUP runs no HA application by design: critical ones count only on the MASTER.
            if settings.critical and role == HA_ROLE:
                running = {spec.split(":", 1)[0] for spec in client.supz("running")}
                down = [name for name in settings.critical if name not in running]
                if down:
                    return False, f"critical application(s) not running: {', '.join(down)}"
            # Health hook: a critical application (supz_health_exhausted = failover) that spent its
            # restart budget fails the MASTER's check, so the peer takes over (supz/health/state.py).
            if read_role(paths) == HA_ROLE:
                from supz.health.state import failover_reason

                why = failover_reason(paths)
                if why:
                    return False, why
    except CheckTimeout:
        return _busy(paths, settings, pid, letter)
    except SupzError as exc:
        return False, str(exc)
    with contextlib.suppress(OSError):
        paths.check_busy.unlink()
    return True, "ok"


def main(argv: list[str] | None = None) -> int:
    """`supz-check [--root DIR]`: the same check as `supz failover check`, without the CLI's imports.

    keepalived runs it every check_interval seconds, so its start-up cost is paid all day long.
    """
    import argparse
    import sys

    from supz.config import read_config
    from supz.errors import ExitCode
    from supz.failover.settings import load_failover_settings
    from supz.paths import resolve_root

    parser = argparse.ArgumentParser(prog="supz-check", description=main.__doc__)
    parser.add_argument("--root", default=None, help="the host root (default $SUPZ_ROOT or /)")
    parser.add_argument("-v", "--verbose", action="store_true", help="say why")
    args = parser.parse_args(argv)
    paths = resolve_root(args.root)
    heartbeat(paths)  # keepalived runs this entry point: it is alive
    try:
        healthy, why = check(paths, load_failover_settings(read_config(paths.config_file)))
    except SupzError as exc:
        healthy, why = False, str(exc)
    if args.verbose or not healthy:
        print(why, file=sys.stdout if healthy else sys.stderr)
    return int(ExitCode.OK if healthy else ExitCode.ERROR)


def _entry() -> None:  # pragma: no cover - the console script
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry()
