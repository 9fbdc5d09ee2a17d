"""The benchmark's outputs: one table on stdout, the figures as JSON, the README-ready bench/RESULTS.md."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.cases import CaseResult
from bench.timing import Summary

# Everything below this line in bench/RESULTS.md is written by hand (analysis, profiles) and kept.
NOTES_MARKER = "<!-- notes: kept across runs -->"


@dataclass(frozen=True)
class Machine:
    cores: int
    memory_gib: float
    cpu: str
    kernel: str
    python: str
    supervisor: str

    @classmethod
    def this(cls) -> Machine:
        cpu = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        return cls(
            cores=os.cpu_count() or 0,
            memory_gib=round(memory, 1),
            cpu=cpu,
            kernel=platform.release(),
            python=platform.python_version(),
            supervisor=metadata.version("supervisor"),
        )

    def line(self) -> str:
        return (f"{self.cores} cores ({self.cpu}), {self.memory_gib:g} GiB RAM, Linux {self.kernel}, "
                f"Python {self.python}, supervisor {self.supervisor}")


def _secs(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _cell(summary: Summary, unit: str = "s") -> str:
    show = (lambda v: f"{v:.1f} MB") if unit == "MB" else _secs
    return f"{show(summary.median)} ({show(summary.low)}–{show(summary.high)})"


def rows(results: Sequence[CaseResult]) -> list[list[str]]:
    table = []
    for r in results:
        verdict = {True: "met", False: "below", None: "information"}[r.met]
        if r.floor and not r.met:
            verdict += f"; {r.ratio_over_floor:.1f}x past the {r.floor:g} s startsecs floor"
        target = "—" if r.target is None else f">= {r.target:g}x"
        if r.limit is not None:
            target = f"<= {r.limit * 1000:g} ms (longest run)"
        stock = "—" if r.stock is None else _cell(r.stock, r.unit)
        ratio = "—" if r.ratio is None else f"{r.ratio:.1f}x"
        table.append([r.title, _cell(r.supz, r.unit), stock, ratio, target, verdict])
    return table


HEADER = ["case", "supz: median (min–max)", "compared with (stock supervisor; lsyncd for sync): median (min–max)",
          "ratio", "target", ""]


def text_table(results: Sequence[CaseResult], machine: Machine, repeat: int) -> str:
    body = [HEADER] + rows(results)
    widths = [max(len(row[i]) for row in body) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"ratio = the comparison / supz (higher is better), {repeat} runs each; {machine.line()}")
    return "\n".join(lines)


def markdown(results: Sequence[CaseResult], machine: Machine, repeat: int, when: str, command: str) -> str:
    out = [
        "# Benchmark results",
        "",
        f"Taken {when} with `{command}` on {machine.line()}.",
        f"Each supervisor case ran {repeat} times on both sides; "
        "ratio = the comparison's median / supz's (higher is better).",
        "",
        "| " + " | ".join(HEADER[:-1] + ["verdict"]) + " |",
        "|" + "---|" * len(HEADER),
    ]
    out += ["| " + " | ".join(row) + " |" for row in rows(results)]
    out += ["", "How each side ran:", ""]
    out += [f"- **{r.title}**: supz: {r.supz_how}; stock: {r.stock_how}." for r in results]
    return "\n".join(out) + "\n"


def write_results_md(path: Path, text: str) -> None:
    """Rewrite the generated part of RESULTS.md; keep the hand-written notes after the marker."""
    notes = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        if NOTES_MARKER in old:
            notes = old[old.index(NOTES_MARKER) + len(NOTES_MARKER):]
    path.write_text(text + "\n" + NOTES_MARKER + (notes or "\n"), encoding="utf-8")


def write_json(path: Path, results: Sequence[CaseResult], machine: Machine, settings: dict[str, Any],
               extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "taken": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine.__dict__,
        "settings": settings,
        "cases": [r.as_dict() for r in results],
        **extra,
    }
    path.write_text(json.dumps(data, indent=1, default=repr) + "\n", encoding="utf-8")
