"""sup_run.sh's everyday actions for one application: start, stop, restart, update, status.

Each goes through the supz extension (audited there, or here in one line when this side
writes the registry itself) and asks supzcli's policy first. Writing new program content
into the registry needs write access to it (root); starting or stopping an entry whose
content is already registered needs only the socket.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from supervisor.xmlrpc import Faults

from supz.apps.conventions import AppLayout, read_program
from supz.audit import AuditLog, AuditRecord, current_who
from supz.config import SupzConfig
from supz.errors import (
    ExitCode,
    InvalidProgramFile,
    PolicyRefused,
    SupervisordDown,
    SupervisorFault,
    UnknownEntry,
)
from supz.paths import HostPaths
from supz.programfile import ProgramSpec
from supz.registry import Change, Registry, Who
from supz.policy import Verdict, decide, refusal_message
from supz.supervisord.client import SupervisorClient, context

RUNNING = "RUNNING"
# LSB status codes (as supervisorctl status): 3 not running, 4 unknown.
STATUS_NOT_RUNNING = 3
STATUS_UNKNOWN = 4


@dataclass(frozen=True)
class AppEnv:
    """The host an application runs on: its paths and supz config."""

    paths: HostPaths
    config: SupzConfig

    def registry(self) -> Registry:
        return Registry(self.paths, host=self.config.host)

    def who(self) -> Who:
        return current_who(self.config.host)

    def client(self) -> SupervisorClient:
        return SupervisorClient.for_host(self.paths)


@dataclass
class ActionReport:
    """What an action did, line by line, and the exit status it ends with (the worst seen)."""

    lines: list[str] = field(default_factory=list)
    exit_code: int = ExitCode.OK

    def say(self, line: str) -> None:
        self.lines.append(line)

    def fail(self, line: str, code: int = ExitCode.ERROR) -> None:
        self.lines.append(line)
        self.exit_code = max(self.exit_code, int(code))


@dataclass(frozen=True)
class EntryInfo:
    """What the extension says about the registry entry of an application."""

    name: str
    state: str  # "active", "parked", or "" when the registry does not know it
    sha256: str
    directory: str


def check_policy(config: SupzConfig, action: str, name: str, yes: bool) -> None:
    """supzcli's policy applies to sup_run.sh too: `refuse = deploy` freezes deploys."""
    decision = decide(config.policy, action, [name])
    if decision.verdict is Verdict.REFUSE:
        raise PolicyRefused(refusal_message(action, "the supz config"))
    if decision.verdict is Verdict.CONFIRM and not yes:
        raise PolicyRefused(f"refused: '{decision.rule}' needs a confirmation: add --yes")


def app_context(action: str, layout: AppLayout, *extra: str, audit: bool = True) -> dict[str, Any]:
    ctx = context(f"app {action}", [str(layout.path), *extra])
    if not audit:
        ctx["audit"] = False
    return ctx


def entry_info(client: SupervisorClient, name: str) -> EntryInfo:
    data = client.supz("getEntries", [name])[name]
    return EntryInfo(name, data["state"], data["sha256"], data["directory"])


def ensure_owner(layout: AppLayout, info: EntryInfo) -> None:
    """Refuse to touch a registry entry made from another directory of the same name."""
    if not info.state:
        return
    if not info.directory:
        raise PolicyRefused(f"{info.name}: the registry entry of this name was not made from {layout.path} "
                            "(it has no directory): rename the directory or remove that entry")
    if os.path.normpath(info.directory) != str(layout.current):
        raise PolicyRefused(f"{info.name}: the registry entry of this name runs from {info.directory}, "
                            f"not from {layout.current}: another application directory has this name")


def registered_entry(client: SupervisorClient, layout: AppLayout) -> EntryInfo:
    """The registry entry of this directory's application; UnknownEntry when there is none."""
    info = entry_info(client, layout.name)
    if not info.state:
        raise UnknownEntry(f"{layout.name}: not in the registry ('./sup_run.sh start' registers it)",
                           thing=layout.name)
    ensure_owner(layout, info)
    return info


def require_registry_write(paths: HostPaths, name: str) -> None:
    """One clear line instead of a permission error halfway through a registry transaction."""
    needed = [paths.registry, paths.active, paths.parked, paths.locks]
    if not all(os.access(folder, os.W_OK) for folder in needed):
        raise PolicyRefused(f"{name}: program.ini is not the registered entry; registering it needs write access "
                            f"to the registry {paths.registry} (run as root)", thing=name)


def _results(report: ActionReport, answer: dict[str, Any], done: dict[str, str]) -> None:
    for item in answer["results"]:
        if item["ok"]:
            text = done.get(item["status"], item["status"])
            report.say(f"{item['name']}: {text}" + (f" ({item['message']})" if item["message"] else ""))
        else:
            report.fail(f"{item['name']}: ERROR ({item['status']}: {item['message']})")


def _audit_own(env: AppEnv, action: str, layout: AppLayout, change: Change, report: ActionReport) -> None:
    """The audit line for a command that wrote the registry from this side."""
    failures = [line for line in report.lines if "ERROR" in line]
    result = "ok" if not failures else "failed: " + "; ".join(failures)[:2000]
    AuditLog(env.paths.audit_log).append(
        AuditRecord(f"app {action}", [str(layout.path)], result, env.who(), change.generation_before,
                    change.generation_after)
    )


def _startable(layout: AppLayout) -> ProgramSpec:
    spec = read_program(layout)
    if not spec.autostart:
        raise InvalidProgramFile(f"{layout.program_ini}: autostart=false: an active entry must run; "
                                 "'./sup_run.sh stop' is how an application stays stopped", thing=layout.name)
    if not os.path.lexists(layout.current):
        raise UnknownEntry(f"{layout.name}: no release deployed ({layout.current} is missing): "
                           "put one in releases/VERSION and run './sup_run.sh deploy VERSION'", thing=layout.name)
    return spec


STARTED = {"unparked": "unparked and started", "started": "started", "already running": "already running",
           "added": "registered and started", "updated": "updated and restarted"}


def start(env: AppEnv, layout: AppLayout, *, yes: bool = False) -> ActionReport:
    """Make program.ini the active entry (replacing a parked one) and start every process."""
    name = layout.checked().name
    check_policy(env.config, "start", name, yes)
    spec = _startable(layout)
    report = ActionReport()
    with env.client() as client:
        info = entry_info(client, name)
        ensure_owner(layout, info)
        if info.state and info.sha256 == spec.sha256:
            _results(report, client.supz("unpark", [name], app_context("start", layout)), STARTED)
            return report
        require_registry_write(env.paths, name)
        change = env.registry().add(name, spec.text, who=env.who(), replace=True, op="app start")
        report.say(f"{name}: program.ini registered as the active entry (generation {change.generation_after})")
        updated = client.supz("update", [name], app_context("start", layout, audit=False))
        _results(report, updated, STARTED)
        if report.exit_code == ExitCode.OK:
            started = client.supz("unpark", [name], app_context("start", layout, audit=False))
            if any(item["status"] != "already running" for item in started["results"]):
                _results(report, started, STARTED)
        _audit_own(env, "start", layout, change, report)
    return report


def stop(env: AppEnv, layout: AppLayout, *, yes: bool = False) -> ActionReport:
    """Stop every process and park the entry: it stays stopped across restarts and failovers."""
    name = layout.checked().name
    check_policy(env.config, "stop", name, yes)
    report = ActionReport()
    with env.client() as client:
        registered_entry(client, layout)  # refuses an entry of the same name from another directory
        _results(report, client.supz("park", [name], app_context("stop", layout)), {"parked": "stopped and parked"})
    return report


def restart(env: AppEnv, layout: AppLayout, *, yes: bool = False) -> ActionReport:
    """Stop then start every process; the registry is unchanged."""
    name = layout.checked().name
    check_policy(env.config, "restart", name, yes)
    report = ActionReport()
    with env.client() as client:
        info = registered_entry(client, layout)
        if info.state == "parked":
            raise PolicyRefused(f"{name}: parked (stopped on purpose): './sup_run.sh start' brings it back",
                                thing=name)
        try:
            for result in client.supervisor("stopProcessGroup", name, True):
                if result["status"] != Faults.SUCCESS:
                    report.fail(f"{result['group']}:{result['name']}: ERROR ({result['description']})")
            for result in client.supervisor("startProcessGroup", name, True):
                spec = f"{result['group']}:{result['name']}"
                if result["status"] == Faults.SUCCESS:
                    report.say(f"{spec}: restarted")
                else:
                    report.fail(f"{spec}: ERROR ({result['description']})", ExitCode.DOWN)
        except SupervisorFault as exc:
            report.fail(f"{name}: ERROR (not loaded on this host: {exc})")
        result = "ok" if report.exit_code == ExitCode.OK else "; ".join(report.lines)[:2000]
        client.supz("audit", app_context("restart", layout), result)
    return report


def update(env: AppEnv, layout: AppLayout, *, yes: bool = False) -> ActionReport:
    """Apply an edited program.ini to this application only. A malformed file is refused before
    anything is touched, so the running version keeps running."""
    name = layout.checked().name
    check_policy(env.config, "update", name, yes)
    spec = read_program(layout)
    report = ActionReport()
    with env.client() as client:
        info = registered_entry(client, layout)
        done = {"unchanged": "unchanged", "updated": "updated and restarted", "added": "added and started",
                "removed": "removed"}
        if info.sha256 == spec.sha256:
            _results(report, client.supz("update", [name], app_context("update", layout)), done)
            return report
        require_registry_write(env.paths, name)
        change = env.registry().write(name, spec.text, who=env.who(), op="app update")
        report.say(f"{name}: registry entry updated from program.ini (generation {change.generation_after}, "
                   f"{info.state})")
        _results(report, client.supz("update", [name], app_context("update", layout, audit=False)), done)
        _audit_own(env, "update", layout, change, report)
    return report


def status(env: AppEnv, layout: AppLayout) -> ActionReport:
    """One line per process; exit 0 all RUNNING, 3 stopped or parked, 4 unknown (LSB status)."""
    name = layout.checked().name
    report = ActionReport()
    with env.client() as client:
        try:
            lines = client.supz("status").splitlines()
        except SupervisordDown as exc:
            report.fail(f"{name}: UNKNOWN ({exc})", STATUS_UNKNOWN)
            return report
    rows = [line.split("\t", 2) for line in lines if line]
    mine = [r for r in rows if r[0] == name or r[0].startswith(name + ":")]
    if not mine:
        report.fail(f"{name}: UNKNOWN (not in the registry, not loaded)", STATUS_UNKNOWN)
        return report
    width = max(len(r[0]) for r in mine) + 3
    for row in mine:
        report.say(f"{row[0]:<{width}}{row[1]:<10}{row[2] if len(row) > 2 else ''}".rstrip())
    states = {r[1] for r in mine}
    if "UNKNOWN" in states:
        report.exit_code = STATUS_UNKNOWN
    elif states != {RUNNING}:
        report.exit_code = STATUS_NOT_RUNNING
    return report
