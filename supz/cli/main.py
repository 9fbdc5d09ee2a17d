"""The `supz` admin command: one place turns typed errors into a message and an exit code."""

from __future__ import annotations

import sys

import click

from supz import __version__
from supz.cli import alerts, app, failover, health, host, metrics, pacemaker, registry, role, status, sync
from supz.cli.env import Env
from supz.errors import ExitCode, SupzError
from supz.paths import resolve_root


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    envvar="SUPZ_ROOT",
    default="/",
    show_default=True,
    help="Root folder of the host; every path derives from it (env SUPZ_ROOT).",
)
@click.version_option(__version__, prog_name="supz")
@click.pass_context
def cli(ctx: click.Context, root: str) -> None:
    """supz: active/standby hosting of supervisor applications.

    The registry says what must run; supzcli is the operators' shell on it.
    """
    ctx.obj = Env(resolve_root(root))


for _module in (host, registry, role, app, sync, failover, health, status, metrics, alerts, pacemaker):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def run(argv: list[str] | None = None) -> int:
    """`supz` without exiting: the one place that turns what a command raised into a message on
    stderr and an exit code (`ExitCode`). Tests call this in-process."""
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        returned = cli.main(args=argv, prog_name="supz", standalone_mode=False)
    except SupzError as exc:
        click.echo(f"supz: error: {exc}", err=True)
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Abort:
        click.echo("supz: aborted", err=True)
        return int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("supz: interrupted", err=True)
        return int(ExitCode.INTERRUPTED)
    return int(returned) if isinstance(returned, int) else int(ExitCode.OK)


def main(argv: list[str] | None = None) -> None:
    """The console script: run `supz` and exit with its code."""
    sys.exit(run(argv))


if __name__ == "__main__":  # pragma: no cover
    main()
