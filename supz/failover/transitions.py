"""keepalived state transitions, serialized and idempotent.

keepalived forks notify scripts without waiting, ordering or de-duplicating them. So `notify`
only records what keepalived announced, stamped with the moment keepalived forked it (the
process start time, then the pid), and every transition reconciles the host to the *latest*
announcement under one lock. Running one twice, or BACKUP and MASTER racing, ends in the
state keepalived announced last.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supz.alerts.spool import emit
from supz.audit import AuditLog, AuditRecord, current_who, now_iso
from supz.config import load_config, read_config
from supz.errors import StorageError, SupervisordDown, SupzError
from supz.failover.damping import after_transition, read_damping
from supz.failover.maintenance import read_maintenance
from supz.failover.settings import load_failover_settings
from supz.fsutil import atomic_write, file_lock
from supz.host.leftovers import find_leftovers, sweep
from supz.paths import HostPaths
from supz.role import HA_ROLE, ROLES, read_role, write_role
from supz.supervisord.client import SupervisorClient, context

# Waiting for the lock: a MASTER transition may start a thousand programs.
LOCK_TIMEOUT = 600.0


@dataclass(frozen=True)
class Announcement:
    state: str
    seq: tuple[int, int]  # (fork time in clock ticks, pid): keepalived's own order
    instance: str = ""


@dataclass(frozen=True)
class TransitionResult:
    to: str
    previous: str
    seconds: float
    result: str
    details: dict[str, Any]


def own_sequence() -> tuple[int, int]:
    """When keepalived forked this process: field 22 of /proc/self/stat, then the pid."""
    try:
        fields = open("/proc/self/stat", encoding="ascii").read().rsplit(")", 1)[1].split()
        return int(fields[19]), os.getpid()
    except (OSError, IndexError, ValueError):
        return time.monotonic_ns(), os.getpid()


def now_sequence() -> tuple[int, int]:
    """This moment in the order of `own_sequence` (clock ticks since boot, then the pid): for an
    announcement made by supz itself (the watchdog), later than any keepalived forked before."""
    try:
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        return int(uptime * os.sysconf("SC_CLK_TCK")) + 1, os.getpid()
    except (OSError, ValueError, IndexError):
        return time.monotonic_ns(), os.getpid()


def read_wanted(paths: HostPaths) -> Announcement | None:
    try:
        data = json.loads(paths.failover_wanted.read_text(encoding="utf-8"))
        return Announcement(str(data["state"]), (int(data["seq"][0]), int(data["seq"][1])), str(data.get("instance", "")))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def announce(paths: HostPaths, announcement: Announcement) -> bool:
    """Record an announcement unless a later one is already recorded; True if it is now the latest."""
    if announcement.state not in ROLES:
        raise SupzError(f"unknown keepalived state {announcement.state!r}", thing=announcement.state)
    with file_lock(paths.locks / "failover-wanted.lock", timeout=10, what="failover state"):
        current = read_wanted(paths)
        if current is not None and current.seq > announcement.seq:
            return False
        atomic_write(
            paths.failover_wanted,
            json.dumps({"state": announcement.state, "seq": list(announcement.seq), "instance": announcement.instance,
                        "time": now_iso()}),
        )
        return True


def read_log(paths: HostPaths, count: int | None = 20, tail: int | None = None) -> list[dict[str, Any]]:
    """The last `count` transitions (all when None or 0) of var/log/supz/failover.jsonl, oldest
    first; unreadable lines are skipped. With `tail`, only the log's last `tail` bytes are read
    (the log only grows: a caller that wants the latest lines need not read it whole)."""
    try:
        with open(paths.failover_log, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - tail) if tail else 0
            handle.seek(max(0, start - 1))  # from the byte before: a line cut there is dropped below
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot read {paths.failover_log}: {exc.strerror}", thing=str(paths.failover_log)) from exc
    if start and lines:
        lines = lines[1:]  # cut at `start` (or empty, when a line ended just before it)
    records = []
    for line in lines:
        try:
            records.append(dict(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return records[-count:] if count else records


def _log(paths: HostPaths, result: TransitionResult, host: str) -> None:
    """One line in the transition log and one audit line (the extension writes none of its own)."""
    counts = {key: result.details[key] for key in ("started", "stopped", "swept") if key in result.details}
    line = json.dumps({"time": now_iso(), "epoch": round(time.time(), 3), "from": result.previous, "to": result.to,
                       "seconds": round(result.seconds, 3), "result": result.result, **result.details}, sort_keys=True)
    try:
        with open(paths.failover_log, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        detail = f"{result.seconds:.3f}s from {result.previous}" + "".join(f", {k} {v}" for k, v in counts.items())
        AuditLog(paths.audit_log).append(
            AuditRecord("failover", [result.to], result.result, current_who(host), detail=detail)
        )
    except (OSError, SupzError):
        pass
    if result.previous != result.to:
        emit(paths, host, "failover", **{"from": result.previous, "to": result.to,
                                         "seconds": round(result.seconds, 3), "started": counts.get("started", 0),
                                         "stopped": counts.get("stopped", 0), "result": result.result,
                                         "failed": result.result != "ok"})


def _summary(answer: dict[str, Any]) -> tuple[int, list[str]]:
    results = answer.get("results", [])
    failed = [f"{r['name']}: {r['message'] or r['status']}" for r in results if not r["ok"]]
    return len(results), failed


PullHook = Callable[[HostPaths], str]


def _quiet(state: str) -> dict[str, Any]:
    """The client context of a transition: the transition's own log line is its audit line."""
    return dict(context("failover", [state]), audit=False)


def _supervisord_dead(paths: HostPaths) -> bool:
    """No live process of this root's mark has the pid supervisord recorded (a reused pid is not it)."""
    try:
        pid = int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return True
    return pid not in find_leftovers(paths)


def apply(paths: HostPaths, state: str, host: str, pull_first: PullHook | None = None) -> TransitionResult:
    """Bring this host to `state` now (caller holds the failover lock)."""
    started = time.monotonic()
    previous = read_role(paths)
    details: dict[str, Any] = {}
    result = "ok"
    if state == HA_ROLE:
        if pull_first is not None:
            try:
                details["pull"] = pull_first(paths)
            except SupzError as exc:
                details["pull"] = f"failed: {exc}"
        write_role(paths, state)
        try:
            with SupervisorClient.for_host(paths) as client:
                count, failed = _summary(client.supz("activate", _quiet(state), True))
            details["started"] = count
            if failed:
                result = f"failed: {'; '.join(failed[:5])}"
        except SupzError as exc:
            result = f"failed: {exc}"
    else:
        # The role first: should supervisord restart half-way, it loads no HA application.
        write_role(paths, state)
        try:
            with SupervisorClient.for_host(paths) as client:
                count, failed = _summary(client.supz("deactivate", _quiet(state)))
            details["stopped"] = count
            if failed:
                result = f"failed: {'; '.join(failed[:5])}"
        except SupervisordDown as exc:
            # A dead supervisord's programs keep running, reparented: end them here, or they
            # would run beside the copies the new MASTER starts.
            if _supervisord_dead(paths):
                swept = sweep(paths)
                details["swept"] = swept.count
                result = f"supervisord down; {swept.describe()}"
            else:
                result = f"failed: {exc}"
        except SupzError as exc:
            result = f"failed: {exc}"
    outcome = TransitionResult(state, previous, time.monotonic() - started, result, details)
    _log(paths, outcome, host)
    try:
        file = read_config(paths.config_file)
        if load_config(file).manager == "pacemaker":
            return outcome  # Pacemaker damps itself (migration-threshold, failure-timeout)
        settings = load_failover_settings(file)
        was_frozen = read_damping(paths).frozen
        damping = after_transition(paths, previous, state, settings.hold_down, settings.flap_count,
                                   settings.flap_window)
        if damping.frozen and not was_frozen:
            emit(paths, host, "flapping", reason=damping.frozen_reason)
    except SupzError:
        pass
    return outcome


def reconcile(paths: HostPaths, host: str, pull_first: PullHook | None = None) -> list[TransitionResult]:
    """Under the failover lock, apply the latest announcement until no newer one arrived meanwhile
    (none while an operator froze the host: `supz.failover.maintenance`)."""
    done: list[TransitionResult] = []
    applied_file = paths.state / "failover-applied.json"
    with file_lock(paths.failover_lock, timeout=LOCK_TIMEOUT, what="failover"):
        while True:
            if read_maintenance(paths) is not None:
                return done  # an operator's freeze: recorded, applied by `supz failover unfreeze`
            wanted = read_wanted(paths)
            try:
                applied = tuple(json.loads(applied_file.read_text(encoding="utf-8"))["seq"])
            except (OSError, ValueError, KeyError, TypeError):
                applied = None
            if wanted is None or wanted.seq == applied:
                return done
            done.append(apply(paths, wanted.state, host, pull_first))
            atomic_write(applied_file, json.dumps({"seq": list(wanted.seq), "state": wanted.state}))
