"""`supz registry`: add, list and audit the registry of what must run (the work: `supz.ops`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from supz import backups, ops
from supz.cli.env import Env, pass_env, render_report
from supz.history import describe_park
from supz.ops import archives
from supz.ops.env import OpsEnv
from supz.ops.registry import history_line


def _ops_env(env: Env) -> OpsEnv:
    return OpsEnv.for_host(env.paths, env.config)


@click.group()
def registry() -> None:
    """The registry: one program file per application, active (must run) or parked."""


@registry.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Program name of a single FILE [default: the file name without .conf/.ini].")
@click.option("--replace", is_flag=True, help="Replace an active entry of the same name.")
@pass_env
@click.pass_context
def add(ctx: click.Context, env: Env, files: tuple[Path, ...], name: str | None, replace: bool) -> None:
    """Validate FILE and make it an active entry; supervisord loads and starts it if running.

    Several FILEs, or a folder (its *.conf and *.ini files), are admitted all or nothing: every
    file is validated first (one invalid file refuses the call, naming it, and nothing changes),
    then one registry transaction (one generation) and one load-and-start call.

    Exit 1 when one does not reach RUNNING (the entry stays active: fix the file, `--replace`)."""
    if len(files) == 1 and not files[0].is_dir():
        report = ops.add_file(_ops_env(env), files[0], name=name, replace=replace)
    else:
        if name is not None:
            raise click.UsageError("--name names the program of a single FILE")
        report = archives.add_many(_ops_env(env), files, replace=replace)
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
        note = describe_park(listing.notes.get(name)) if state == "parked" else ""
        click.echo(f"{name:<40} {state.upper()}" + (f" {note}" if note else ""))


@registry.command("history")
@click.option("-n", "--lines", "count", default=20, show_default=True, help="How many records (0: all).")
@click.option("--app", default=None, help="Only the changes of this application.")
@click.option("--user", default=None, help="Only the changes made by this user.")
@click.option("--since", default=None, help="Only changes since: 2d, 12h, 30m, 1w, or an ISO date/time.")
@click.option("--local", is_flag=True, help="This host's own audit file (every command run here) instead.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, as stored.")
@pass_env
def history(env: Env, count: int, app: str | None, user: str | None, since: str | None, local: bool,
            as_json: bool) -> None:
    """The registry's history: who changed what, when, why, with which result. It travels with the
    registry, so every host of a pair answers the same (--local: this host's audit file)."""
    for record in ops.history(_ops_env(env), count, app=app, user=user, since=since, local=local):
        click.echo(json.dumps(record, sort_keys=True) if as_json else history_line(record))


@registry.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
def show(env: Env, name: str, as_json: bool) -> None:
    """One entry: its file, state, who parked it and why, its last change, its history."""
    shown = ops.show(_ops_env(env), name)
    if as_json:
        click.echo(json.dumps(shown, indent=1, sort_keys=True))
        return
    note = describe_park(shown["parked"])
    click.echo(f"{name}: {shown['state'].upper()}" + (f" {note}" if note else ""))
    click.echo(f"file:        {shown['file']}")
    click.echo(f"sha256:      {shown['sha256']}")
    last = shown["last_change"]
    click.echo("last change: " + (history_line(last) if last else shown["changed_at"] or "unknown"))
    click.echo("history:")
    for record in shown["history"]:
        click.echo(f"  {history_line(record)}")


@registry.command("export")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Archive file [default: supz-registry-HOST-gGEN-TIME.supz.json.gz here].")
@pass_env
def export(env: Env, out: Path | None) -> None:
    """Write the whole registry (entries, states, park notes, history) to one archive with a checksum."""
    path, generation, count = archives.export(_ops_env(env), out)
    click.echo(f"{path}: generation {generation}, {count} entries")


@registry.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="List the changes; change nothing.")
@pass_env
@click.pass_context
def import_(ctx: click.Context, env: Env, file: Path, dry_run: bool) -> None:
    """Make the registry equal to an archive, as one transaction (a new generation), applied to
    supervisord and synced to the standby. Refused off the MASTER; a damaged archive changes nothing."""
    report = archives.import_archive(_ops_env(env), file, dry_run=dry_run)
    render_report(report)
    ctx.exit(report.exit_code)


@registry.command("backups")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
def backups_(env: Env, as_json: bool) -> None:
    """The automatic backups (an archive before each change), oldest first ([backups] in supz.conf)."""
    found = backups.listing(env.paths)
    if as_json:
        click.echo(json.dumps([b.as_dict() for b in found], indent=1))
        return
    for backup in found:
        click.echo(f"{backup.id}  generation {backup.generation:<6} {backup.created}  {backup.size} bytes")


@registry.command("restore")
@click.argument("ident", metavar="ID")
@click.option("--dry-run", is_flag=True, help="List the changes; change nothing.")
@pass_env
@click.pass_context
def restore(ctx: click.Context, env: Env, ident: str, dry_run: bool) -> None:
    """Bring back the registry of backup ID (`supz registry backups`), as a new generation."""
    report = archives.restore(_ops_env(env), ident, dry_run=dry_run)
    render_report(report)
    ctx.exit(report.exit_code)


COMMANDS = [registry]
