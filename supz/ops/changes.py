"""Applying program files to supervisord: update (changed entries, host-local groups), add and
remove. Registry entries go through the extension; host-local programs through supervisor's
own reloadConfig/addProcessGroup/removeProcessGroup, as supervisorctl does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from supz.errors import SupervisorFault
from supz.ops.auditing import audit_report
from supz.ops.env import Command, OpsEnv
from supz.ops.lifecycle import command_for, plain, resolve
from supz.ops.report import Report, add_results
from supz.supervisord.client import RpcClient

DONE_REMOVE = {"removed": "stopped and removed from the registry (a copy is kept)"}


def update(env: OpsEnv, names: Sequence[str] = (), *, command: Command | None = None,
           done: Mapping[str, str] | None = None) -> Report:
    """Apply changed entry files (all, or the named ones; malformed ones are reported and
    skipped); without names also supervisorctl's update for the host-local programs."""
    chosen = [name for name in names if name != "all"]
    report = Report()
    with env.connect() as client:
        answer = client.supz("update", chosen, env.context(command_for(command, "update", names)))
        # Every entry, unchanged ones included, is in the answer: show those only when asked by name.
        add_results(report, answer, done, hide=() if chosen else ("unchanged",))
        if not chosen:
            report.merge(_update_host_local(env, client))
    return report


def _update_host_local(env: OpsEnv, client: RpcClient) -> Report:
    """supervisorctl's update, for the programs that are not in the registry."""
    report = Report()
    try:
        added, changed, removed = client.supervisor("reloadConfig")[0]
    except SupervisorFault as exc:
        report.fail(f"host-local programs not updated: {exc}")
        return report
    registry = client.supz("getRegistry")
    ours = set(registry["active"]) | set(registry["parked"])
    for name in [n for n in removed + changed if n not in ours]:
        report.lines += plain(client, "stop", f"{name}:*", "stopped").errors
        client.supervisor("removeProcessGroup", name)
        report.say(f"{name}: removed process group")
    for name in [n for n in changed + added if n not in ours]:
        client.supervisor("addProcessGroup", name)
        report.say(f"{name}: {'updated' if name in changed else 'added'} process group")
    if report.lines:
        audit_report(env, client, Command.of("update", ["host-local"]), report)
    return report


def add(env: OpsEnv, names: Sequence[str]) -> Report:
    """Registry entries are updated; other names are host-local groups supervisord loads."""
    report = Report()
    with env.connect() as client:
        registry = client.supz("getRegistry")
    known = set(registry["active"]) | set(registry["parked"])
    ours = [name for name in names if name in known]
    if ours:
        report.merge(update(env, ours))
    rest = [name for name in names if name not in known]
    if rest:
        with env.connect() as client:
            other = _groups(client, "add", rest, "added process group")
            report.merge(other)
            audit_report(env, client, Command.of("add", rest), other)
    return report


def remove(env: OpsEnv, names: Sequence[str], *, command: Command | None = None) -> Report:
    """Stop and delete registry entries (a copy is kept under var/lib/supz/removed); unload
    host-local groups."""
    report = Report()
    with env.connect() as client:
        targets = resolve(client, names, report)
        if targets is None:
            return report
        ours = [name for name in names if targets[name].registered]
        if ours:
            answer = client.supz("remove", ours, env.context(command_for(command, "remove", ours)))
            add_results(report, answer, DONE_REMOVE)
        rest = [name for name in names if name not in ours]
        if rest:
            other = _groups(client, "remove", rest, "removed process group")
            report.merge(other)
            audit_report(env, client, Command.of("remove", rest), other)
    return report


def _groups(client: RpcClient, verb: str, names: list[str], done: str) -> Report:
    report = Report()
    for name in names:
        try:
            client.supervisor(f"{verb}ProcessGroup", name)
        except SupervisorFault as exc:
            report.fail(f"{name}: ERROR ({exc})")
        else:
            report.say(f"{name}: {done}")
    return report
