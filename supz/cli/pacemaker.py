"""`supz pacemaker`: the OCF resource agent's entry point and the CIB snippet."""

from __future__ import annotations

from pathlib import Path

import click

from supz.cli.env import Env, pass_env
from supz.executables import supz_executable
from supz.failover.settings import load_failover_settings
from supz.pacemaker import agent as ocf
from supz.pacemaker.cib import PARTS, Snippet, render_cib
from supz.pacemaker.script import AGENT_DIR, install_agent

ACTIONS = ("start", "stop", "monitor", "status", "validate-all", "meta-data", "usage", "help")
UNSUPPORTED = ("promote", "demote", "notify", "migrate_to", "migrate_from", "reload", "reload-agent")


@click.group()
def pacemaker() -> None:
    """Pacemaker: the resource agent ocf:supz:registry and its CIB snippet (docs/pacemaker.md)."""


@pacemaker.command(context_settings={"ignore_unknown_options": True})
@click.argument("action")
@pass_env
@click.pass_context
def agent(ctx: click.Context, env: Env, action: str) -> None:
    """The OCF resource agent: ACTION is start, stop, monitor, validate-all, meta-data or usage.

    Exits with the OCF code (0 success, 1 generic error, 3 unimplemented, 5 not installed,
    6 not configured, 7 not running), not supz's own, and prints one line saying why on stderr.
    /usr/lib/ocf/resource.d/supz/registry runs it with --root from the resource's `root`.
    """
    if action == "meta-data":
        click.echo(ocf.meta_data(ocf.timing_for(env.paths)), nl=False)
        ctx.exit(ocf.Ocf.SUCCESS)
    if action in ("usage", "help"):
        click.echo(f"usage: {supz_executable().name} --root ROOT pacemaker agent {{{'|'.join(ACTIONS[:-2])}}}")
        ctx.exit(ocf.Ocf.SUCCESS)
    handlers = {"start": ocf.start, "stop": ocf.stop, "monitor": ocf.monitor, "status": ocf.monitor,
                "validate-all": ocf.validate}
    if action not in handlers:
        click.echo(f"{action}: not implemented by ocf:supz:registry", err=True)
        ctx.exit(ocf.Ocf.ERR_UNIMPLEMENTED)
    try:
        outcome = handlers[action](env.paths)
    except Exception as exc:  # noqa: BLE001 - an agent answers Pacemaker with a code, whatever happened
        outcome = ocf.Outcome(ocf.Ocf.ERR_GENERIC, f"{action}: {type(exc).__name__}: {exc}")
    click.echo(f"{action}: {outcome.message}", err=True)
    ctx.exit(outcome.code)


@pacemaker.command()
@click.option("--id", "rid", default="supz", show_default=True, help="The resource id; the VIP's is ID-vip.")
@click.option("--vip", default=None, help="The VIP as address/prefix [default: [failover] vip; none: no VIP].")
@click.option("--nic", default=None, help="The VIP's interface [default: [failover] interface].")
@click.option("--part", type=click.Choice(PARTS), default="all", show_default=True,
              help="resources or constraints alone, for `cibadmin --modify --allow-create --scope PART`.")
@pass_env
def render(env: Env, rid: str, vip: str | None, nic: str | None, part: str) -> None:
    """The CIB snippet for this root: the agent, an IPaddr2 VIP, colocation and order, timeouts."""
    settings = load_failover_settings(env.file)
    snippet = Snippet(rid=rid, root=str(env.paths.root), supz=str(supz_executable()),
                      vip=settings.vip if vip is None else ("" if vip == "none" else vip),
                      nic=settings.interface if nic is None else nic, timing=ocf.timing_for(env.paths))
    click.echo(render_cib(snippet, part), nl=False)


@pacemaker.command("install-agent")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=str(AGENT_DIR),
              show_default=True, help="Where Pacemaker looks for the agents of provider supz.")
def install_agent_cmd(folder: Path) -> None:
    """Write the agent ocf:supz:registry, running this installation's supz (the package carries it)."""
    click.echo(f"wrote {install_agent(folder, str(supz_executable()))}")


COMMANDS = [pacemaker]
