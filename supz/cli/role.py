"""`supz role`: show or set this host's HA role (for pairs run without keepalived)."""

from __future__ import annotations

import json

import click

from supz.audit import AuditLog, AuditRecord, current_who
from supz.cli.env import Env, pass_env
from supz.role import ROLES, read_role, write_role


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"role": ROLE} instead.')
@pass_env
@click.pass_context
def role(ctx: click.Context, env: Env, as_json: bool) -> None:
    """Show this host's role (MASTER, BACKUP, FAULT, STOP or unknown)."""
    if ctx.invoked_subcommand is None:
        current = read_role(env.paths)
        click.echo(json.dumps({"role": current}) if as_json else current)


@role.command("set")
@click.argument("value", type=click.Choice(ROLES, case_sensitive=False))
@pass_env
def set_(env: Env, value: str) -> None:
    """Write the role file by hand. It does not start or stop anything by itself."""
    before = read_role(env.paths)
    now = write_role(env.paths, value)
    record = AuditRecord("role set", [now], f"ok: {before} -> {now}", current_who(env.config.host))
    AuditLog(env.paths.audit_log).append(record)
    click.echo(f"role: {before} -> {now}")


COMMANDS = [role]
