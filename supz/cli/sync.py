"""`supz sync`: the registry syncer (run, once, status, check, pull) and its receiving side."""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import sys
import time

import click

from supz.audit import AuditLog, AuditRecord, current_who
from supz.cli.env import Env, pass_env
from supz.errors import ExitCode, PolicyRefused, SupzError
from supz.role import HA_ROLE, read_role
from supz.sync import peers as sync_peers
from supz.sync.settings import load_sync_settings
from supz.sync.state import PeerStatus, SyncStatus, daemon_alive, read_status
from supz.templating import render

@click.group()
def sync() -> None:
    """Keep the standby's registry equal to this MASTER's (inotify + rsync)."""


@sync.command()
@pass_env
def run(env: Env) -> None:
    """Run the syncer in the foreground (supervisord runs it as the host-local program supz-sync)."""
    from supz.sync import daemon

    daemon.exec_lean(env.paths)


@sync.command()
@pass_env
@click.pass_context
def once(ctx: click.Context, env: Env) -> None:
    """Push the whole registry to every peer now (MASTER only); exit 1 if a peer was not updated."""
    role = read_role(env.paths)
    if role != HA_ROLE:
        raise PolicyRefused(f"this host is {role}: only a MASTER pushes its registry", thing=role)
    failed = 0
    for peer, result in sync_peers.push_once(env.paths):
        if isinstance(result, SupzError):
            failed += 1
            click.echo(f"{peer}: {result}", err=True)
            continue
        what = (f"generation {result.generation_before} -> {result.generation_after}"
                if result.action == "pushed" else f"already in sync at generation {result.generation_after}")
        click.echo(f"{result.peer}: {what} ({result.millis:.0f} ms)")
        if result.set_aside:
            click.echo(f"{result.peer}: the peer's own registry was set aside in {result.set_aside}")
    ctx.exit(ExitCode.ERROR if failed else ExitCode.OK)


def _when(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "never"
    stamp = _dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp} ({now - epoch:.0f} s ago)"


def _peer_lines(peer: PeerStatus, local_generation: int, now: float) -> list[str]:
    gen = "unknown" if peer.peer_generation is None else str(peer.peer_generation)
    who = f" (host {peer.peer_host}, role {peer.peer_role})" if peer.peer_host else ""
    lines = [
        f"peer {peer.peer} [{peer.transport}]: {peer.state}",
        f"  generation: local {local_generation}, peer {gen}{who}",
        f"  last sync: {_when(peer.last_sync, now)}; lag {peer.lag(now):.1f} s; pending changes {peer.pending}",
        f"  pushes: {peer.pushes} (last {peer.last_push_ms if peer.last_push_ms is not None else '-'} ms); "
        f"full resyncs: {peer.full_resyncs} (last: {peer.last_full_reason or '-'}, {_when(peer.last_full, now)})",
    ]
    if peer.last_error:
        lines.append(f"  last error: {peer.last_error} ({_when(peer.last_error_time, now)})")
    return lines


@sync.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_env
@click.pass_context
def status(ctx: click.Context, env: Env, as_json: bool) -> None:
    """Per peer: state, generations, last sync, lag, pending changes, last error.

    Exit 0 while the syncer runs, 3 when it does not.
    """
    found: SyncStatus | None = read_status(env.paths)
    running = found is not None and found.note != "stopped" and daemon_alive(found)
    if as_json:
        data = found.as_dict() if found else {"peers": []}
        data["running"] = running
        click.echo(json.dumps(data, indent=1, sort_keys=True))
        ctx.exit(ExitCode.OK if running else ExitCode.NOT_RUNNING)
    if found is None:
        click.echo("syncer: never ran on this host (supervisord runs it as supz-sync)")
        ctx.exit(ExitCode.NOT_RUNNING)
    now = time.time()
    state = f"running (pid {found.pid})" if running else f"not running (last status {_when(found.updated, now)})"
    click.echo(f"syncer: {state} on {found.host}, role {found.role}, registry generation {found.local_generation}")
    if found.note:
        click.echo(f"note: {found.note}")
    if not found.peers:
        click.echo("no peers configured ([sync] peers)")
    for peer in found.peers:
        for line in _peer_lines(peer, found.local_generation, now):
            click.echo(line)
    ctx.exit(ExitCode.OK if running else ExitCode.NOT_RUNNING)


@sync.command()
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@pass_env
@click.pass_context
def check(ctx: click.Context, env: Env, as_json: bool) -> None:
    """Compare the registry with every peer (generation and each file's checksum).

    Exit 0 when every peer is in sync, 1 when one differs, 6 when one is unreachable (and none differs).
    """
    results = sync_peers.check(env.paths)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=1))
    for r in results if not as_json else ():
        gen = "-" if r.peer_generation is None else r.peer_generation
        click.echo(f"{r.peer}: {r.verdict} (local generation {r.local_generation}, peer {gen})")
        if r.detail:
            click.echo(f"  {r.detail}")
        if r.differing:
            shown = ", ".join(r.differing[:20]) + (f" and {len(r.differing) - 20} more" if len(r.differing) > 20 else "")
            click.echo(f"  differing entries: {shown}")
    verdicts = {r.verdict for r in results}
    ctx.exit(ExitCode.ERROR if "different" in verdicts
             else ExitCode.UNREACHABLE if "unreachable" in verdicts else ExitCode.OK)


@sync.command()
@click.argument("peer")
@pass_env
def pull(env: Env, peer: str) -> None:
    """Take PEER's registry when it is newer than this host's (the local copy is set aside)."""
    who = current_who(env.config.host)
    try:
        result = sync_peers.pull_from(env.paths, peer)
    except SupzError as exc:
        AuditLog(env.paths.audit_log).append(AuditRecord("sync pull", [peer], f"failed: {exc}", who))
        exc.message = f"{peer}: {exc.message}"
        raise
    if result.result == "same":
        click.echo(f"{result.peer}: same registry as this host (generation {result.generation_after}); nothing pulled")
    else:
        click.echo(f"{result.peer}: pulled, generation {result.generation_before} -> {result.generation_after}")
    if result.set_aside:
        click.echo(f"the previous local registry is kept in {result.set_aside}")
    AuditLog(env.paths.audit_log).append(AuditRecord(
        "sync pull", [peer], f"ok: {result.result}", who, result.generation_before, result.generation_after,
        detail=f"set aside in {result.set_aside}" if result.set_aside else "",
    ))


@sync.command(hidden=True)
@click.option("--stdio", is_flag=True, required=True, help="Answer a sender's requests on stdin/stdout.")
@pass_env
@click.pass_context
def receive(ctx: click.Context, env: Env, stdio: bool) -> None:
    """The receiving agent a sender starts over ssh (protocol: supz/sync/agent.py)."""
    from supz.sync.agent import serve_stdio

    ctx.exit(serve_stdio(env.paths, sys.stdin.buffer, sys.stdout.buffer))


@sync.command("rsyncd-conf")
@click.option("--write", is_flag=True, help="Write it to etc/supz/rsyncd.conf instead of printing it.")
@pass_env
def rsyncd_conf(env: Env, write: bool) -> None:
    """Render the rsync daemon config of the receiving side (rsync:// peers push to it)."""
    import pwd

    from supz.fsutil import atomic_write
    from supz.sync.layout import hook_dir, incoming_dir

    paths = env.paths
    settings = load_sync_settings(env.file)
    hook = shlex.join([sys.executable, "-m", "supz.sync.hook", "--root", str(paths.root)])
    text = render(
        "rsyncd.conf.j2",
        paths,
        settings=settings,
        incoming=incoming_dir(paths),
        versions=paths.registry_versions,
        hook_answers=hook_dir(paths),
        secrets=settings.rsyncd_secrets_file or paths.rsyncd_secrets,
        hook_command=hook,
        user=pwd.getpwuid(os.getuid()).pw_name,
    )
    if not write:
        click.echo(text, nl=False)
        return
    paths.sync_run.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(paths.rsyncd_conf, text)
    click.echo(f"wrote {paths.rsyncd_conf}; start the daemon with: rsync --daemon --no-detach --config={paths.rsyncd_conf}")


COMMANDS = [sync]
