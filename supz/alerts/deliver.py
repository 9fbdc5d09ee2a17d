"""Delivering spooled alert events to the [alerts] targets: in order, at least once.

A target takes events one at a time, in SEQ order; the first failure stops that target until
the next round (the others go on), with a pause that doubles up to `retry_max`. `supz alerts
deliver` runs the rounds forever as the host-local program `supz-alerts`.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from supz.alerts.settings import AlertSettings, Target
from supz.alerts.spool import collect, cursor, read_event, set_cursor, spooled
from supz.paths import HostPaths

POLL = 0.5


@dataclass
class Round:
    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # target -> why it stopped


def send(target: Target, event: dict[str, Any], timeout: float) -> str | None:
    """Deliver one event; None when the target took it, else why not."""
    body = json.dumps(event, sort_keys=True)
    if target.kind == "webhook":
        try:
            answer = httpx.post(target.url, content=body, timeout=timeout,
                                headers={"Content-Type": "application/json", "X-Supz-Event": str(event.get("id"))})
        except httpx.HTTPError as exc:
            return f"{target.url}: {exc.__class__.__name__}: {exc}"
        return None if answer.is_success else f"{target.url}: HTTP {answer.status_code}"
    try:
        done = subprocess.run(list(target.argv), input=body, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{target.argv[0]}: {exc}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"{target.argv[0]} exited {done.returncode}" + (f": {lines[-1]}" if lines else "")
    return None


def deliver_once(paths: HostPaths, settings: AlertSettings, skip: set[str] | None = None) -> Round:
    """One round: every target (but those in `skip`) takes what it has not taken yet, in order."""
    result = Round()
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
    return result


def run(paths: HostPaths, settings: AlertSettings, log: Callable[[str], None] | None = None,
        rounds: int | None = None, between: Callable[[], object] | None = None) -> None:
    """Deliver forever (or `rounds` times): a target that is down is retried with a growing pause;
    `between` (the peer watch) runs before each round."""
    pause: dict[str, float] = {}
    due: dict[str, float] = {}
    done = 0
    while rounds is None or done < rounds:
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
