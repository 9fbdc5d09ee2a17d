"""The benchmark cases: each supz path timed against the stock supervisor path it replaces.

A case runs both sides `repeat` times, interleaved, on two roots that exist side by side: a supz
root (supervisord with the extension) and a stock root (plain supervisord, same settings). Every
run is checked after its clock stops: all programs RUNNING (or all gone), none missing, none extra.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.hosts import BenchError, BenchHost, Fleet, move_all, program_names
from bench.timing import LogWatch, Summary
from supz.registry import EntryState
from supz.role import write_role
from supz.supervisord.client import context

STARTSECS = 1


@dataclass(frozen=True)
class CaseResult:
    """One row of the table: both sides' timings, the target ratio (stock / supz) and how each side ran."""

    key: str
    title: str
    supz: Summary
    stock: Summary | None  # None: nothing to compare with (the failover case)
    target: float | None  # None: shown for information, no target
    supz_how: str
    stock_how: str
    floor: float = 0.0  # seconds both sides must spend whatever the tool (a program's startsecs)
    limit: float | None = None  # when set, the target is supz's longest run staying at or under it (seconds)
    unit: str = "s"     # "s" (timings, also CPU seconds per second) or "MB"

    @property
    def ratio(self) -> float | None:
        return None if self.stock is None else self.stock.median / self.supz.median

    @property
    def ratio_over_floor(self) -> float:
        """The ratio of what the tools themselves cost, once the shared floor is taken out."""
        stock = self.stock.median if self.stock is not None else self.supz.median
        return (stock - self.floor) / max(self.supz.median - self.floor, 1e-3)

    @property
    def met(self) -> bool | None:
        if self.limit is not None:
            return self.supz.high <= self.limit
        return None if self.target is None or self.ratio is None else self.ratio >= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.key,
            "title": self.title,
            "supz": self.supz.as_dict(),
            "stock": None if self.stock is None else self.stock.as_dict(),
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "floor": self.floor,
            "limit": self.limit,
            "ratio_over_floor": self.ratio_over_floor if self.floor else None,
            "supz_how": self.supz_how,
            "stock_how": self.stock_how,
            "unit": self.unit,
        }


def _timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _processes(host: BenchHost) -> dict[str, str]:
    with host.client() as client:
        return {i["group"]: i["statename"] for i in client.supervisor("getAllProcessInfo")}


def _expect_running(host: BenchHost, names: list[str]) -> None:
    """Every program of `names` RUNNING, once (one process per program), and nothing else loaded."""
    states = _processes(host)
    if set(states) != set(names) or any(s != "RUNNING" for s in states.values()):
        missing = sorted(set(names) - set(states))
        extra = sorted(set(states) - set(names))
        bad = sorted(n for n, s in states.items() if s != "RUNNING")
        raise BenchError(f"{host.root}: missing {missing[:3]}, extra {extra[:3]}, not RUNNING {bad[:3]}")


def _expect_empty(host: BenchHost) -> None:
    states = _processes(host)
    if states:
        raise BenchError(f"{host.root}: {len(states)} program(s) still loaded, e.g. {sorted(states)[0]}")


def _check(result: Any) -> Any:
    failed = [r for r in result["results"] if not r["ok"]]
    if failed:
        raise BenchError(f"{len(failed)} failed, e.g. {failed[0]}")
    return result


# ---- the two sides of activation and deactivation ---------------------------------------------


def supz_activate(host: BenchHost) -> None:
    """The MASTER transition: one `supz.activate` call, which returns once all are RUNNING."""
    write_role(host.paths, "MASTER")
    with host.client() as client:
        _check(client.supz("activate", context("activate", ["bench"])))


def supz_deactivate(host: BenchHost) -> None:
    """The BACKUP transition: one `supz.deactivate` call, which returns once all are unloaded."""
    write_role(host.paths, "BACKUP")
    with host.client() as client:
        _check(client.supz("deactivate", context("deactivate", ["bench"])))


def stock_activate(host: BenchHost, names: list[str]) -> float:
    """Copy the files in, `reread`, `update`; the clock stops when the log shows the last RUNNING."""
    watch = LogWatch(host.paths.supervisord_log)
    start = time.time()
    store = host.root / "store"
    for name in names:
        shutil.copyfile(store / f"{name}.conf", host.paths.active / f"{name}.conf")
    host.run("supervisorctl", "reread")
    host.run("supervisorctl", "update")
    return watch.wait_running(names, timeout=900) - start


def stock_deactivate(host: BenchHost, names: list[str]) -> None:
    """`stop all`, move the files out, `reread`, `update`."""
    host.run("supervisorctl", "stop", "all")
    move_all(names, host.paths.active, host.paths.parked)
    host.run("supervisorctl", "reread")
    host.run("supervisorctl", "update")


def stock_park(host: BenchHost, name: str) -> None:
    host.run("supervisorctl", "stop", name)
    move_all([name], host.paths.active, host.paths.parked)
    host.run("supervisorctl", "reread")
    host.run("supervisorctl", "update")


def stock_unpark(host: BenchHost, name: str) -> float:
    watch = LogWatch(host.paths.supervisord_log)
    start = time.time()
    move_all([name], host.paths.parked, host.paths.active)
    host.run("supervisorctl", "reread")
    host.run("supervisorctl", "update")
    return watch.wait_running([name], timeout=120) - start


def _clear_parked(host: BenchHost) -> None:
    for path in host.paths.parked.glob("*.conf"):
        path.unlink()


# ---- the scenarios ------------------------------------------------------------------------------


def _pair(fleet: Fleet, label: str, names: list[str]) -> tuple[BenchHost, BenchHost]:
    """A supz HA root (BACKUP: the entries admitted, nothing loaded) and a stock root (files in
    its store, none included), both with supervisord up."""
    ours = fleet.supz_host(label, "--ha")
    write_role(ours.paths, "BACKUP")
    ours.add_entries(names, STARTSECS)
    ours.start()
    _expect_empty(ours)
    stock = fleet.stock_host(f"{label}-stock", len(names))
    stock.write_programs(names, stock.root / "store", STARTSECS)
    stock.start()
    return ours, stock


def lifecycle(fleet: Fleet, count: int, repeat: int, log: Callable[[str], None]) -> list[CaseResult]:
    """Activation, deactivation, park and unpark at `count` programs."""
    names = program_names(count)
    log(f"setting up a supz HA root and a stock root with {count} programs each")
    ours, stock = _pair(fleet, "life", names)

    runs: dict[str, list[float]] = {k: [] for k in ("act", "deact", "stock_act", "stock_deact")}
    for attempt in range(1, repeat + 1):
        runs["act"].append(_timed(lambda: supz_activate(ours)))
        _expect_running(ours, names)
        runs["deact"].append(_timed(lambda: supz_deactivate(ours)))
        _expect_empty(ours)
        runs["stock_act"].append(stock_activate(stock, names))
        _expect_running(stock, names)
        runs["stock_deact"].append(_timed(lambda: stock_deactivate(stock, names)))
        _expect_empty(stock)
        _clear_parked(stock)
        log(f"  run {attempt}/{repeat}: activate {runs['act'][-1]:.2f}s vs {runs['stock_act'][-1]:.2f}s, "
            f"deactivate {runs['deact'][-1]:.2f}s vs {runs['stock_deact'][-1]:.2f}s")

    results = [
        CaseResult("activate", f"activation: {count} programs loaded and RUNNING", Summary.of(runs["act"]),
                   Summary.of(runs["stock_act"]), 5.0, "supz.activate (one call, returns when all RUNNING)",
                   "cp files in; supervisorctl reread; supervisorctl update; until all RUNNING", STARTSECS),
        CaseResult("deactivate", f"deactivation: {count} running programs stopped and unloaded",
                   Summary.of(runs["deact"]), Summary.of(runs["stock_deact"]), 5.0,
                   "supz.deactivate (one call)", "supervisorctl stop all; mv files out; reread; update"),
    ]

    log(f"starting all {count} programs on both roots for park/unpark")
    supz_activate(ours)
    stock_activate(stock, names)
    _expect_running(ours, names)
    _expect_running(stock, names)
    runs = {k: [] for k in ("park", "unpark", "stock_park", "stock_unpark")}
    for attempt in range(1, repeat + 1):
        name = names[(attempt * 7919) % count]
        runs["park"].append(_timed(functools.partial(ours.run, "supzcli", "stop", name)))
        if ours.registry().get(name).state is not EntryState.PARKED or name in _processes(ours):
            raise BenchError(f"supzcli stop {name} did not park and unload it")
        runs["unpark"].append(_timed(functools.partial(ours.run, "supzcli", "start", name)))
        _expect_running(ours, names)
        runs["stock_park"].append(_timed(functools.partial(stock_park, stock, name)))
        if name in _processes(stock):
            raise BenchError(f"stock park of {name} left it loaded")
        runs["stock_unpark"].append(stock_unpark(stock, name))
        _expect_running(stock, names)
        log(f"  run {attempt}/{repeat}: park {runs['park'][-1]:.3f}s vs {runs['stock_park'][-1]:.2f}s, "
            f"unpark {runs['unpark'][-1]:.3f}s vs {runs['stock_unpark'][-1]:.2f}s")
    results += [
        CaseResult("park", f"park 1 of {count} (stop, keep stopped)", Summary.of(runs["park"]),
                   Summary.of(runs["stock_park"]), 10.0, "supzcli stop NAME",
                   "supervisorctl stop NAME; mv file out; reread; update"),
        CaseResult("unpark", f"unpark 1 of {count} (until RUNNING)", Summary.of(runs["unpark"]),
                   Summary.of(runs["stock_unpark"]), 10.0, "supzcli start NAME",
                   "mv file back; supervisorctl reread; update; until RUNNING", STARTSECS),
    ]
    for host in (ours, stock):
        host.kill()
    return results


def status(fleet: Fleet, count: int, repeat: int, log: Callable[[str], None]) -> list[CaseResult]:
    """`supzcli status` on a supz root against `supervisorctl status` on a stock root, `count` programs each."""
    names = program_names(count)
    log(f"setting up a supz root and a stock root with {count} running programs each")
    ours, stock = _pair(fleet, "status", names)
    took = _timed(lambda: supz_activate(ours))
    log(f"  supz: {count} programs RUNNING {took:.1f}s after supz.activate")
    took = stock_activate(stock, names)
    log(f"  stock: {count} programs RUNNING {took:.1f}s after reread + update")
    _expect_running(ours, names)
    _expect_running(stock, names)
    runs: dict[str, list[float]] = {"supz": [], "stock": [], "same": []}
    for attempt in range(1, repeat + 1):
        runs["supz"].append(_timed(lambda: _status_lines(ours, "supzcli", count)))
        runs["stock"].append(_timed(lambda: _status_lines(stock, "supervisorctl", count)))
        runs["same"].append(_timed(lambda: _status_lines(ours, "supervisorctl", count)))
        log(f"  run {attempt}/{repeat}: supzcli status {runs['supz'][-1]:.3f}s, supervisorctl status "
            f"{runs['stock'][-1]:.3f}s (stock root), {runs['same'][-1]:.3f}s (supz root)")
    for host in (ours, stock):
        host.kill()
    return [
        CaseResult("status", f"status of {count} programs", Summary.of(runs["supz"]), Summary.of(runs["stock"]),
                   4.0, "supzcli status", "supervisorctl status"),
        CaseResult("status-same-root", f"status of {count} programs, both clients on the supz root",
                   Summary.of(runs["supz"]), Summary.of(runs["same"]), None, "supzcli status",
                   "supervisorctl status against the supz root's supervisord (tuned by the extension)"),
    ]


def _status_lines(host: BenchHost, program: str, count: int) -> None:
    output = host.run(program, "status").stdout
    running = sum(1 for line in output.splitlines() if " RUNNING " in line)
    if running != count:
        raise BenchError(f"{program} status showed {running} RUNNING lines, expected {count}")


def _sync_singles(r: dict[str, Any]) -> Summary:
    return Summary.of(v / 1000 for v in r["single_ms"])


def _sync_p99(r: dict[str, Any]) -> Summary:
    p99 = r["single_p99_ms"] / 1000
    return Summary(p99, p99, r["single_max_ms"] / 1000, (p99,))


def _sync_burst(r: dict[str, Any]) -> Summary:
    return Summary.of(r["bursts_s"]) if r["bursts_s"] else Summary.of([r["burst_from_last_write_s"]])


def _sync_burst_first(r: dict[str, Any]) -> Summary:
    return Summary.of([r["burst_from_first_write_s"]])


def sync_rows(data: dict[str, Any]) -> list[CaseResult]:
    """The registry-sync figures (bench/sync_bench.py) as rows of the one table: supz against lsyncd
    at delay = 0, over the same transport, in the same run. Ratio = lsyncd / supz, target 1.0."""
    by = {(r["tool"], r["transport"]): r for r in data.get("results", [])}
    rows: list[CaseResult] = []
    for transport in ("local", "ssh"):
        supz, lsyncd = by.get(("supz", transport)), by.get(("lsyncd", transport))
        if not supz or not lsyncd:
            continue
        where = "a local folder" if transport == "local" else "rsync over ssh"
        rows.append(CaseResult(f"sync-{transport}-p99",
                               f"sync: one changed entry visible on the peer, p99 ({transport})",
                               _sync_p99(supz), _sync_p99(lsyncd), 1.0, f"supz sync run to {where} (max in the range)",
                               f"lsyncd delay = 0 to {where}"))
        if supz["single_ms"]:
            rows.append(CaseResult(f"sync-{transport}-p50", f"sync: one changed entry, p50 and range ({transport})",
                                   _sync_singles(supz), _sync_singles(lsyncd), None, f"supz sync run to {where}",
                                   f"lsyncd delay = 0 to {where}"))
        rows.append(CaseResult(f"sync-{transport}-burst",
                               f"sync: {supz['burst']} changed entries until the peer converges ({transport})",
                               _sync_burst(supz), _sync_burst(lsyncd), 1.0, "from the burst's last write",
                               "from the burst's last write"))
        rows.append(CaseResult(f"sync-{transport}-burst-first",
                               f"sync: the same burst, from its first write ({transport})",
                               _sync_burst_first(supz), _sync_burst_first(lsyncd), None,
                               "includes the registry transaction writing and fsyncing 1000 entries",
                               "lsyncd copies files while they are written"))
    return rows


# ---- the longest stall while programs start --------------------------------------------------


class Probe:
    """`bench/probe.py` in its own process: getState every 50 ms on one supervisord."""

    def __init__(self, host: BenchHost) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.probe", str(host.paths.socket)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # a few calls before the clock starts

    def stop(self) -> float:
        out, _ = self.proc.communicate("stop\n", timeout=60)
        return float(json.loads(out)["longest"])


def stall(fleet: Fleet, counts: list[int], repeat: int, log: Callable[[str], None]) -> list[CaseResult]:
    """The longest a getState waits (every 50 ms, from another process) while `count` programs start."""
    results = []
    for count in counts:
        names = program_names(count)
        log(f"setting up a supz HA root and a stock root with {count} programs each (stall)")
        ours, stock = _pair(fleet, f"stall{count}", names)
        runs: dict[str, list[float]] = {k: [] for k in ("supz", "stock", "act", "supz_stop", "stock_stop")}
        for attempt in range(1, repeat + 1):
            probe = Probe(ours)
            runs["act"].append(_timed(functools.partial(supz_activate, ours)))
            runs["supz"].append(probe.stop())
            _expect_running(ours, names)
            probe = Probe(ours)
            supz_deactivate(ours)
            runs["supz_stop"].append(probe.stop())
            probe = Probe(stock)
            stock_activate(stock, names)
            runs["stock"].append(probe.stop())
            probe = Probe(stock)
            stock_deactivate(stock, names)
            runs["stock_stop"].append(probe.stop())
            _clear_parked(stock)
            log(f"  run {attempt}/{repeat}: longest getState wait {runs['supz'][-1] * 1000:.0f} ms "
                f"(activation {runs['act'][-1]:.2f}s) vs {runs['stock'][-1] * 1000:.0f} ms; while stopping "
                f"{runs['supz_stop'][-1] * 1000:.0f} ms vs {runs['stock_stop'][-1] * 1000:.0f} ms")
        results.append(CaseResult(
            f"stall{count}", f"longest supervisord stall while {count} programs start (getState every 50 ms)",
            Summary.of(runs["supz"]), Summary.of(runs["stock"]), None,
            "supz.activate, another process calling getState every 50 ms",
            "reread; update (as activation), the same probe", limit=0.1))
        results.append(CaseResult(
            f"stall-stop{count}", f"longest supervisord stall while {count} programs stop (getState every 50 ms)",
            Summary.of(runs["supz_stop"]), Summary.of(runs["stock_stop"]), None,
            "supz.deactivate, the same probe", "stop all; reread; update (as deactivation), the same probe"))
        for host in (ours, stock):
            host.kill()
        fleet.destroy_all()
    return results
def failover_rows(count: int, runs: int, log: Callable[[str], None]) -> list[CaseResult]:
    """The failover at `count` programs (bench/failover_bench.py): nothing to compare with, so the
    time is shown for information and the stall against its limit."""
    from bench import failover_bench

    figures = failover_bench.failover(count, runs, log)
    how = "kill -9 of both keepalived processes of the MASTER of a pair in network namespaces"
    return [
        CaseResult(f"failover{count}", f"failover at {count}: kill -9 of the MASTER's keepalived to all RUNNING on "
                   "the new MASTER", Summary.of(figures["took"]), None, None, how, "—"),
        CaseResult(f"failover-stall{count}", f"failover at {count}: longest supervisord stall on the new MASTER "
                   "meanwhile (getState every 50 ms)", Summary.of(figures["stall"]), None, None, how, "—", limit=0.1),
    ]


def health_rows(fleet: Fleet, count: int, repeat: int, seconds: float, log: Callable[[str], None]) -> list[CaseResult]:
    """`supz health run` probing `count` applications every 5 s against the goal: the goal is the
    comparison column (5% of one core = 50 ms of CPU per second; 60 MB), ratio = goal / supz."""
    from bench import health_bench

    log(f"health: {count} applications probed every 5 s, {repeat} windows of {seconds:g} s")
    figures = health_bench.health(fleet, count, repeat, seconds, log)
    cpu_goal, rss_goal = health_bench.CPU_GOAL, health_bench.RSS_GOAL_MB
    return [
        CaseResult("health-cpu", f"health: {count} applications probed every 5 s, CPU per second",
                   figures["cpu"], Summary(cpu_goal, cpu_goal, cpu_goal, (cpu_goal,)), 1.0,
                   "supz health run (aiohttp, keep-alive) against one local server",
                   "the goal: 5% of one core"),
        CaseResult("health-rss", f"health: {count} applications probed every 5 s, resident memory",
                   figures["rss"], Summary(rss_goal, rss_goal, rss_goal, (rss_goal,)), 1.0,
                   "supz health run, peak RSS (VmHWM)", "the goal: 60 MB", unit="MB"),
    ]
