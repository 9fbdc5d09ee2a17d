"""Run the whole benchmark: `./bin/bench [--programs 1000] [--status-programs 2000] [--repeat 3] [--json FILE]`.

Arguments after `--` go to the registry-sync benchmark (bench/sync_bench.py) when it is present.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import cases
from bench.hosts import BenchError, Fleet
from bench.report import Machine, markdown, text_table, write_json, write_results_md

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "latest.json"
RESULTS_MD = HERE / "RESULTS.md"
SCENARIOS = ("lifecycle", "status", "stall", "failover", "sync", "health")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="supz against stock supervisor, side by side.")
    parser.add_argument("--programs", type=int, default=1000,
                        help="programs for activation, deactivation, park, unpark")
    parser.add_argument("--status-programs", type=int, default=2000, help="programs for the status case")
    parser.add_argument("--stall-programs", type=int, nargs="+", default=[1000, 2000],
                        help="program counts for the stall cases (the longest getState wait during activation, and deactivation)")
    parser.add_argument("--failover-programs", type=int, default=2000,
                        help="programs for the failover case (a pair in network namespaces; needs root)")
    parser.add_argument("--failover-runs", type=int, default=1,
                        help="runs of the failover case (each about 2 minutes at 2000 programs)")
    parser.add_argument("--health-programs", type=int, default=1000, help="applications the health daemon probes")
    parser.add_argument("--health-seconds", type=float, default=30.0, help="length of each health measurement window")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every case on each side")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the figures")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these scenarios (repeatable)")
    parser.add_argument("--no-results-md", action="store_true",
                        help="do not rewrite bench/RESULTS.md (never rewritten by an --only run)")
    return parser


def _log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_sync(argv: list[str]) -> Any:
    """The registry-sync cases live in bench/sync_bench.py (`main(argv)`); run them when present."""
    try:
        from bench import sync_bench  # type: ignore[attr-defined]
    except ImportError:
        _log("sync cases skipped: bench/sync_bench.py is not here")
        return None
    _log("running the registry-sync cases (bench/sync_bench.py)")
    return sync_bench.main(argv)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    sync_argv: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, sync_argv = args[:cut], args[cut + 1:]
    options = _parser().parse_args(args)
    if min(options.programs, options.status_programs, options.repeat, options.failover_programs,
           options.failover_runs) < 1:
        _parser().error("counts and --repeat must be at least 1")
    wanted = options.only or list(SCENARIOS)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    machine = Machine.this()
    _log(f"machine: {machine.line()}")
    fleet = Fleet()
    results: list[cases.CaseResult] = []
    extra: dict[str, Any] = {}
    try:
        if "lifecycle" in wanted:
            results += cases.lifecycle(fleet, options.programs, options.repeat, _log)
            fleet.destroy_all()
        if "status" in wanted:
            results += cases.status(fleet, options.status_programs, options.repeat, _log)
            fleet.destroy_all()
        if "stall" in wanted:
            results += cases.stall(fleet, options.stall_programs, options.repeat, _log)
        if "failover" in wanted:
            results += cases.failover_rows(options.failover_programs, options.failover_runs, _log)
        if "health" in wanted:
            results += cases.health_rows(fleet, options.health_programs, options.repeat, options.health_seconds, _log)
            fleet.destroy_all()
        if "sync" in wanted:
            extra["sync"] = run_sync(sync_argv)
            if isinstance(extra["sync"], dict):
                results += cases.sync_rows(extra["sync"])
    except BenchError as exc:
        _log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        _log("interrupted")
        return 130
    finally:
        fleet.destroy_all()
    if not results:
        return 0
    settings = {"programs": options.programs, "status_programs": options.status_programs,
                "health_programs": options.health_programs, "failover_programs": options.failover_programs,
                "repeat": options.repeat, "startsecs": cases.STARTSECS}
    print(text_table(results, machine, options.repeat))
    command = " ".join(["./bin/bench", *args])
    write_json(options.json, results, machine, settings, {"command": command, **extra})
    _log(f"figures written to {options.json}")
    if not options.no_results_md and not options.only:
        when = _dt.datetime.now().strftime("%Y-%m-%d")
        write_results_md(RESULTS_MD, markdown(results, machine, options.repeat, when, command))
        _log(f"table written to {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
