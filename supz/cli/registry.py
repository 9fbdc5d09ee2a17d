"""`supz registry`: add, list and audit the registry of what must run (the work: `supz.ops`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from supz import ops
from supz.cli.env import Env, pass_env, render_report
from supz.ops.env import OpsEnv
from supz.ops.registry import history_line


def _ops_env(env: Env) -> OpsEnv:
    return OpsEnv.for_host(env.paths, env.config)


@click.group()
def registry() -> None:
    """The registry: one program file per application, active (must run) or parked."""


@registry.command("add")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Program name [default: the file name without .conf/.ini].")
@click.option("--replace", is_flag=True, help="Replace an active entry of the same name.")
@pass_env
@click.pass_context
def add(ctx: click.Context, env: Env, file: Path, name: str | None, replace: bool) -> None:
    """Validate FILE and make it an active entry; supervisord loads and starts it if running.

    Exit 1 when it does not reach RUNNING (the entry stays active: fix the file, `--replace`)."""
    report = ops.add_file(_ops_env(env), file, name=name, replace=replace)
    render_report(report)
    ctx.exit(report.exit_code)


@registry.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
def list_(env: Env, as_json: bool) -> None:
    """Active and parked entries, and the registry generation."""
    listing = ops.listing(_ops_env(env))
    if as_json:
        click.echo(json.dumps(listing.as_dict(), indent=1))
        return
    click.echo(
        f"generation {listing.generation}"
        + (f" (last change: {listing.op} by {listing.changed_by} on {listing.changed_on} at {listing.changed_at})"
           if listing.changed_at else "")
    )
    for name, state in listing.entries.items():
        click.echo(f"{name:<40} {state.upper()}")


@registry.command("history")
@click.option("-n", "--lines", "count", default=20, show_default=True, help="How many records (0: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, as stored.")
@pass_env
def history(env: Env, count: int, as_json: bool) -> None:
    """The audit trail: who changed what, when, with which result."""
    for record in ops.history(_ops_env(env), count):
        click.echo(json.dumps(record, sort_keys=True) if as_json else history_line(record))


COMMANDS = [registry]
