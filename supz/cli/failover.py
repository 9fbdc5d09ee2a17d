"""`supz failover` (keepalived's hooks) and `supz keepalived render`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from supz.cli.env import Env, pass_env
from supz.errors import ConfigError, ExitCode, SupzError
from supz.failover.check import check as run_check
from supz.failover.fifo import open_fifo, run_fifo
from supz.failover.keepalived import render_keepalived, script_security_problems, supz_executable
from supz.failover.settings import load_failover_settings
from supz.failover.transitions import Announcement, TransitionResult, announce, own_sequence, reconcile
from supz.failover.pull import pull_if_newer
from supz.fsutil import atomic_write
from supz.role import ROLES


def _say(result: TransitionResult) -> None:
    click.echo(f"{result.previous} -> {result.to} in {result.seconds:.3f}s: {result.result}")


@click.group()
def failover() -> None:
    """keepalived's hooks (notify, fifo, check) and the operator's: freeze, unfreeze, thaw."""


@failover.command()
@click.argument("kind", metavar="TYPE")
@click.argument("name")
@click.argument("state")
@click.argument("priority", required=False, default="0")
@click.option("--wait", is_flag=True, help="Reconcile now and report, instead of in the background.")
@pass_env
def notify(env: Env, kind: str, name: str, state: str, priority: str, wait: bool) -> None:
    """keepalived's `notify` target: record STATE, then reconcile this host to the latest state.

    keepalived does not wait for it; the reconciling runs detached and serialized by a lock.
    """
    state = state.upper()
    if kind not in ("INSTANCE", "GROUP") or state not in ROLES:
        click.echo(f"ignored: {kind} {name} {state}", err=True)
        return
    announce(env.paths, Announcement(state, own_sequence(), name))
    if wait:
        for result in reconcile(env.paths, env.config.host, pull_if_newer):
            _say(result)
        return
    subprocess.Popen(
        [str(supz_executable()), "--root", str(env.paths.root), "failover", "reconcile"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


@failover.command("reconcile")
@pass_env
def reconcile_cmd(env: Env) -> None:
    """Bring this host to the latest state keepalived announced (what `notify` runs)."""
    for result in reconcile(env.paths, env.config.host, pull_if_newer):
        _say(result)


@failover.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@pass_env
def fifo(env: Env, path: Path | None) -> None:
    """Read keepalived's notify FIFO (default: run/supz/keepalived.fifo); apply each transition in order."""
    run_fifo(env.paths, env.config.host, open_fifo(path or env.paths.notify_fifo),
             on_transition=_say, pull_first=pull_if_newer)


@failover.command("check")
@click.option("--verbose", "-v", is_flag=True, help="Say why.")
@pass_env
@click.pass_context
def check_cmd(ctx: click.Context, env: Env, verbose: bool) -> None:
    """For vrrp_script: exit 0 when supervisord answers (and critical applications run), 1 otherwise."""
    healthy, why = run_check(env.paths, load_failover_settings(env.file))
    if verbose or not healthy:
        click.echo(why, err=not healthy)
    ctx.exit(ExitCode.OK if healthy else ExitCode.ERROR)


@failover.command()
@pass_env
def watchdog(env: Env) -> None:
    """Run forever: on a MASTER whose keepalived stopped running its check, stop the HA applications.

    Run by supervisord as the host-local program supz-watchdog (`supz init --ha` writes it).
    """
    from supz.failover.watchdog import run

    run(env.paths, load_failover_settings(env.file), env.config.host,
        log=lambda line: click.echo(line, err=True))


@failover.command()
@pass_env
def thaw(env: Env) -> None:
    """End a flapping freeze and a hold-down: this host may become MASTER again."""
    from supz.failover.damping import read_damping, thaw as thaw_damping

    before = read_damping(env.paths)
    thaw_damping(env.paths)
    click.echo("failover thawed" + (f" (was: {before.frozen_reason})" if before.frozen else ""))


def _freeze_action(env: Env, action: str, pair: bool, reason: str) -> int:
    from supz.failover.operator import freeze, on_peer, unfreeze
    from supz.sync.settings import load_sync_settings

    if action == "freeze":
        click.echo(freeze(env.paths, env.config.host, reason).describe())
    else:
        click.echo(unfreeze(env.paths, env.config.host, pull_if_newer).describe())
    if not pair:
        return ExitCode.OK
    settings = load_sync_settings(env.file)
    code: int = ExitCode.OK
    for peer in settings.peers:
        try:
            click.echo(on_peer(peer, settings, action, pull_if_newer, reason))
        except SupzError as exc:
            click.echo(f"supz: error: {exc}", err=True)
            code = exc.exit_code
    return code


@failover.command()
@click.option("--pair", is_flag=True, help="Every sync peer too, over the syncer's transport.")
@click.option("--reason", default="", help="Why (kept in the freeze and its audit line).")
@pass_env
@click.pass_context
def freeze(ctx: click.Context, env: Env, pair: bool, reason: str) -> None:
    """Maintenance mode: keepalived's transitions are recorded, no application is started or stopped.

    Waits for a transition under way. `supz status --cluster` shows the host FROZEN until
    `supz failover unfreeze`. Exit 6 when a peer (with --pair) could not be reached.
    """
    ctx.exit(_freeze_action(env, "freeze", pair, reason))


@failover.command()
@click.option("--pair", is_flag=True, help="Every sync peer too, over the syncer's transport.")
@pass_env
@click.pass_context
def unfreeze(ctx: click.Context, env: Env, pair: bool) -> None:
    """End maintenance mode: bring the host to the latest state keepalived announced meanwhile."""
    ctx.exit(_freeze_action(env, "unfreeze", pair, ""))


@click.group()
def keepalived() -> None:
    """keepalived configuration for this host."""


@keepalived.command("render")
@click.option("--write", is_flag=True, help="Write it to the host's etc/supz/keepalived.conf.")
@click.option("--check/--no-check", default=True, help="Run `keepalived -t -f` on the result.")
@pass_env
def render_cmd(env: Env, write: bool, check: bool) -> None:
    """Render keepalived.conf from the [failover] settings: every host BACKUP + nopreempt."""
    settings = load_failover_settings(env.file)
    text = render_keepalived(env.paths, settings, env.config.host)
    hooks = (supz_executable(), supz_executable().with_name("supz-check"))
    for problem in [p for hook in hooks for p in script_security_problems(hook)]:
        click.echo(f"warning: enable_script_security will refuse the hook: {problem}", err=True)
    target = env.paths.keepalived_conf
    if write:
        atomic_write(target, text, mode=0o644)
        click.echo(f"wrote {target}", err=True)
    else:
        sys.stdout.write(text)
    if check:
        checked = target if write else None
        if checked is None:
            checked = env.paths.run / "keepalived.conf.check"
            atomic_write(checked, text)
        result = subprocess.run(["keepalived", "-t", "-f", str(checked)], capture_output=True, text=True, check=False)
        if not write:
            checked.unlink()
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise ConfigError(f"keepalived -t refused the rendered config: {lines[-1] if lines else result.returncode}")


COMMANDS = [failover, keepalived]
