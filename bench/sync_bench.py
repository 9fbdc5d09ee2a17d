"""Benchmark of the registry syncer against lsyncd (delay = 0), over the same transports.

    python bench/sync_bench.py [--transports local,ssh] [--entries 200] [--singles 60]
                               [--burst 1000] [--idle-seconds 60] [--rss-entries 2000] [--json out.json]

For each transport (a local folder; rsync over ssh to an sshd this script starts on 127.0.0.1):
  single   one new file / registry entry at a time, from "written at the source" to "visible at
           the target": p50 and p99 (supz: the entry in the standby's registry; lsyncd: the file
           in its target folder). The source already holds --entries files / entries.
  burst    --burst new files at once (supz: one registry transaction adding them all; lsyncd: a
           loop writing them), until all are at the target: from the first write and from the
           last one (supz's transaction itself fsyncs every file, lsyncd's writer does not);
           the median of --bursts rounds.
Then, with --rss-entries entries: the CPU time the idle syncer uses over --idle-seconds, and its
peak RSS (VmHWM), for supz (`supz sync run`) and lsyncd.

Prints a table and writes the numbers as JSON. `main(argv)` returns 0; the overall bench harness
can call it. Needs rsync, lsyncd and (for ssh) sshd; run as root for the ssh transport (it logs in
as root with a throwaway key, on loopback only).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from supz.host.layout import InitOptions, init_host  # noqa: E402
from supz.paths import HostPaths  # noqa: E402
from supz.registry import EntryState, Registry, Who  # noqa: E402
from supz.role import write_role  # noqa: E402

SUPZ = Path(sys.executable).parent / "supz"
WHO = Who("bench", "bench", "bench-a")
POLL = 0.0005
# Changes made and not counted before measuring, for both tools alike (first-use costs).
WARMUP = 2


def program(name: str) -> str:
    return f"[program:{name}]\ncommand = /bin/sleep 100000\nstartsecs = 1\n"


def bulk_add(registry: Registry, names: list[str]) -> None:
    """One registry transaction adding every name (what deploying many applications at once is)."""
    with registry.locked():
        registry._commit("bench", WHO, stage={n: program(n) for n in names},  # noqa: SLF001
                         moves={n: EntryState.ACTIVE for n in names})


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> float:
    """Poll `check` every 0.5 ms; the time it first held (perf_counter), or raise."""
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        if check():
            return now
        if now > deadline:
            raise TimeoutError("the target did not converge")
        time.sleep(POLL)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- ssh on loopback ----------------------------------------------------------------------------


@dataclass
class Ssh:
    port: int
    key: Path
    control: Path

    def options(self) -> list[str]:
        return ["-p", str(self.port), "-i", str(self.key), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def loopback_sshd(work: Path) -> Iterator[Ssh]:
    """An sshd on 127.0.0.1 that lets root in with a throwaway key.

    It runs in a private mount namespace where root's ~/.bashrc is empty: bash reads it for every
    command run over ssh, and a developer machine's may cost 0.2 s (pyenv), for both tools alike.
    """
    work.mkdir(parents=True, exist_ok=True)
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True)
    (work / "authorized_keys").write_text((work / "client.pub").read_text())
    port = free_port()
    config = work / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {work / 'host'}", f"PidFile {work / 'sshd.pid'}",
        f"AuthorizedKeysFile {work / 'authorized_keys'}", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "UsePAM no", "StrictModes no", "MaxStartups 100", "MaxSessions 100",
        "LogLevel ERROR",
    ]) + "\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    argv = ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)]
    rc = Path(os.path.expanduser("~root")) / ".bashrc"
    if rc.exists() and shutil.which("unshare"):
        script = f"mount --bind /dev/null {shlex.quote(str(rc))} && exec {shlex.join(argv)}"
        argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(work / "sshd.log", "wb"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd did not start") from None
                time.sleep(0.05)
        yield Ssh(port, work / "client", work / "cm-%C")
    finally:
        stop(proc)


# -- the two syncers ----------------------------------------------------------------------------


@dataclass
class Side:
    """One syncer under test: how to make a change at the source and see it at the target."""

    tool: str
    transport: str
    proc: subprocess.Popen[bytes] | None = None
    write_one: Callable[[str], None] = field(default=lambda name: None)
    write_many: Callable[[list[str]], None] = field(default=lambda names: None)
    seen: Callable[[str], bool] = field(default=lambda name: False)


def set_sync_options(paths: HostPaths, **values: str) -> None:
    """Set keys of the [sync] section `supz init` wrote."""
    lines = paths.config_file.read_text(encoding="utf-8").splitlines()
    start = lines.index("[sync]")
    kept = [ln for ln in lines[start + 1:] if ln.split("=")[0].strip() not in values]
    section = [f"{key} = {value}" for key, value in values.items()]
    paths.config_file.write_text("\n".join(lines[:start + 1] + section + kept) + "\n", encoding="utf-8")


def start_supz(work: Path, transport: str, entries: int, ssh: Ssh | None) -> Side:
    a, b = HostPaths(work / "a"), HostPaths(work / "b")
    init_host(a, InitOptions(host="bench-a"))
    init_host(b, InitOptions(host="bench-b"))
    registry = Registry(a, host="bench-a")
    if entries:
        bulk_add(registry, [f"base{i:05d}" for i in range(entries)])
    write_role(a, "MASTER")
    if transport == "local":
        set_sync_options(a, peers=str(b.root))
    else:
        assert ssh is not None
        set_sync_options(a, peers=f"root@127.0.0.1:{b.root}", ssh_options=shlex.join(ssh.options()))
    log = open(work / "supz-sync.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(SUPZ), "--root", str(a.root), "sync", "run"], stdout=log, stderr=subprocess.STDOUT)
    target = b.registry / "active"
    wait_for(lambda: (target / f"base{entries - 1:05d}.conf").exists() if entries else True, timeout=120)

    def write_one(name: str) -> None:
        registry.add(name, program(name), who=WHO)

    return Side("supz", transport, proc, write_one, lambda names: bulk_add(registry, names),
                lambda name: os.path.exists(target / f"{name}.conf"))


def start_lsyncd(work: Path, transport: str, entries: int, ssh: Ssh | None) -> Side:
    source, target = work / "src", work / "dst"
    source.mkdir(parents=True)
    target.mkdir(parents=True)
    for i in range(entries):
        (source / f"base{i:05d}.conf").write_text(program(f"base{i:05d}"))
    rsync = "archive = true"
    if transport == "local":
        where = str(target)
    else:
        assert ssh is not None
        where = f"root@127.0.0.1:{target}"
        rsh = shlex.join(["/usr/bin/ssh", *ssh.options(), "-o", "ControlMaster=auto",
                          "-o", f"ControlPath={work / 'lcm-%C'}", "-o", "ControlPersist=60"])
        rsync += f", rsh = {json.dumps(rsh)}"
    config = work / "lsyncd.lua"
    config.write_text(
        f'settings {{ nodaemon = true, logfile = "{work / "lsyncd.log"}", insist = true }}\n'
        f'sync {{ default.rsync, source = "{source}", target = "{where}", delay = 0, rsync = {{ {rsync} }} }}\n'
    )
    proc = subprocess.Popen(["lsyncd", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (target / f"base{entries - 1:05d}.conf").exists() if entries else True, timeout=120)
    time.sleep(1.0)  # lsyncd's start-up rsync has finished when its first file shows; let it settle

    def write_one(name: str) -> None:
        with open(source / f"{name}.conf", "w", encoding="utf-8") as handle:
            handle.write(program(name))

    def write_many(names: list[str]) -> None:
        for name in names:
            write_one(name)

    return Side("lsyncd", transport, proc, write_one, write_many, lambda name: os.path.exists(target / f"{name}.conf"))


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Result:
    tool: str
    transport: str
    entries: int
    single_p50_ms: float = float("nan")
    single_p99_ms: float = float("nan")
    single_max_ms: float = float("nan")
    singles: int = 0
    burst: int = 0
    burst_from_first_write_s: float = float("nan")
    burst_from_last_write_s: float = float("nan")
    single_ms: list[float] = field(default_factory=list)
    bursts_s: list[float] = field(default_factory=list)  # each burst, from its last write


def measure(side: Side, entries: int, singles: int, burst: int, bursts: int) -> Result:
    result = Result(side.tool, side.transport, entries, singles=singles, burst=burst)
    latencies = []
    for i in range(WARMUP + singles):
        name = f"one{i:05d}"
        side.write_one(name)
        t0 = time.perf_counter()
        latency = (wait_for(functools.partial(side.seen, name)) - t0) * 1000
        if i >= WARMUP:
            latencies.append(latency)
        time.sleep(0.1)
    result.single_ms = [round(x, 2) for x in latencies]
    if latencies:
        result.single_p50_ms = round(statistics.median(latencies), 1)
        result.single_p99_ms = round(percentile(latencies, 99), 1)
        result.single_max_ms = round(max(latencies), 1)
    firsts, lasts = [], []
    for round_ in range(bursts if burst else 0):
        time.sleep(0.5)
        names = [f"burst{round_}x{i:05d}" for i in range(burst)]
        start = time.perf_counter()
        side.write_many(names)
        written = time.perf_counter()
        done = wait_for(lambda names=names: side.seen(names[-1]) and all(side.seen(n) for n in names), timeout=300)
        firsts.append(done - start)
        lasts.append(done - written)
    if firsts:
        result.burst_from_first_write_s = round(statistics.median(firsts), 3)
        result.burst_from_last_write_s = round(statistics.median(lasts), 3)
        result.bursts_s = [round(x, 3) for x in lasts]
    return result


@dataclass
class IdleResult:
    tool: str
    entries: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def measure_idle(side: Side, entries: int, seconds: float) -> IdleResult:
    assert side.proc is not None
    time.sleep(2.0)
    before = cpu_seconds(side.proc.pid)
    time.sleep(seconds)
    used = cpu_seconds(side.proc.pid) - before
    return IdleResult(side.tool, entries, seconds, round(used, 3), round(peak_rss_mb(side.proc.pid), 1))


@contextmanager
def running(start: Callable[..., Side], *args: object) -> Iterator[Side]:
    side = start(*args)
    try:
        yield side
    finally:
        if side.proc is not None:
            stop(side.proc)


def table(results: list[Result], idle: list[IdleResult]) -> str:
    lines = [
        f"{'tool':8} {'transport':9} {'entries':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'burst':>6} {'burst s (first)':>16} {'burst s (last)':>15}",
    ]
    for r in results:
        lines.append(
            f"{r.tool:8} {r.transport:9} {r.entries:7d} {r.single_p50_ms:8.1f} {r.single_p99_ms:8.1f} "
            f"{r.single_max_ms:8.1f} {r.burst:6d} {r.burst_from_first_write_s:16.3f} {r.burst_from_last_write_s:15.3f}"
        )
    if idle:
        lines.append("")
        lines.append(f"{'tool':8} {'entries':>7} {'idle s':>7} {'cpu s':>7} {'peak RSS MB':>12}")
        for i in idle:
            lines.append(f"{i.tool:8} {i.entries:7d} {i.seconds:7.0f} {i.cpu_seconds:7.3f} {i.peak_rss_mb:12.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transports", default="local,ssh")
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--singles", type=int, default=60)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--bursts", type=int, default=3, help="bursts to run (the median is reported)")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--rss-entries", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results" / "sync_bench.json")
    args = parser.parse_args(argv)
    transports = [t for t in args.transports.split(",") if t]
    results: list[Result] = []
    idle: list[IdleResult] = []
    base = Path(tempfile.mkdtemp(prefix="szb-", dir="/tmp"))
    try:
        ssh_ctx = loopback_sshd(base / "sshd") if "ssh" in transports else None
        ssh = ssh_ctx.__enter__() if ssh_ctx else None
        try:
            for transport in transports:
                for tool, start in (("lsyncd", start_lsyncd), ("supz", start_supz)):
                    work = base / f"{tool}-{transport}"
                    with running(start, work, transport, args.entries, ssh) as side:
                        results.append(measure(side, args.entries, args.singles, args.burst, args.bursts))
                    print(f"{tool} over {transport}: done", file=sys.stderr)
        finally:
            if ssh_ctx:
                ssh_ctx.__exit__(None, None, None)
        if args.idle_seconds > 0:
            for tool, start in (("lsyncd", start_lsyncd), ("supz", start_supz)):
                with running(start, base / f"{tool}-idle", "local", args.rss_entries, None) as side:
                    side.write_many([f"more{i:05d}" for i in range(100)])
                    idle.append(measure_idle(side, args.rss_entries, args.idle_seconds))
                print(f"{tool} idle: done", file=sys.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(table(results, idle))
    data = {"results": [asdict(r) for r in results], "idle": [asdict(i) for i in idle],
            "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1))
    print(f"wrote {args.json}", file=sys.stderr)
    return data


def _entry() -> int:
    main()
    return 0


if __name__ == "__main__":
    sys.exit(_entry())
