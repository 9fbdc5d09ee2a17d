"""What an operation did: lines to show, structured results, and the exit code it ends with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from supz.errors import ExitCode

AUDIT_RESULT_MAX = 2000


@dataclass(frozen=True)
class Result:
    """The extension's answer for one name: ok, a status word ('parked', 'started'...), a message."""

    name: str
    ok: bool
    status: str
    message: str = ""

    @classmethod
    def from_rpc(cls, item: Mapping[str, Any]) -> Result:
        return cls(str(item["name"]), bool(item["ok"]), str(item["status"]), str(item.get("message") or ""))


@dataclass
class Report:
    """Lines for stdout, warnings for stderr, failures, and the worst exit code seen."""

    lines: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.OK

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    def say(self, line: str) -> None:
        self.lines.append(line)

    def warn(self, line: str) -> None:
        self.warnings.append(line)

    def fail(self, line: str, code: int = ExitCode.ERROR) -> None:
        self.lines.append(line)
        self.errors.append(line)
        self.worst(code)

    def worst(self, code: int) -> None:
        """Keep the highest exit code of a command over several names."""
        if code > self.exit_code:
            self.exit_code = ExitCode(code)

    def merge(self, other: Report) -> None:
        self.lines += other.lines
        self.results += other.results
        self.warnings += other.warnings
        self.errors += other.errors
        self.worst(other.exit_code)

    def audit_result(self) -> str:
        """The result field of an audit line: 'ok', or the failures."""
        if not self.errors:
            return "ok"
        return ("failed: " + "; ".join(self.errors))[:AUDIT_RESULT_MAX]


def add_results(report: Report, answer: Mapping[str, Any], done: Mapping[str, str] | None = None, *,
                note: str = "", hide: tuple[str, ...] = ()) -> Report:
    """Render the extension's per-name results: `NAME: what was done (message)` or
    `NAME: ERROR (status: message)`. Statuses in `hide` are recorded but not shown."""
    for item in answer["results"]:
        result = Result.from_rpc(item)
        report.results.append(result)
        if not result.ok:
            report.fail(f"{result.name}: ERROR ({result.status}: {result.message})")
        elif result.status not in hide:
            text = (done or {}).get(result.status, result.status)
            report.say(f"{result.name}: {text}" + (f" ({result.message})" if result.message else "") + note)
    return report
