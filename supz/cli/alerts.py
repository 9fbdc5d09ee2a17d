"""`supz alerts`: send a sample event, deliver the spool."""

from __future__ import annotations

from collections.abc import Callable

import click

from supz.cli.env import Env, pass_env
from supz.errors import ConfigError, ExitCode


@click.group()
def alerts() -> None:
    """Events (failover, switchover, freeze, flapping...) to the [alerts] targets."""


@alerts.command("test")
@pass_env
@click.pass_context
def test_cmd(ctx: click.Context, env: Env) -> None:
    """Spool a sample event and deliver the spool now; exit 1 when a target did not take it
    (it stays spooled: `supz alerts deliver` retries)."""
    from supz.alerts.deliver import deliver_once
    from supz.alerts.settings import load_alert_settings
    from supz.alerts.spool import spool

    settings = load_alert_settings(env.file)
    if not settings.targets:
        raise ConfigError(f"no targets in [alerts] of {env.paths.config_file}", thing=str(env.paths.config_file))
    event = spool(env.paths, settings, env.config.host, "test", {"message": "a sample event from `supz alerts test`"})
    result = deliver_once(env.paths, settings)
    for target in settings.targets:
        why = result.failed.get(target.name)
        click.echo(f"{target.name}: " + (f"not delivered: {why}" if why else f"took event {event['id']}"),
                   err=bool(why))
    ctx.exit(ExitCode.ERROR if result.failed else ExitCode.OK)


@alerts.command()
@click.option("--once", is_flag=True, help="One round, then exit (1 if a target did not take its events).")
@pass_env
@click.pass_context
def deliver(ctx: click.Context, env: Env, once: bool) -> None:
    """Deliver spooled events to every target, in order, retrying a target that is down; every
    watch_interval seconds, raise events about the peers (unreachable, newer, diverged, split brain).

    Run by supervisord as the host-local program supz-alerts (`supz init --ha` writes it). It
    follows the config file: a changed [alerts] is picked up by itself; without targets it
    waits, doing nothing.
    """
    from supz.alerts.deliver import deliver_once, serve

    if once:
        from supz.alerts.settings import load_alert_settings

        settings = load_alert_settings(env.file)
        result = deliver_once(env.paths, settings)
        for name, count in result.sent.items():
            click.echo(f"{name}: {count} delivered")
        for name, why in result.failed.items():
            click.echo(f"{name}: {why}", err=True)
        ctx.exit(ExitCode.ERROR if result.failed else ExitCode.OK)
    import time

    from supz.alerts.settings import AlertSettings
    from supz.alerts.watch import PeerWatch, watch_peers

    def between(host: str, settings: AlertSettings) -> Callable[[], None]:
        watch = PeerWatch(settings.peer_threshold)
        next_look = [0.0]

        def look() -> None:
            if settings.watch_interval > 0 and time.monotonic() >= next_look[0]:
                next_look[0] = time.monotonic() + settings.watch_interval
                watch_peers(env.paths, host, watch)

        return look

    serve(env.paths, log=lambda line: click.echo(line, err=True), between=between)


@alerts.command()
@pass_env
def listen(env: Env) -> None:
    """supervisor event listener: alert when an application goes FATAL or exits unexpectedly on
    the MASTER. Run by supervisord as the host-local [eventlistener:supz-alerts-events]
    (`supz init --ha` writes it; events = PROCESS_STATE_FATAL,PROCESS_STATE_EXITED)."""
    import sys

    from supz.alerts.listener import listen as run_listener

    registry = env.registry()
    run_listener(env.paths, env.config.host, registry.active_names, sys.stdin, sys.stdout)


COMMANDS = [alerts]
