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
    """Take PEER's registry when it descends from this host's (the local copy is set aside), or
    merge it when both changed since a state they shared."""
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
        click.echo(f"{result.peer}: {result.result}, generation {result.generation_before} -> {result.generation_after}")
    if result.set_aside:
        click.echo(f"the previous local registry is kept in {result.set_aside}")
    AuditLog(env.paths.audit_log).append(AuditRecord(
        "sync pull", [peer], f"ok: {result.result}", who, result.generation_before, result.generation_after,
        detail=f"set aside in {result.set_aside}" if result.set_aside else "",
    ))


def _entry(meta: dict | None) -> str:  # type: ignore[type-arg]
    return "absent" if meta is None else f"{meta['state']} sha256 {meta['sha256'][:12]}"


@sync.command()
@click.option("--keep-local", "keep_local", is_flag=True, help="This host's registry wins (run on the MASTER).")
@click.option("--take", "take", metavar="PEER", default=None, help="Take PEER's registry whole; this host's is set aside.")
@click.option("--dry-run", is_flag=True, help="Print the differences and change nothing.")
@click.argument("peer", required=False)
@pass_env
@click.pass_context
def resolve(ctx: click.Context, env: Env, keep_local: bool, take: str | None, dry_run: bool, peer: str | None) -> None:
    """End a divergence no merge can settle (no common state, e.g. a host rebuilt empty).

    `--take PEER`: this host takes PEER's registry (its own is set aside).
    `--keep-local [PEER]`: this MASTER's registry is pushed over the peer's (set aside there).
    """
    from supz.sync.reconcile import resolve as do_resolve

    if keep_local == (take is not None):
        raise click.UsageError("give exactly one of --keep-local or --take PEER")
    target = take or peer
    if target is None:
        configured = load_sync_settings(env.file).peers
        if len(configured) != 1:
            raise click.UsageError("name the peer: --keep-local PEER (more than one peer is configured)")
        target = configured[0].spec
    report = do_resolve(env.paths, target, take=take is not None, dry_run=dry_run)
    if report.action == "same":
        click.echo(f"{report.peer}: same registry as this host (generation {report.generation_before}); nothing to do")
        return
    if dry_run:
        click.echo(f"{report.peer} ({report.peer_host}): {len(report.differing)} differing entr"
                   f"{'y' if len(report.differing) == 1 else 'ies'}")
        for name in report.differing:
            click.echo(f"  {name}: here {_entry(report.local.get(name))}, {report.peer_host} {_entry(report.theirs.get(name))}")
        click.echo(("would take " + report.peer_host + "'s registry; this host's set aside") if take
                   else ("would push this host's registry over " + report.peer_host + "'s (set aside there)"))
        return
    if report.action == "took":
        click.echo(f"took {report.peer_host}'s registry: generation {report.generation_before} -> {report.generation_after}")
        if report.set_aside:
            click.echo(f"this host's previous registry is kept in {report.set_aside}")
        if report.applied:
            click.echo(report.applied)
    else:
        click.echo(f"this host's registry (generation {report.generation_after}) will be pushed over "
                   f"{report.peer_host}'s by the syncer; theirs is set aside there")


@sync.command("set-aside")
@click.option("--reviewed", "reviewed", multiple=True, metavar="ID", help="Mark an item reviewed (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Mark every item reviewed.")
@pass_env
@click.pass_context
def set_aside_cmd(ctx: click.Context, env: Env, reviewed: tuple[str, ...], everything: bool) -> None:
    """List what merges and resolves set aside; mark items reviewed once looked at.

    Exit 1 while an item is not reviewed (listing only).
    """
    from supz.sync import aside

    if reviewed or everything:
        done = aside.mark_reviewed(env.paths, list(reviewed), everything=everything)
        AuditLog(env.paths.audit_log).append(AuditRecord(
            "sync set-aside", ["--reviewed", *(i.id for i in done)], "ok", current_who(env.config.host)))
        for item in done:
            click.echo(f"reviewed {item.id}: {', '.join(item.names)}")
        return
    items = aside.load(env.paths)
    for item in items:
        click.echo(f"{'reviewed  ' if item.reviewed else 'UNREVIEWED'} {item.line()}")
    if not items:
        click.echo("nothing set aside")
    ctx.exit(ExitCode.ERROR if any(not i.reviewed for i in items) else ExitCode.OK)


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
