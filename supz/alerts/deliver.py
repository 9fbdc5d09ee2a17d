"""Delivering spooled alert events to the [alerts] targets: in order, at least once.

A target takes events one at a time, in SEQ order; the first failure stops that target until
the next round (the others go on), with a pause that doubles up to `retry_max`. One round at a
time per host (a lock), so `supz alerts test` beside the deliverer never sends an event twice or
out of order. `supz alerts deliver` runs the rounds forever as the host-local program
`supz-alerts` (`serve`), following the config file: without targets (or with a config it cannot
read) it only waits for the file to change, and it picks up a changed [alerts] by itself.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supz.alerts.settings import AlertSettings, Target, load_alert_settings
from supz.alerts.spool import collect, cursor, read_event, set_cursor, spooled
from supz.config import load_config, read_config
from supz.errors import SupzError
from supz.fsutil import file_lock
from supz.health.probes import failure_reason
from supz.paths import HostPaths

POLL = 0.5
CONFIG_POLL = 2.0  # how often an idle deliverer looks whether the config file changed
ROUND_LOCK_TIMEOUT = 120.0  # another round holds the spool: a target slow to answer, at worst


@dataclass
class Round:
    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # target -> why it stopped


def send(target: Target, event: dict[str, Any], timeout: float) -> str | None:
    """Deliver one event; None when the target took it, else why not."""
    body = json.dumps(event, sort_keys=True)
    if target.kind == "webhook":
        try:
            code = asyncio.run(_post(target.url, body, str(event.get("id")), timeout))
        except asyncio.TimeoutError:
            return f"{target.url}: timed out after {timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure of the exchange: the target did not take it
            return f"{target.url}: {exc.__class__.__name__}: {failure_reason(exc)}"
        return None if 200 <= code < 300 else f"{target.url}: HTTP {code}"
    try:
        done = subprocess.run(list(target.argv), input=body, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{target.argv[0]}: {exc}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"{target.argv[0]} exited {done.returncode}" + (f": {lines[-1]}" if lines else "")
    return None


async def _post(url: str, body: str, event_id: str, timeout: float) -> int:
    """One JSON POST with aiohttp, the HTTP client the health probes use; its status code."""
    import aiohttp

    async with aiohttp.ClientSession(headers={"User-Agent": "supz-alerts"}) as session:
        async with session.post(url, data=body.encode("utf-8"), allow_redirects=False,
                                headers={"Content-Type": "application/json", "X-Supz-Event": event_id},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
            return int(answer.status)


def deliver_once(paths: HostPaths, settings: AlertSettings, skip: set[str] | None = None) -> Round:
    """One round: every target (but those in `skip`) takes what it has not taken yet, in order."""
    result = Round()
    with file_lock(paths.locks / "alerts-deliver.lock", timeout=ROUND_LOCK_TIMEOUT, what="alert delivery"):
        _round(paths, settings, skip, result)
    return result


def _round(paths: HostPaths, settings: AlertSettings, skip: set[str] | None, result: Round) -> None:
    waiting = spooled(paths)
    for target in settings.targets:
        if skip and target.name in skip:
            continue
        taken = cursor(paths, target.name)
        for seq in waiting:
            if seq <= taken:
                continue
            event = read_event(paths, seq)
            if event is None:  # dropped meanwhile: nothing to send
                continue
            why = send(target, event, settings.timeout)
            if why is not None:
                result.failed[target.name] = why
                break
            set_cursor(paths, target.name, seq)
            result.sent[target.name] = result.sent.get(target.name, 0) + 1
    collect(paths, settings)


def run(paths: HostPaths, settings: AlertSettings, log: Callable[[str], None] | None = None,
        rounds: int | None = None, between: Callable[[], object] | None = None,
        until: Callable[[], bool] | None = None) -> None:
    """Deliver forever (or `rounds` times, or until `until()` says so): a target that is down is
    retried with a growing pause; `between` (the peer watch) runs before each round."""
    pause: dict[str, float] = {}
    due: dict[str, float] = {}
    done = 0
    while (rounds is None or done < rounds) and not (until is not None and until()):
        if between is not None:
            between()
        now = time.monotonic()
        result = deliver_once(paths, settings, skip={n for n, t in due.items() if t > now})
        for name, why in result.failed.items():
            pause[name] = min(settings.retry_max, max(POLL, pause.get(name, POLL) * 2))
            due[name] = now + pause[name]
            if log is not None:
                log(f"alerts: {name}: {why}; again in {pause[name]:.1f}s")
        for name in result.sent:
            pause.pop(name, None)
            due.pop(name, None)
        done += 1
        time.sleep(POLL)


def config_signature(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed config file: inode, size, mtime (None while it does not exist)."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


def _changed(path: Path, seen: tuple[int, int, int] | None, stop: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: stop() or config_signature(path) != seen


def serve(paths: HostPaths, log: Callable[[str], None], between: Callable[[str, AlertSettings], Callable[[], object]],
          stop: Callable[[], bool] = lambda: False) -> None:
    """The host-local program supz-alerts: deliver with the config file's [alerts], again each
    time the file changes. No targets, or a config that does not load: say so once and wait for
    a change, looking every CONFIG_POLL seconds (no error, no restart loop, no busy loop).
    `between(host, settings)` makes the hook run before each round (the peer watch)."""
    while not stop():
        seen = config_signature(paths.config_file)
        try:
            file = read_config(paths.config_file)
            host = load_config(file).host
            settings = load_alert_settings(file)
        except SupzError as exc:
            log(f"alerts: {exc}; nothing delivered until {paths.config_file} changes")
            settings = None
        if settings is not None and not settings.targets:
            log(f"alerts: no targets in [alerts] of {paths.config_file}: nothing to deliver")
        if settings is None or not settings.targets:
            while not stop() and config_signature(paths.config_file) == seen:
                time.sleep(CONFIG_POLL)
            continue
        log(f"alerts: delivering to {', '.join(t.name for t in settings.targets)}")
        run(paths, settings, log=log, between=between(host, settings), until=_changed(paths.config_file, seen, stop))
