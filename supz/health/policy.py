"""What the health daemon concludes from probe results: pure, so tests need no clock or server.

A target (one process) is UNKNOWN until it answers, HEALTHY after a passing probe (after `rises`
in a row once it was UNHEALTHY), UNHEALTHY after `fails` failures in a row. An UNHEALTHY target
is restarted while its budget (`max_restarts` per `window`, counted per process) allows; then
its application is `exhausted` and the setting says what happens (leave, park, failover).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from supz.health.probes import ProbeResult
from supz.health.settings import Exhausted, HealthSettings

HEALTHY = "HEALTHY"
UNHEALTHY = "UNHEALTHY"
UNKNOWN = "UNKNOWN"


class Action(str, Enum):
    NONE = "none"
    RESTART = "restart"
    EXHAUSTED = "exhausted"


@dataclass
class TargetState:
    """Everything `supz health status` shows for one process."""

    status: str = UNKNOWN
    failures: int = 0          # consecutive
    successes: int = 0         # consecutive
    last_check: float | None = None
    last_code: int | None = None
    last_detail: str = ""
    last_elapsed: float | None = None
    restarts: list[float] = field(default_factory=list)   # wall times of restarts still in the window
    exhausted: bool = False
    note: str = ""             # why it is not probed now: parked, start period, stopping, restarting...

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "failures": self.failures, "successes": self.successes,
                "last_check": self.last_check, "last_code": self.last_code, "last_detail": self.last_detail,
                "last_elapsed": self.last_elapsed, "restarts": list(self.restarts),
                "exhausted": self.exhausted, "note": self.note}


def observe(state: TargetState, result: ProbeResult, settings: HealthSettings) -> None:
    """Count one probe result into `state`."""
    state.last_check = result.at
    state.last_code = result.code
    state.last_detail = result.detail
    state.last_elapsed = result.elapsed
    state.note = ""
    if result.ok:
        state.successes += 1
        state.failures = 0
        if state.status == UNKNOWN or (state.status == UNHEALTHY and state.successes >= settings.rises):
            state.status = HEALTHY
            state.exhausted = False
    else:
        state.failures += 1
        state.successes = 0
        if state.failures >= settings.fails:
            state.status = UNHEALTHY


def restarts_in_window(state: TargetState, settings: HealthSettings, now: float) -> int:
    state.restarts = [t for t in state.restarts if now - t < settings.window]
    return len(state.restarts)


def decide(state: TargetState, settings: HealthSettings, now: float) -> Action:
    """What to do about `state` now (the caller has checked the process may be touched)."""
    if state.status != UNHEALTHY or state.failures < settings.fails:
        return Action.NONE
    if restarts_in_window(state, settings, now) < settings.max_restarts:
        return Action.RESTART
    if state.exhausted:
        return Action.NONE
    return Action.EXHAUSTED


def restarted(state: TargetState, now: float) -> None:
    """A restart was done: count it, and judge the new process afresh after its start period."""
    state.restarts.append(now)
    state.status = UNKNOWN
    state.failures = 0
    state.successes = 0


def exhausted_reason(state: TargetState, settings: HealthSettings) -> str:
    return (f"{len(state.restarts)} restarts in {settings.window:g} s did not make it healthy "
            f"(last: {state.last_detail})")


def reason_line(state: TargetState, settings: HealthSettings) -> str:
    """`3 failures, HTTP 502 in 0.01 s`: why a restart happens, for the audit line."""
    elapsed = f" in {state.last_elapsed:.2f} s" if state.last_elapsed is not None else ""
    return f"{state.failures} failures, {state.last_detail}{elapsed}"


__all__ = ["Action", "Exhausted", "HEALTHY", "TargetState", "UNHEALTHY", "UNKNOWN", "decide", "observe",
           "restarted"]
