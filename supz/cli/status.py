"""`supz status [--cluster] [--json]`."""

from __future__ import annotations

import json

import click

from supz.cli.env import Env, pass_env
from supz.cluster import cluster_status, local_status
from supz.errors import ExitCode
from supz.failover.standing import standing_line
from supz.pacemaker.crm import pacemaker_lines


def _row(view: dict) -> str:  # type: ignore[type-arg]
    if "role" not in view:
        return f"{view['host']:<16} unreachable: {view.get('error', '')}"
    vip = {True: "yes", False: "no", None: "-"}[view.get("vip_held")]
    lags = ", ".join(f"{s['peer']} {s['state']} lag {s['lag']:.1f}s" for s in view.get("sync", [])) or "-"
    return (f"{view['host']:<16} {view['role']:<8} {vip:<4} {view['supervisord']:<5} "
            f"{view['active']:>6} {view['parked']:>6} {view['running']:>7} {view.get('unhealthy', 0):>9} "
            f"{view['generation']:>5}  {lags}"
            + ("  FROZEN" if (view.get("failover") or {}).get("maintenance") else ""))


HEADER = (f"{'host':<16} {'role':<8} {'vip':<4} {'sv':<5} {'active':>6} {'parked':>6} {'running':>7} "
          f"{'unhealthy':>9} {'gen':>5}  sync")


@click.command()
@click.option("--cluster", is_flag=True, help="Every host of the pair (this one and its sync peers).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
@click.pass_context
def status(ctx: click.Context, env: Env, cluster: bool, as_json: bool) -> None:
    """Role, VIP, supervisord, active / parked / running counts, generation and sync lag.

    Exit 7 when this host's supervisord is not running, 1 on drift (an application that differs
    from the registry). With --cluster, two MASTERs at once (split brain), a host whose
    supervisord is down, drift on any host, a host whose failover is frozen (flapping), a
    blocked or lagging sync peer, or a set-aside registry not yet reviewed is an error (exit 1);
    otherwise an unreachable peer exits 6. A host an operator froze (`supz failover freeze`) is
    marked FROZEN, with a warning, and is not an error. Under each host: whether a standby is
    ready to take over (`supz failover ready`) and its last failover. On a host Pacemaker manages
    (`[ha] manager = pacemaker`): quorum, the nodes, and where each supz resource runs; no quorum,
    a supz resource active on two nodes or failed, or this root's running nowhere is an error.
    """
    if not cluster:
        view = local_status(env.paths, env.file)
        click.echo(json.dumps(view, indent=1) if as_json else f"{HEADER}\n{_row(view)}")
        if not as_json:
            for item in view.get("drift", []):
                click.echo(f"ERROR: drift: {item['name']} {item['state']} ({item['why']})", err=True)
        if view["supervisord"] == "down":
            ctx.exit(ExitCode.DOWN)
        ctx.exit(ExitCode.ERROR if view.get("drift") else ExitCode.OK)
    result = cluster_status(env.paths, env.file)
    if as_json:
        click.echo(json.dumps({"hosts": result.hosts, "problems": result.problems,
                               "unreachable": result.unreachable, "notices": result.notices,
                               "pacemaker": result.pacemaker}, indent=1))
    else:
        click.echo(HEADER)
        for view in result.hosts:
            click.echo(_row(view))
            line = standing_line(view)
            if line:
                click.echo(f"{'':<16} {line}")
        if result.pacemaker is not None:
            for line in pacemaker_lines(result.pacemaker):
                click.echo(line)
        for problem in result.problems:
            click.echo(f"ERROR: {problem}", err=True)
        for problem in result.unreachable:
            click.echo(f"warning: {problem}", err=True)
        for notice in result.notices:
            click.echo(f"warning: {notice}", err=True)
    ctx.exit(result.exit_code)


COMMANDS = [status]
