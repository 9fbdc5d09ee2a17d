"""Deploy and rollback: switch `current`, restart one process at a time, check health, and
switch back by itself when the new release is not healthy.

One process at a time: the next one is stopped only once the last one runs the new release
and passes the health check, so a multi-instance application always has an instance serving,
and a broken release takes down one instance at most (until the rollback restarts it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.xmlrpc import Faults

from supz.apps.control import RUNNING, ActionReport, AppEnv, app_context, check_policy, ensure_owner, entry_info
from supz.apps.conventions import AppLayout
from supz.apps.health import HealthCheck, command_argv, validate_url, wait_healthy
from supz.apps.releases import Links, read_links, require_release, restore, switch
from supz.errors import ExitCode, SupervisorFault, SupzError, UnknownEntry
from supz.fsutil import file_lock
from supz.supervisord.client import SupervisorClient

# A process in one of these states runs (or is trying to): deploy restarts it on the new release.
ACTIVE_STATES = ("RUNNING", "STARTING", "BACKOFF")
LOCK_TIMEOUT = 1.0
STDERR_TAIL = 400

Listener = Callable[[str], None]


@dataclass
class _Pass:
    """One rolling pass over the processes: which ones it touched and why it stopped, if it did."""

    touched: list[str]
    problem: str | None = None


class _Streamed(ActionReport):
    """An ActionReport that also hands each line to a listener as it happens (deploys are slow)."""

    def __init__(self, listener: Listener | None) -> None:
        super().__init__()
        self.listener = listener

    def say(self, line: str) -> None:
        super().say(line)
        if self.listener is not None:
            self.listener(line)

    def fail(self, line: str, code: int = ExitCode.ERROR) -> None:
        super().fail(line, code)
        if self.listener is not None:
            self.listener(line)


def group_processes(client: SupervisorClient, name: str) -> dict[str, str]:
    """namespec -> state of every loaded process of `name`, in process order."""
    infos = [i for i in client.supervisor("getAllProcessInfo") if i["group"] == name]
    return {f"{i['group']}:{i['name']}": i["statename"] for i in sorted(infos, key=lambda i: i["name"])}


def _last_stderr_line(client: SupervisorClient, namespec: str) -> str:
    try:
        text, _offset, _overflow = client.supervisor("tailProcessStderrLog", namespec, 0, STDERR_TAIL)
    except SupervisorFault:
        return ""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _stop(client: SupervisorClient, namespec: str) -> str | None:
    try:
        client.supervisor("stopProcess", namespec, True)
    except SupervisorFault as exc:
        if exc.fault_code != Faults.NOT_RUNNING:
            return f"{namespec} did not stop: {exc}"
    return None


def _restart_one(client: SupervisorClient, namespec: str, health: HealthCheck, cwd: str) -> str | None:
    """Stop, start, wait RUNNING past startsecs, check health: None when all went well."""
    try:
        return _restart_checked(client, namespec, health, cwd)
    except SupzError as exc:
        return f"{namespec}: {exc}"


def _restart_checked(client: SupervisorClient, namespec: str, health: HealthCheck, cwd: str) -> str | None:
    problem = _stop(client, namespec)
    if problem:
        return problem
    try:
        client.supervisor("startProcess", namespec, True)
    except SupervisorFault as exc:
        why = str(exc).split(":", 1)[0].strip()
        last = _last_stderr_line(client, namespec)
        return f"{namespec} did not start ({why})" + (f"; its last error line: {last}" if last else "")
    state = client.supervisor("getProcessInfo", namespec)["statename"]
    if state != RUNNING:
        return f"{namespec} is {state} after starting"
    problem = wait_healthy(health, Path(cwd))
    if problem:
        return f"{namespec}: {problem}"
    return None


def _rolling(client: SupervisorClient, namespecs: list[str], health: HealthCheck, cwd: str,
             report: ActionReport, release: str) -> _Pass:
    step = _Pass(touched=[])
    for namespec in namespecs:
        step.touched.append(namespec)
        step.problem = _restart_one(client, namespec, health, cwd)
        if step.problem:
            return step
        checked = f", {health.describe()} ok" if health.configured else ""
        report.say(f"{namespec}: RUNNING on release {release}{checked}")
    # RUNNING past startsecs for every one, not only the last restarted.
    try:
        states = group_processes(client, namespecs[0].split(":", 1)[0]) if namespecs else {}
    except SupzError as exc:
        step.problem = f"cannot check the processes: {exc}"
        return step
    for namespec in namespecs:
        if states.get(namespec) != RUNNING:
            step.problem = f"{namespec} is {states.get(namespec, 'gone')} after the restart"
            return step
    return step


def deploy(env: AppEnv, layout: AppLayout, version: str, health: HealthCheck, *, yes: bool = False,
           listener: Listener | None = None, action: str = "deploy") -> ActionReport:
    """Switch to releases/VERSION and restart on it; back to the release before on failure.

    A version that does not exist changes nothing. An application that is not running is only
    switched: its next start runs the new release.
    """
    name = layout.checked().name
    check_policy(env.config, action, name, yes)
    require_release(layout, version)
    if health.url:
        validate_url(health.url)
    if health.command:
        command_argv(health.command)
    report = _Streamed(listener)
    with file_lock(layout.lock, timeout=LOCK_TIMEOUT, what=f"application {name}"), env.client() as client:
        info = entry_info(client, name)
        ensure_owner(layout, info)
        before = read_links(layout)
        if before.current == version:
            report.say(f"{name}: release {version} is already current; nothing changed")
            return report
        processes = group_processes(client, name)
        try:
            switch(layout, version)
        except SupzError:
            restore(layout, before)  # current may have moved before previous failed to
            raise
        report.say(f"{name}: current -> releases/{version} (was {before.current or 'none'})")
        running = [spec for spec, state in processes.items() if state in ACTIVE_STATES]
        if not running:
            why = {"parked": "parked", "": "not registered"}.get(info.state, "no process running")
            report.say(f"{name}: {why}: nothing restarted; './sup_run.sh start' runs release {version}")
            _audit(client, action, layout, version, f"ok: switched from {before.current} ({why})")
            return report
        forward = _rolling(client, running, health, str(layout.current), report, version)
        if forward.problem is None:
            report.say(f"{name}: {action} of release {version} done")
            _audit(client, action, layout, version, f"ok: {before.current} -> {version}")
            return report
        report.fail(f"{name}: {forward.problem}")
        outcome = _roll_back(client, layout, version, before, forward.touched, health, report)
        _audit(client, action, layout, version, f"failed: {forward.problem}; {outcome}"[:2000])
    return report


def _roll_back(client: SupervisorClient, layout: AppLayout, version: str, before: Links, touched: list[str],
               health: HealthCheck, report: ActionReport) -> str:
    """Switch back to the release that ran before and restart what the failed pass touched;
    return the outcome, also reported as the last line."""
    restore(layout, before)
    if before.current is None:
        outcome = f"release {version} failed and there is no release before it to go back to; current is removed"
    else:
        report.say(f"{layout.name}: current -> releases/{before.current} again (automatic rollback)")
        back = _rolling(client, touched, health, str(layout.current), report, before.current)
        if back.problem is None:
            outcome = f"release {version} failed; rolled back to {before.current}, which is running"
        else:
            outcome = f"release {version} failed, and the rollback to {before.current} failed too: {back.problem}"
    report.fail(f"{layout.name}: {outcome}")
    return outcome


def _audit(client: SupervisorClient, action: str, layout: AppLayout, version: str, result: str) -> None:
    client.supz("audit", app_context(action, layout, version), result)


def rollback(env: AppEnv, layout: AppLayout, health: HealthCheck, *, yes: bool = False,
             listener: Listener | None = None) -> ActionReport:
    """Go back to the previous release on purpose: a deploy of it (checked and undone alike)."""
    links = read_links(layout.checked())
    if links.previous is None:
        raise UnknownEntry(f"{layout.name}: no previous release to roll back to ({layout.previous} is missing)",
                           thing=layout.name)
    if not os.path.isdir(layout.release(links.previous)):
        raise UnknownEntry(f"{layout.name}: the previous release {links.previous} is gone from {layout.releases}",
                           thing=layout.name)
    return deploy(env, layout, links.previous, health, yes=yes, listener=listener, action="rollback")
