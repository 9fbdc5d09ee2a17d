"""`supz failover` (keepalived's hooks) and `supz keepalived render`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click

from supz.cli.env import Env, pass_env
from supz.errors import ConfigError, ExitCode, SupzError
from supz.executables import supz_executable
from supz.failover.check import check as run_check
from supz.failover.fifo import open_fifo, run_fifo
from supz.failover.keepalived import render_keepalived, script_security_problems
from supz.failover.pull import pull_if_newer
from supz.failover.settings import load_failover_settings
from supz.failover.transitions import Announcement, TransitionResult, announce, own_sequence, reconcile
from supz.fsutil import atomic_write
from supz.paths import HostPaths
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


@failover.command("log")
@click.option("-n", "--lines", "count", default=20, show_default=True, help="How many transitions (0: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, as stored.")
@pass_env
def log_cmd(env: Env, count: int, as_json: bool) -> None:
    """This host's failover transitions: when, from, to, how long, what was started or stopped."""
    from supz.failover.transitions import read_log

    for record in read_log(env.paths, count):
        if as_json:
            click.echo(json.dumps(record, sort_keys=True))
            continue
        moved = ", ".join(f"{key} {record[key]}" for key in ("started", "stopped", "failed") if record.get(key))
        click.echo(f"{record.get('time', '?')} {record.get('from', '?')} -> {record.get('to', '?')} "
                   f"{float(record.get('seconds', 0)):.2f}s {record.get('result', '?')}" + (f" ({moved})" if moved else ""))


@failover.command()
@pass_env
def thaw(env: Env) -> None:
    """End a flapping freeze and a hold-down: this host may become MASTER again."""
    from supz.failover.damping import read_damping
    from supz.failover.damping import thaw as thaw_damping

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


@failover.command()
@click.argument("peer", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--local", is_flag=True, help="This host's own answer (what a peer asks over ssh).")
@pass_env
@click.pass_context
def ready(ctx: click.Context, env: Env, peer: str | None, as_json: bool, local: bool) -> None:
    """Would PEER (default: every sync peer) start every active entry if it became MASTER now?

    Same generation and digest; each entry parses there (its user exists), its command is an
    executable file, its directory and `current` release link resolve; supervisord, the syncer
    and keepalived run there; the peer is BACKUP. One line per problem naming the host, the
    application and the fix; exit 1 when anything would fail, 6 when a peer cannot be asked.
    """
    from supz.failover.readiness import Readiness, local_readiness, standby_readiness
    from supz.sync.peers import find_peer
    from supz.sync.settings import load_sync_settings

    answers: list[Readiness] = []
    if local:
        answers.append(local_readiness(env.paths, env.file))
    else:
        settings = load_sync_settings(env.file)
        targets = [find_peer(settings, peer)] if peer else settings.peers
        if not targets:
            raise ConfigError(f"no peers in [sync] peers of {env.paths.config_file}", thing=str(env.paths.config_file))
        answers += [standby_readiness(env.paths, target, settings) for target in targets]
    if as_json:
        data = [answer.as_dict() for answer in answers]
        click.echo(json.dumps(data[0] if local else data, indent=1))
    else:
        for answer in answers:
            if answer.ready:
                click.echo(f"{answer.host}: ready ({answer.entries} entries, generation {answer.generation}, "
                           f"role {answer.role})")
            for problem in answer.problems:
                click.echo(problem.line())
    ctx.exit(ExitCode.OK if all(answer.ready for answer in answers) else ExitCode.ERROR)


@failover.command()
@click.option("--to", "to", metavar="PEER", help="The sync peer to hand over to (default: the only one).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_env
@click.pass_context
def switchover(ctx: click.Context, env: Env, to: str | None, yes: bool) -> None:
    """Move the applications to the standby on purpose, with the VIP; print each step and the downtime.

    From the MASTER, or from the standby (which asks the MASTER over the syncer's ssh). Pushes the
    registry, checks the target is ready (`supz failover ready`), then makes this host's check
    fail until the target runs every application; this host comes back as BACKUP. Refused (exit
    4, nothing moved) when the target is not ready; exit 1 when the handover itself failed.
    """
    from supz.failover.remote import ask_peer
    from supz.failover.switchover import Step, SwitchoverRefused
    from supz.failover.switchover import switchover as run_switchover
    from supz.role import HA_ROLE, read_role
    from supz.sync.settings import LOCAL, load_sync_settings

    if read_role(env.paths) != HA_ROLE:
        from supz.cluster import peer_status

        settings = load_sync_settings(env.file)
        masters = [p for p in settings.peers if peer_status(p, settings).get("role") == HA_ROLE]
        if len(masters) != 1:
            raise SwitchoverRefused(f"{env.config.host} is not MASTER and {len(masters)} peers are", thing="MASTER")
        if not yes:
            click.confirm(f"Move the applications from {masters[0].spec} to {to or 'its standby'}?", abort=True)
        master = masters[0]
        if master.transport != LOCAL:
            answer = ask_peer(master, settings, ["failover", "switchover", "--yes", *(["--to", to] if to else [])],
                              timeout=600)
            click.echo(answer.stdout.rstrip())
            if answer.stderr.strip():
                click.echo(answer.stderr.rstrip(), err=True)
            ctx.exit(answer.code)
        env = Env(HostPaths(Path(master.root)))
    elif not yes:
        click.confirm(f"Move the applications from {env.config.host} to {to or 'its standby'}?", abort=True)

    def say(step: Step) -> None:
        click.echo(f"{step.name:<9} {step.seconds:7.3f}s  {step.detail}")

    started = time.monotonic()
    report = run_switchover(env.paths, env.file, env.config.host, to, on_step=say)
    downtime = "-" if report.downtime is None else f"{report.downtime:.3f}s"
    click.echo(f"switchover {report.host} -> {report.target} done in {time.monotonic() - started:.3f}s; "
               f"applications down {downtime}")


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
