"""`supz health`: the health daemon (run) and what it sees (status)."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import click

from supz.cli.env import Env, pass_env
from supz.errors import ExitCode
from supz.health.state import is_fresh, read_state


@click.group()
def health() -> None:
    """Probe applications (supz_health_* keys in their entries) and restart the unhealthy."""


@health.command()
@pass_env
def run(env: Env) -> None:
    """Run the health daemon in the foreground (supervisord runs it as the host-local program supz-health)."""
    from supz.health import daemon

    daemon.exec_lean(env.paths)


def _when(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return "-"
    return _dt.datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


@health.command()
@click.option("--json", "as_json", is_flag=True, help="The state file as JSON.")
@pass_env
@click.pass_context
def status(ctx: click.Context, env: Env, as_json: bool) -> None:
    """One line per probed process: status, last check, last response and its time, consecutive
    failures, restarts in the window. Exit 0 all healthy, 1 one is UNHEALTHY, 3 the daemon is not
    running (no fresh state)."""
    state = read_state(env.paths)
    fresh = is_fresh(state)
    if as_json:
        click.echo(json.dumps(dict(state or {}, fresh=fresh), indent=1, sort_keys=True))
    if not fresh or state is None:
        if not as_json:
            click.echo("the health daemon is not running (no fresh state in "
                       f"{env.paths.health_state}): supervisord runs it as supz-health", err=True)
        ctx.exit(ExitCode.NOT_RUNNING)
    if not state.get("acting"):
        if not as_json:
            click.echo(f"idle: this host is {state.get('role') or 'unknown'}; applications are probed on the MASTER")
        ctx.exit(ExitCode.OK)
    unhealthy = False
    lines = []
    apps = state.get("apps", {})
    for namespec, target in sorted(state.get("targets", {}).items()):
        settings = apps.get(target.get("app"), {}).get("settings", {})
        word = str(target.get("status"))
        unhealthy |= word == "UNHEALTHY"
        if word == "UNHEALTHY":
            word = f"UNHEALTHY ({target.get('failures')}/{settings.get('fails', '?')})"
        elapsed = target.get("last_elapsed")
        response = target.get("last_detail") or "-"
        if isinstance(elapsed, (int, float)):
            response += f" in {elapsed:.2f} s"
        extra = []
        if target.get("note"):
            extra.append(str(target["note"]))
        if target.get("exhausted"):
            extra.append(f"budget spent ({settings.get('exhausted', 'leave')})")
        lines.append(f"{namespec:<32} {word:<18} checked {_when(target.get('last_check'))}  {response:<28} "
                     f"fails {target.get('failures', 0)}  restarts {len(target.get('restarts', []))}/"
                     f"{settings.get('max_restarts', '?')}" + (f"  [{'; '.join(extra)}]" if extra else ""))
    for name, app in sorted(apps.items()):
        if app.get("error"):
            lines.append(f"{name:<32} {'UNKNOWN':<18} health settings not used: {app['error']}")
        if app.get("parked"):
            lines.append(f"{name:<32} {'PARKED':<18} {app['parked']}")
    if state.get("failover"):
        lines.append(f"failing the vrrp check: {', '.join(state['failover'])} (critical, budget spent)")
    if not as_json:
        for line in lines:
            click.echo(line)
        if not lines:
            click.echo("no application has health settings (supz_health_url, _tcp or _cmd)")
    ctx.exit(ExitCode.ERROR if unhealthy or state.get("failover") else ExitCode.OK)


COMMANDS = [health]
