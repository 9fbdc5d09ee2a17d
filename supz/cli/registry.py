"""`supz registry`: add, list and audit the registry of what must run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from supz.audit import AuditLog, AuditRecord, current_who
from supz.cli.env import Env, pass_env
from supz.errors import EntryExists, ExitCode, SupervisordDown
from supz.failover.guard import require_master
from supz.names import validate_name
from supz.programfile import read_program_file
from supz.supervisord.client import SupervisorClient, context


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
    if name is None:
        name = file.name.rsplit(".", 1)[0] if file.suffix in (".conf", ".ini") else file.name
    validate_name(name)
    spec = read_program_file(file, name)
    if not spec.autostart:
        raise click.UsageError(f"{file}: autostart=false: an active entry must run; park it to keep it stopped")
    config = env.config
    require_master(env.paths, config.ha_enabled)
    who = current_who(config.host)
    reg = env.registry()
    try:
        change = reg.add(name, spec.text, who=who, replace=replace)
    except EntryExists:
        raise EntryExists(f"{name}: already an active entry; use --replace to change it", thing=name) from None
    click.echo(f"{name}: active in the registry (generation {change.generation_after})")
    result = "ok"
    client = SupervisorClient.for_host(env.paths)
    try:
        answer = client.supz("update", [name], dict(context("registry add", [str(file)]), audit=False))
        for item in answer["results"]:
            status = item["status"] + (f": {item['message']}" if item["message"] else "")
            click.echo(f"{item['name']}: {status}")
            if not item["ok"]:
                result = f"failed: {item['message']}"
    except SupervisordDown:
        click.echo(f"{name}: supervisord is not running; it starts with supervisord", err=True)
    AuditLog(env.paths.audit_log).append(
        AuditRecord("registry add", [str(file)], result, who, change.generation_before, change.generation_after)
    )
    if result != "ok":
        ctx.exit(ExitCode.ERROR)


@registry.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
def list_(env: Env, as_json: bool) -> None:
    """Active and parked entries, and the registry generation."""
    reg = env.registry()
    manifest = reg.manifest()
    entries = reg.entries()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "generation": manifest.generation,
                    "changed_at": manifest.time,
                    "changed_by": manifest.user,
                    "changed_on": manifest.host,
                    "active": [n for n, e in entries.items() if e.state.value == "active"],
                    "parked": [n for n, e in entries.items() if e.state.value == "parked"],
                },
                indent=1,
            )
        )
        return
    click.echo(
        f"generation {manifest.generation}"
        + (f" (last change: {manifest.op} by {manifest.user} on {manifest.host} at {manifest.time})" if manifest.time else "")
    )
    for name, entry in entries.items():
        click.echo(f"{name:<40} {entry.state.value.upper()}")


def _history(env: Env, count: int) -> list[dict[str, object]]:
    """The audit trail from the file, or through supervisord for a user who may not read it."""
    log = AuditLog(env.paths.audit_log)
    if os.access(log.path, os.R_OK) or not log.path.exists():
        return log.tail(count or None)
    with SupervisorClient.for_host(env.paths) as client:
        text = client.supz("history", count)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@registry.command("history")
@click.option("-n", "--lines", "count", default=20, show_default=True, help="How many records (0: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, as stored.")
@pass_env
def history(env: Env, count: int, as_json: bool) -> None:
    """The audit trail: who changed what, when, with which result."""
    for record in _history(env, count):
        if as_json:
            click.echo(json.dumps(record, sort_keys=True))
            continue
        user = record.get("real_user") or record.get("user")
        if record.get("user") and record.get("user") != user:
            user = f"{user} (as {record['user']})"
        gens = f"{record.get('generation_before')}->{record.get('generation_after')}"
        args = " ".join(record.get("args", []))
        click.echo(f"{record.get('time')} {record.get('host')} {user}: {record.get('command')} {args} [{record.get('result')}] gen {gens}")


COMMANDS = [registry]
