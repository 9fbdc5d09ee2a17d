"""The health daemon at scale: `count` registry applications (sleep programs), each with a health
URL on one local keep-alive HTTP server, probed every 5 s by `supz health run`; its CPU time per
second of wall time and its resident memory, against the goal (5% of one core, 60 MB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from bench.hosts import BenchError, Fleet
from bench.timing import Summary
from supz.audit import current_who
from supz.registry import Registry

CPU_GOAL = 0.05      # seconds of CPU per second: 5% of one core
RSS_GOAL_MB = 60.0

SERVER = r"""
import asyncio, sys
async def handle(r, w):
    try:
        while True:
            line = await r.readline()
            if not line:
                break
            while (await r.readline()) not in (b"\r\n", b""):
                pass
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            await w.drain()
    except Exception:
        pass
    w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(s.sockets[0].getsockname()[1], flush=True)
    async with s:
        await s.serve_forever()
asyncio.run(main())
"""


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int, key: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def health(fleet: Fleet, count: int, repeat: int, seconds: float, log: Callable[[str], None]) -> dict[str, Summary]:
    """CPU per second and RSS (MB) of the health daemon over `repeat` windows of `seconds`."""
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    daemon = None
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        host = fleet.supz_host("health")
        registry = Registry(host.paths, host=host.root.name)
        who = current_who(host.root.name)
        for i in range(count):
            name = f"h{i:05d}"
            registry.add(name, f"[program:{name}]\ncommand = /bin/sleep 100000\nstartsecs = 0\n"
                               f"supz_health_url = http://127.0.0.1:{port}/{name}\nsupz_health_interval = 5\n"
                               f"supz_health_start_period = 0\n", who=who)
        host.start()
        host.wait_loaded(count)
        log(f"  {count} programs RUNNING; starting supz health run")
        daemon = subprocess.Popen([str(Path(sys.executable).parent / "supz"), "--root", str(host.root),
                                   "health", "run"], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                state = json.loads(host.paths.health_state.read_text())
                healthy = sum(1 for t in state.get("targets", {}).values() if t.get("status") == "HEALTHY")
            except (OSError, ValueError):
                healthy = 0
            if healthy == count:
                break
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise BenchError(f"health: {healthy} of {count} applications HEALTHY after 120 s")
            time.sleep(0.5)
        cpu: list[float] = []
        rss: list[float] = []
        for attempt in range(1, repeat + 1):
            start_cpu, start = _cpu_seconds(daemon.pid), time.monotonic()
            peak = 0.0
            while time.monotonic() - start < seconds:
                time.sleep(0.5)
                peak = max(peak, _rss_mb(daemon.pid))
            # At a tiny scale a window can cost less than a clock tick: never report exactly 0.
            cpu.append(max((_cpu_seconds(daemon.pid) - start_cpu) / (time.monotonic() - start), 1e-6))
            rss.append(max(peak, _rss_mb(daemon.pid, "VmHWM")))
            log(f"  run {attempt}/{repeat}: {cpu[-1] * 100:.2f}% of one core, {rss[-1]:.1f} MB resident (peak)")
        host.kill()
        return {"cpu": Summary.of(cpu), "rss": Summary.of(rss)}
    finally:
        for process in (daemon, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
