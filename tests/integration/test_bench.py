"""The benchmark harness runs end to end at a tiny scale and leaves nothing behind (no timings checked)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _bench_roots() -> set[str]:
    return {p.name for p in Path("/tmp").glob("supzb-*")}


def run_bench(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS`; past the timeout it gets Ctrl-C first, so it tears its hosts down
    (a plain kill would leave their supervisords running)."""
    argv = [sys.executable, "-m", "bench", *args]
    with subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as bench:
        try:
            out, err = bench.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            bench.send_signal(signal.SIGINT)
            try:
                out, err = bench.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                bench.kill()
                out, err = bench.communicate()
            pytest.fail(f"the benchmark did not finish in {timeout:g} s:\n{err[-2000:]}")
    return subprocess.CompletedProcess(argv, bench.returncode, out, err)


def test_bench_runs_every_case_and_cleans_up(tmp_path: Path) -> None:
    before = _bench_roots()
    out = tmp_path / "figures.json"
    result = run_bench(["--programs", "3", "--status-programs", "3", "--stall-programs", "3", "--repeat", "1",
                        "--json", str(out), "--no-results-md", "--only", "lifecycle", "--only", "status",
                        "--only", "stall"], 300)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert [c["case"] for c in figures["cases"]] == [
        "activate", "deactivate", "park", "unpark", "status", "status-same-root", "stall3", "stall-stop3"]
    assert figures["machine"]["cores"] >= 1 and figures["settings"]["programs"] == 3
    for case in figures["cases"]:
        assert case["supz"]["median"] > 0 and case["stock"]["median"] > 0
    table = result.stdout
    assert "activation: 3 programs loaded and RUNNING" in table and "ratio = the comparison / supz" in table
    assert "longest supervisord stall while 3 programs start" in table and "<= 100 ms" in table
    assert "longest supervisord stall while 3 programs stop" in table
    assert _bench_roots() == before, "every benchmark root is removed"
    assert "supzb-" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_bench_sync_rows_compare_with_lsyncd(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The sync cases at a tiny scale: rows against lsyncd join the one table, figures in the JSON."""
    if shutil.which("lsyncd") is None:
        pytest.skip("lsyncd is not installed (./bin/bootstrap installs it as root)")
    out = tmp_path / "bench.json"
    result = run_bench(["--only", "sync", "--json", str(out), "--",
                        "--transports", "local", "--entries", "10", "--singles", "3", "--burst", "20", "--bursts", "1",
                        "--idle-seconds", "1", "--rss-entries", "20", "--json", str(tmp_path / "sync.json")], 300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sync: one changed entry visible on the peer, p99 (local)" in result.stdout
    assert "sync: 20 changed entries until the peer converges (local)" in result.stdout
    data = json.loads(out.read_text())
    assert {r["tool"] for r in data["sync"]["results"]} == {"supz", "lsyncd"}


def test_bench_health_rows(tmp_path: Path) -> None:
    """The health case at a tiny scale: two rows against the goals, nothing left behind."""
    before = _bench_roots()
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "health", "--health-programs", "5", "--health-seconds", "1",
         "--repeat", "1", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "health: 5 applications probed every 5 s, CPU per second" in result.stdout
    assert "health: 5 applications probed every 5 s, resident memory" in result.stdout
    cases = {c["case"]: c for c in json.loads(out.read_text())["cases"]}
    assert cases["health-rss"]["unit"] == "MB" and cases["health-rss"]["supz"]["median"] > 5
    assert cases["health-cpu"]["stock"]["median"] == 0.05
    assert not {r for r in _bench_roots() - before if r.startswith("supzb-health-")}
    assert "supzb-health-" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
