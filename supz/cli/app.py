"""`supz app`: scaffold application directories, lint them, and the actions sup_run.sh runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from supz.apps import control
from supz.apps import deploy as deploying
from supz.apps.conventions import app_layout
from supz.apps.health import HealthCheck, entry_probes
from supz.apps.lint import lint_app, registered_app_dirs
from supz.apps.releases import list_releases, read_links
from supz.apps.scaffold import AppOptions, init_app, parse_env, parse_health
from supz.apps.settings import load_app_settings
from supz.cli.env import Env, pass_env, render_report
from supz.errors import ExitCode
from supz.ops.env import OpsEnv
from supz.ops.report import Report


@click.group()
def app() -> None:
    """Application directories: program.ini, sup_run.sh, releases and deploys."""


def _app_env(env: Env) -> OpsEnv:
    return OpsEnv.for_host(env.paths, env.config)


def _finish(ctx: click.Context, report: Report, printed: bool = False) -> None:
    render_report(report, printed=printed)
    ctx.exit(report.exit_code)


@app.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--command", "command", required=True,
              help="Command line; a relative program is a path inside the release (e.g. 'bin/server --port 80'). "
                   "Quote a program path that holds spaces, unless it is the whole command.")
@click.option("--numprocs", default=1, show_default=True, type=int, help="Instances: NAME_01, NAME_02, ...")
@click.option("--user", default=None, help="Run the processes as this user.")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="Environment variable (repeatable).")
@click.option("--health-url", default=None, help="http(s) URL a deploy checks after each restart.")
@click.option("--health-cmd", default=None, help="Command a deploy runs in current/ after each restart (exit 0: ok).")
@click.option("--health", "health", multiple=True, metavar="KEY=VALUE",
              help="A health daemon setting written into program.ini as supz_health_KEY (url, tcp, cmd, expect, "
                   "body, interval, timeout, fails, rises, start_period, max_restarts, window, exhausted); "
                   "repeatable.")
@click.option("--startsecs", default=None, type=click.IntRange(min=0),
              help="Seconds a process must stay up to count as started [default: [apps] startsecs].")
@click.option("--force", is_flag=True, help="Render program.ini and sup_run.sh again over existing ones.")
@pass_env
def init(env: Env, directory: str, command: str, numprocs: int, user: str | None, env_pairs: tuple[str, ...],
         health_url: str | None, health_cmd: str | None, health: tuple[str, ...], startsecs: int | None,
         force: bool) -> None:
    """Write DIRECTORY/program.ini and an executable DIRECTORY/sup_run.sh from the templates."""
    if health_url and health_cmd:
        raise click.UsageError("give --health-url or --health-cmd, not both")
    options = AppOptions(command=command, numprocs=numprocs, user=user, env=parse_env(env_pairs),
                         health_url=health_url, health_cmd=health_cmd, startsecs=startsecs,
                         health=parse_health(health))
    report = init_app(env.paths, app_layout(directory), options, load_app_settings(env.file), force=force)
    for line in report.lines:
        click.echo(line)


@app.command("lint")
@click.argument("directories", nargs=-1, type=click.Path(file_okay=False))
@click.option("--all", "every", is_flag=True, help="Every application in the registry.")
@pass_env
@click.pass_context
def lint(ctx: click.Context, env: Env, directories: tuple[str, ...], every: bool) -> None:
    """Check conventions A-D, the command and the current release: one line per finding, exit 1 on any error."""
    if not directories and not every:
        raise click.UsageError("name application directories, or --all")
    registry = env.registry()
    targets: list[str | Path] = list(directories)
    if every:
        dirs, notes = registered_app_dirs(registry)
        for note in notes:
            click.echo(note, err=True)
        targets += [d for d in dirs if str(d) not in directories]
    errors = 0
    for target in targets:
        for finding in lint_app(env.paths, target, registry):
            click.echo(finding.line())
            errors += finding.error
    ctx.exit(ExitCode.ERROR if errors else ExitCode.OK)


def _action(name: str, run: Callable[..., Report], help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("directory", type=click.Path(file_okay=False))
    @click.option("--yes", is_flag=True, help="Confirm, when the policy wants this action confirmed.")
    @pass_env
    @click.pass_context
    def command(ctx: click.Context, env: Env, directory: str, yes: bool) -> None:
        _finish(ctx, run(_app_env(env), app_layout(directory), yes=yes))

    return command


start = _action("start", control.start, "Register DIRECTORY/program.ini as the active entry and start it.")


@click.command("stop")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--yes", is_flag=True, help="Confirm, when the policy wants this action confirmed.")
@click.option("-m", "--reason", default="", help="Why: kept with the parked entry, shown by status on every host.")
@pass_env
@click.pass_context
def stop(ctx: click.Context, env: Env, directory: str, yes: bool, reason: str) -> None:
    """Stop the application and park it (it stays stopped until start)."""
    _finish(ctx, control.stop(_app_env(env), app_layout(directory), yes=yes, reason=reason))

restart = _action("restart", control.restart, "Restart every process; the registry is unchanged.")
update = _action("update", control.update, "Apply an edited program.ini to this application only.")


@app.command("status")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the same exit codes).")
@pass_env
@click.pass_context
def status(ctx: click.Context, env: Env, directory: str, as_json: bool) -> None:
    """State of each process: exit 0 all RUNNING, 3 anything else (stopped, parked, not registered)."""
    report = control.status(_app_env(env), app_layout(directory))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1))
        ctx.exit(report.exit_code)
    _finish(ctx, report)


def _health_options(function: Callable[..., None]) -> Callable[..., None]:
    function = click.option("--health-timeout", type=float, default=None,
                            help="Seconds to wait for the health check [default: [apps] health_timeout].")(function)
    function = click.option("--health-cmd", default=None, help="Command run in current/ after each restart.")(function)
    function = click.option("--health-url", default=None, help="http(s) URL checked after each restart.")(function)
    return click.option("--yes", is_flag=True, help="Confirm, when the policy wants this action confirmed.")(function)


def _health(env: Env, url: str | None, command: str | None, timeout: float | None,
            directory: str) -> HealthCheck:
    """The deploy's check: --health-url / --health-cmd, else program.ini's supz_health_* probe."""
    if url and command:
        raise click.UsageError("give --health-url or --health-cmd, not both")
    targets = {} if url or command else entry_probes(app_layout(directory))
    return HealthCheck(url=url or None, command=command or None, targets=targets,
                       timeout=timeout if timeout is not None else load_app_settings(env.file).health_timeout)


@app.command("deploy")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("version")
@_health_options
@pass_env
@click.pass_context
def deploy(ctx: click.Context, env: Env, directory: str, version: str, health_url: str | None,
           health_cmd: str | None, health_timeout: float | None, yes: bool) -> None:
    """Switch current to releases/VERSION, restart one process at a time, check health; roll back on failure."""
    report = deploying.deploy(_app_env(env), app_layout(directory), version,
                              _health(env, health_url, health_cmd, health_timeout, directory), yes=yes, listener=click.echo)
    _finish(ctx, report, printed=True)


@app.command("rollback")
@click.argument("directory", type=click.Path(file_okay=False))
@_health_options
@pass_env
@click.pass_context
def rollback(ctx: click.Context, env: Env, directory: str, health_url: str | None, health_cmd: str | None,
             health_timeout: float | None, yes: bool) -> None:
    """Switch back to the previous release (restarted and checked like a deploy)."""
    report = deploying.rollback(_app_env(env), app_layout(directory),
                                _health(env, health_url, health_cmd, health_timeout, directory), yes=yes, listener=click.echo)
    _finish(ctx, report, printed=True)


@app.command("releases")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--yes", is_flag=True, hidden=True)
@pass_env
def releases(env: Env, directory: str, yes: bool) -> None:
    """List the releases, oldest first; '*' marks the current one."""
    layout = app_layout(directory).checked()
    links = read_links(layout)
    found = list_releases(layout)
    if not found:
        click.echo(f"{layout.name}: no release in {layout.releases}")
    for version in found:
        mark = "*" if version == links.current else " "
        note = " (current)" if version == links.current else " (previous)" if version == links.previous else ""
        click.echo(f"{mark} {version}{note}")


for _command in (start, stop, restart, update):
    app.add_command(_command)

COMMANDS = [app]
