"""Status: one row per process and per parked or inactive entry, and the exit code it means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from supz.errors import ExitCode
from supz.health.state import health_word, read_state
from supz.ops.env import OpsEnv
from supz.ops.report import Report

RUNNING = "RUNNING"
MIN_WIDTH = 30


@dataclass(frozen=True)
class StatusRow:
    """A process (`group:name`) or an entry that is not loaded (PARKED, INACTIVE)."""

    name: str
    state: str
    description: str = ""
    health: str = ""  # HEALTHY, UNHEALTHY (n/fails), UNKNOWN: a probed RUNNING process only

    @classmethod
    def parse(cls, line: str) -> StatusRow:
        parts = line.split("\t", 2)
        return cls(parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "")

    def matches(self, spec: str) -> bool:
        """NAME and NAME:* match every process of NAME; NAME:PROC one process."""
        group, _, process = spec.partition(":")
        if self.name in (spec, group):
            return True
        return self.name.startswith(group + ":") and (not process or process == "*" or self.name == spec)


@dataclass
class StatusReport(Report):
    rows: list[StatusRow] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """`status --json`: every row, the names that matched nothing, and the exit code."""
        return {
            "processes": [{"name": r.name, "state": r.state, "health": r.health or None,
                           "description": r.description} for r in self.rows],
            "missing": list(self.missing),
            "exit_code": int(self.exit_code),
        }


def format_rows(rows: Sequence[StatusRow]) -> list[str]:
    width = max([MIN_WIDTH] + [len(row.name) for row in rows]) + 3
    return [f"{row.name:<{width}}{row.state:<10}{f'{row.health:<18}' if row.health else ''}{row.description}".rstrip()
            for row in rows]


def with_health(rows: Sequence[StatusRow], state: dict[str, Any] | None) -> list[StatusRow]:
    """Each probed RUNNING process with its health word (HEALTHY, UNHEALTHY n/fails, UNKNOWN),
    from the health daemon's state file (supz/health/state.py); shown before the description."""
    shown = []
    for row in rows:
        word = health_word(state, row.name) if row.state == RUNNING else None
        shown.append(StatusRow(row.name, row.state, row.description, health=word) if word else row)
    return shown


def status(env: OpsEnv, names: Sequence[str] = (), *, missing_code: ExitCode = ExitCode.USAGE) -> StatusReport:
    """Exit 0 when every row is RUNNING, 3 (NOT_RUNNING) otherwise; a name with no row exits
    `missing_code`: 2 for a name that does not exist, 3 for sup_run.sh (an application not
    registered). supervisord not running raises SupervisordDown (7)."""
    with env.connect() as client:
        text = str(client.supz("status"))
    rows = [StatusRow.parse(line) for line in text.splitlines() if line]
    report = StatusReport()
    if names and "all" not in names:
        chosen: list[StatusRow] = []
        for name in names:
            hits = [row for row in rows if row.matches(name)]
            if not hits:
                report.missing.append(name)
                why = ("ERROR (no such process or application)" if missing_code == ExitCode.USAGE
                       else "UNKNOWN (not in the registry, not loaded)")
                report.fail(f"{name}: {why}", missing_code)
            chosen += [row for row in hits if row not in chosen]
        rows = chosen
    report.rows = with_health(rows, read_state(env.paths))
    report.lines += format_rows(report.rows) if rows else []
    if not report.missing and any(row.state != RUNNING for row in rows):
        report.exit_code = ExitCode.NOT_RUNNING
    return report
