"""`supz metrics`: Prometheus metrics of this host (docs/architecture.md, "Metrics")."""

from __future__ import annotations

from pathlib import Path

import click

from supz import metrics as core
from supz.cli.env import Env, pass_env

DEFAULT_LISTEN = "127.0.0.1:9810"


@click.command()
@click.option("--textfile", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write them to this file for node_exporter's textfile collector (atomically).")
@click.option("--serve", "serve_", is_flag=True,
              help="Serve /metrics until interrupted, on [metrics] listen in supz.conf "
                   f"[default: {DEFAULT_LISTEN}].")
@click.option("--listen", default=None, metavar="IP:PORT", help="With --serve: a loopback address to serve on.")
@pass_env
def metrics(env: Env, textfile: Path | None, serve_: bool, listen: str | None) -> None:
    """Prometheus metrics: role, generation, applications by state (active, parked, running,
    unhealthy, drift), sync lag and state per peer, failovers, audit lines per minute.

    Printed in the text format, written to --textfile, or served with --serve (loopback only).
    """
    host = env.config.host
    if serve_:
        section = env.file.section("metrics")
        address = listen or (section.get("listen") if section is not None else None) or DEFAULT_LISTEN
        core.serve(env.paths, host, address, ready=lambda url: click.echo(f"serving {url}", err=True))
        return
    if textfile is not None:
        core.write_textfile(env.paths, host, textfile)
        return
    click.echo(core.exposition(env.paths, host).decode("utf-8"), nl=False)


COMMANDS = [metrics]
