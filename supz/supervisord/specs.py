"""Parsed program files kept between loads, so a MASTER transition spawns instead of parsing.

supervisor's parser costs about half a millisecond per program file: half a second of every
failover at a thousand entries. The standby parses its active entries when its supervisord
starts; at activation an entry whose text has not changed reuses that parse, a changed one is
parsed again. supervisor writes into a program's config when it loads it (the names of its
automatic log files), so every load gets fresh copies and the cached parse stays pristine.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from supz.errors import InvalidProgramFile
from supz.programfile import ProgramSpec, parse_program_text, read_program_text


def fresh_copy(spec: ProgramSpec) -> ProgramSpec:
    """The same spec with its own group and process configs (shallow copies: supervisor replaces
    attributes of a loaded config, it never mutates the values they share)."""
    from supervisor.options import ProcessGroupConfig

    group = spec.group_config
    processes = [copy.copy(config) for config in group.process_configs]
    fresh = ProcessGroupConfig(group.options, group.name, group.priority, processes)
    return dataclasses.replace(spec, group_config=fresh)


class SpecCache:
    """name -> (file text, its parse), for one supervisord's options and environment."""

    def __init__(self, options: Any, environment: dict[str, str] | None) -> None:
        self.options = options
        self.environment = environment
        self._parsed: dict[str, tuple[str, ProgramSpec]] = {}

    def spec(self, name: str, path: Path) -> ProgramSpec:
        """The validated spec of the program file at `path`, parsed only if its text changed."""
        text = read_program_text(path)
        hit = self._parsed.get(name)
        if hit is None or hit[0] != text:
            try:
                parsed = parse_program_text(text, name, label=str(path), options=self.options,
                                            environment=self.environment)
            except InvalidProgramFile:
                self._parsed.pop(name, None)
                raise
            hit = self._parsed[name] = (text, parsed)
        return fresh_copy(hit[1])

    def warm(self, entries: Iterable[tuple[str, Path]]) -> list[InvalidProgramFile]:
        """Parse ahead (a standby at start); returns the problems instead of raising them."""
        problems = []
        for name, path in entries:
            try:
                self.spec(name, path)
            except InvalidProgramFile as exc:
                problems.append(exc)
        return problems

    def forget(self, keep: Iterable[str]) -> None:
        """Drop every entry not in `keep` (removed from the registry)."""
        wanted = set(keep)
        for name in [n for n in self._parsed if n not in wanted]:
            del self._parsed[name]
