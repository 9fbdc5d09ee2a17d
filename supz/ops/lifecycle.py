"""Start, stop, park, unpark and restart, registry-aware.

`stop` parks a registry entry (it stays stopped across restarts and failovers), `start`
unparks it, `restart` never changes the registry; a host-local program (not in the registry)
and one process of a multi-process entry get supervisor's plain stop/start. Every name is
classified first: one unknown name changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from supervisor.xmlrpc import Faults

from supz.errors import ExitCode, SupervisorFault
from supz.ops.auditing import audit_report
from supz.ops.env import Command, OpsEnv
from supz.ops.report import Report, add_results
from supz.supervisord.client import RpcClient

DONE_PARK = {"parked": "stopped and parked"}
DONE_START = {"unparked": "unparked and started", "started": "started", "already running": "already running",
              "added": "registered and started", "updated": "updated and restarted"}
HOST_LOCAL = " (host-local: registry unchanged)"


@dataclass(frozen=True)
class Target:
    """A name as the extension classifies it (`supz.resolve`)."""

    spec: str
    kind: str  # "active", "parked", "local" or "unknown"
    group: str
    process: str  # "" for a whole group (NAME or NAME:*)
    processes: tuple[str, ...]
    loaded: bool

    @property
    def registered(self) -> bool:
        return self.kind in ("active", "parked")

    @property
    def one_of_many(self) -> bool:
        """One process of a multi-process entry: stopping it leaves the entry active."""
        return bool(self.process) and len(self.processes) > 1


def command_for(given: Command | None, name: str, args: Sequence[str], reason: str = "") -> Command:
    """The command an audit line names: the caller's, or `name args`; a reason is appended."""
    base = given or Command.of(name, args)
    reason = reason or base.reason
    return Command(base.name, base.args + (("--reason", reason) if reason and "--reason" not in base.args else ()),
                   reason)


def resolve(client: RpcClient, names: Sequence[str], report: Report) -> dict[str, Target] | None:
    """Classify every name; None (and one error line per unknown name, exit 2) if any is unknown."""
    answer = client.supz("resolve", list(names))
    targets = {name: Target(name, str(item["kind"]), str(item["group"]), str(item["process"]),
                            tuple(item["processes"]), bool(item["loaded"]))
               for name, item in answer.items()}
    unknown = [name for name in names if targets[name].kind == "unknown"]
    for name in unknown:
        report.fail(f"{name}: ERROR (no such process or application)", ExitCode.USAGE)
    return None if unknown else targets


def plain(client: RpcClient, method: str, name: str, done: str, note: str = "") -> Report:
    """supervisor's own stop/start on a group (NAME, NAME:*) or one process (NAME:PROC)."""
    report = Report()
    group, _, process = name.partition(":")
    try:
        if process and process != "*":
            client.supervisor(f"{method}Process", name)
            report.say(f"{name}: {done}{note}")
        else:
            for result in client.supervisor(f"{method}ProcessGroup", group):
                spec = f"{result['group']}:{result['name']}"
                if result["status"] == Faults.SUCCESS:
                    report.say(f"{spec}: {done}{note}")
                else:
                    report.fail(f"{spec}: ERROR ({result['description']}){note}")
    except SupervisorFault as exc:
        report.fail(f"{name}: ERROR ({exc}){note}")
    return report


def _park(env: OpsEnv, client: RpcClient, names: list[str], command: Command, report: Report) -> None:
    add_results(report, client.supz("park", names, env.context(command)), DONE_PARK)


def _unpark(env: OpsEnv, client: RpcClient, names: list[str], command: Command, report: Report) -> None:
    add_results(report, client.supz("unpark", names, env.context(command)), DONE_START)


def park(env: OpsEnv, names: Sequence[str], *, reason: str = "", command: Command | None = None) -> Report:
    """Stop registry entries and park them (one generation step for all); the reason is kept with
    each parked entry (shown by status and list on every host) and in the history."""
    report = Report()
    with env.connect() as client:
        _park(env, client, list(names), command_for(command, "stop", names, reason), report)
    return report


def unpark(env: OpsEnv, names: Sequence[str], *, command: Command | None = None) -> Report:
    """Make registry entries active again and start them (parked ones are unparked first)."""
    report = Report()
    with env.connect() as client:
        _unpark(env, client, list(names), command_for(command, "start", names), report)
    return report


def _route(env: OpsEnv, client: RpcClient, names: Sequence[str], verb: str, report: Report,
           registry_op: Callable[[list[str], Command], None], command: Command | None, reason: str = "") -> None:
    """Whole registry entries go to `registry_op` (park or unpark) in one call; host-local
    programs and single processes of a multi-process entry get supervisor's own stop/start,
    with one audit line for those. Nothing happens when a name is unknown."""
    targets = resolve(client, names, report)
    if targets is None:
        return
    groups: list[str] = []
    other = Report()
    for name in names:
        target = targets[name]
        if target.registered and not target.one_of_many:
            if target.group not in groups:
                groups.append(target.group)
        elif verb == "stop":
            note = f" (one process of {target.group}: the entry stays active)" if target.registered else HOST_LOCAL
            other.merge(plain(client, "stop", name, "stopped", note))
        else:
            other.merge(plain(client, "start", name, "started"))
    if groups:
        registry_op(groups, command_for(command, verb, groups, reason))
    report.merge(other)
    if other.lines:
        rest = [n for n in names if targets[n].group not in groups]
        audit_report(env, client, command_for(command, verb, rest, reason), other)


def stop(env: OpsEnv, names: Sequence[str], *, reason: str = "", command: Command | None = None) -> Report:
    """supzcli's stop: park registry entries, stop host-local programs and single processes."""
    report = Report()
    with env.connect() as client:
        if "all" not in names:
            _route(env, client, names, "stop", report, lambda groups, used: _park(env, client, groups, used, report),
                   command, reason)
            return report
        active = list(client.supz("getRegistry")["active"])
        if active:
            _park(env, client, active, command_for(command, "stop", names, reason), report)
        else:
            report.say("no active application to stop")
        report.say("host-local programs (not in the registry) left running")
    return report


def start(env: OpsEnv, names: Sequence[str], *, command: Command | None = None) -> Report:
    """supzcli's start: unpark and start registry entries; plain start for the rest."""
    report = Report()
    with env.connect() as client:
        if "all" not in names:
            _route(env, client, names, "start", report,
                   lambda groups, used: _unpark(env, client, groups, used, report), command)
            return report
        add_results(report, client.supz("activate", env.context(command_for(command, "start", names))), DONE_START)
        parked = client.supz("getRegistry")["parked"]
        if parked:
            report.say(f"{len(parked)} parked application(s) left parked: start them by name")
    return report


def restart(env: OpsEnv, names: Sequence[str], *, command: Command | None = None) -> Report:
    """Stop then start, inside supervisord (`supz.restart`): the registry is unchanged, a parked
    entry is an error ('start' brings it back). `all`: every loaded program."""
    report = Report()
    with env.connect() as client:
        if "all" not in names and resolve(client, names, report) is None:
            return report
        answer = client.supz("restart", list(names), env.context(command_for(command, "restart", names)))
        add_results(report, answer, {})
    return report


def parked_names(env: OpsEnv) -> list[str]:
    """The parked entries, as supervisord's extension sees them (a socket user can ask)."""
    with env.connect() as client:
        return [str(name) for name in client.supz("getRegistry")["parked"]]
