"""`supz failover check`, the vrrp_script: is this host fit to be (or stay) MASTER?

It must answer within a second even when supervisord hangs, so the whole check runs under an
interval timer that raises out of any blocked socket call.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from supz.errors import SupzError
from supz.failover.settings import FailoverSettings
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


def check(paths: HostPaths, settings: FailoverSettings) -> tuple[bool, str]:
    """(healthy, why): supervisord answers and, if configured, every critical application runs."""
    try:
        with deadline(settings.check_timeout), SupervisorClient.for_host(paths) as client:
            state = client.supervisor("getState")
            if state.get("statename") != "RUNNING":
                return False, f"supervisord is {state.get('statename')}"
            # A BACKUP runs no HA application by design: critical ones count only on the MASTER.
            if settings.critical and read_role(paths) == HA_ROLE:
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
        return False, f"supervisord did not answer within {settings.check_timeout:g}s"
    except SupzError as exc:
        return False, str(exc)
    return True, "ok"


def main(argv: list[str] | None = None) -> int:
    """`supz-check [--root DIR]`: the same check as `supz failover check`, without the CLI's imports.

    keepalived runs it every check_interval seconds, so its start-up cost is paid all day long.
    """
    import argparse
    import sys

    from supz.errors import ExitCode
    from supz.config import read_config
    from supz.failover.settings import load_failover_settings
    from supz.paths import resolve_root

    parser = argparse.ArgumentParser(prog="supz-check", description=main.__doc__)
    parser.add_argument("--root", default=None, help="the host root (default $SUPZ_ROOT or /)")
    parser.add_argument("-v", "--verbose", action="store_true", help="say why")
    args = parser.parse_args(argv)
    paths = resolve_root(args.root)
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
