"""What every `supz` command shares: the host's paths and its config, read once when asked.

Its own module so that the command modules and the entry point (`supz.cli.main`) import it
without importing each other: any of them can be imported alone, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from supz.config import ConfigFile, SupzConfig, load_config, read_config
from supz.ops.report import Report
from supz.paths import HostPaths
from supz.registry import Registry


@dataclass
class Env:
    """What every command needs: the host's paths and, read once when asked, its config."""

    paths: HostPaths
    _file: ConfigFile | None = field(default=None, repr=False)
    _config: SupzConfig | None = field(default=None, repr=False)

    @property
    def file(self) -> ConfigFile:
        """The supz config file, parsed once; section loaders read from it."""
        if self._file is None:
            self._file = read_config(self.paths.config_file)
        return self._file

    @property
    def config(self) -> SupzConfig:
        if self._config is None:
            self._config = load_config(self.file)
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
