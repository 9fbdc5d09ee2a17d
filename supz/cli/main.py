"""The `supz` admin command: one place turns typed errors into a message and an exit code."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import click

from supz import __version__
from supz.config import SupzConfig, load_config
from supz.errors import ExitCode, SupzError
from supz.paths import HostPaths, resolve_root
from supz.registry import Registry


@dataclass
class Env:
    """What every command needs: the host's paths and, read once when asked, its config."""

    paths: HostPaths
    _config: SupzConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> SupzConfig:
        if self._config is None:
            self._config = load_config(self.paths.config_file)
        return self._config

    def registry(self) -> Registry:
        return Registry(self.paths, host=self.config.host)


pass_env = click.make_pass_decorator(Env)


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


def _register() -> None:
    from supz.cli import app, failover, host, registry, role, status, sync

    for module in (host, registry, role, app, sync, failover, status):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run `supz`; SupzError becomes `supz: error: ...` on stderr and its exit code."""
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        returned = cli.main(args=argv, prog_name="supz", standalone_mode=False)
    except SupzError as exc:
        click.echo(f"supz: error: {exc}", err=True)
        return sys.exit(int(exc.exit_code))
    except click.exceptions.Exit as exc:
        return sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return sys.exit(ExitCode.USAGE if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Abort:
        click.echo("supz: aborted", err=True)
        return sys.exit(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("supz: interrupted", err=True)
        return sys.exit(ExitCode.INTERRUPTED)
    return sys.exit(returned if isinstance(returned, int) else ExitCode.OK)


if __name__ == "__main__":  # pragma: no cover
    main()
