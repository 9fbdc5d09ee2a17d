"""What every `supz` command shares: the host's paths and its config, read once when asked.

Its own module so that the command modules and the entry point (`supz.cli.main`) import it
without importing each other: any of them can be imported alone, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from supz.config import SupzConfig, load_config
from supz.ops.report import Report
from supz.paths import HostPaths
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


def render_report(report: Report, *, printed: bool = False) -> None:
    """A report on the terminal: its lines on stdout (unless already streamed), warnings on stderr."""
    if not printed:
        for line in report.lines:
            click.echo(line)
    for line in report.warnings:
        click.echo(line, err=True)
