"""The failover case: a pair in network namespaces (real keepalived, supervisord, the syncer over
ssh) with `count` active programs; kill -9 of the MASTER's keepalived, timed to every program
RUNNING on the new MASTER, with the longest getState wait on that host meanwhile.

It is the chaos test CI runs at 300 programs (tests/integration/test_failover_chaos.py,
`test_a_failover_at_scale_settles_at_once`), run here at `count` through pytest: the test builds
and tears down the pair, checks one transition per host over the next 60 s and every program once
across both hosts (/proc), and prints the line read here. Needs root (network namespaces).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.hosts import BenchError

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/integration/test_failover_chaos.py::test_a_failover_at_scale_settles_at_once"
LINE = re.compile(r"(\d+) programs: kill -9 of the MASTER's keepalived to all RUNNING on the new MASTER: "
                  r"([\d.]+)s; longest getState wait on B meanwhile: (\d+) ms")


def failover(count: int, runs: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    """Seconds from the kill to all RUNNING, and the longest getState wait (seconds), per run."""
    if os.geteuid() != 0:
        raise BenchError("the failover case needs root (network namespaces)")
    figures: dict[str, list[float]] = {"took": [], "stall": []}
    for attempt in range(1, runs + 1):
        log(f"failover: a pair with {count} programs, kill -9 of the MASTER's keepalived (run {attempt}/{runs})")
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", TEST],
                              cwd=REPO, env={**os.environ, "SUPZ_FAILOVER_PROGRAMS": str(count)},
                              capture_output=True, text=True, timeout=1800)
        found = LINE.search(done.stdout)
        if done.returncode != 0 or found is None:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise BenchError(f"the failover run failed (pytest exit {done.returncode}):\n" + "\n".join(tail))
        figures["took"].append(float(found.group(2)))
        figures["stall"].append(int(found.group(3)) / 1000)
        log(f"  run {attempt}/{runs}: all {count} RUNNING on the new MASTER {figures['took'][-1]:.2f}s after the kill; "
            f"longest getState wait {figures['stall'][-1] * 1000:.0f} ms; one transition per host over 60 s")
    return figures
