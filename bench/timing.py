"""Clocks for the benchmark: summaries of repeated runs and supervisord's own log as a stopwatch.

Polling `getAllProcessInfo` to see when a thousand programs are RUNNING would load the very
supervisord being measured, so the stock side's finish line is read from supervisord's log
instead: it stamps every "entered RUNNING state" to the millisecond, at no cost to the run.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ (?:success|gave up|exited): (\S+) "
    r"(entered RUNNING state|entered FATAL state|\(exit status)"
)


@dataclass(frozen=True)
class Summary:
    """Median, min and max of one side of one case, in seconds."""

    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    @classmethod
    def of(cls, runs: Iterable[float]) -> Summary:
        values = tuple(runs)
        return cls(statistics.median(values), min(values), max(values), values)

    def as_dict(self) -> dict[str, object]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": list(self.runs)}


def _stamp(day_time: str, millis: str) -> float:
    return time.mktime(time.strptime(day_time, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000


class LogWatch:
    """Reads supervisord's log from where it was when created: when did these programs get RUNNING?"""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        self.running: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self._rest = b""

    def _read(self) -> None:
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        self.offset += len(data)
        data = self._rest + data
        lines = data.split(b"\n")
        self._rest = lines.pop()
        for raw in lines:
            match = _LINE.match(raw.decode("utf-8", "replace"))
            if not match:
                continue
            day_time, millis, name, what = match.groups()
            if what == "entered RUNNING state":
                self.running[name] = _stamp(day_time, millis)
            else:
                self.failed[name] = what

    def wait_running(self, names: Iterable[str], timeout: float) -> float:
        """Wall-clock time (time.time()) at which the last of `names` entered RUNNING."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            broken = sorted(wanted & set(self.failed))
            if broken:
                raise TimeoutError(
                    f"{len(broken)} program(s) failed to start, e.g. {broken[0]} ({self.failed[broken[0]]})")
            missing = wanted - set(self.running)
            if not missing:
                return max(self.running[n] for n in wanted)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(missing)} program(s) not RUNNING after {timeout:g}s, e.g. {sorted(missing)[0]}")
            time.sleep(0.1)
