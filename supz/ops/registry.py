"""Registering program files (add, replace, rewrite) and reading the registry and its history."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supz import history as hist
from supz.audit import AuditLog
from supz.errors import EntryExists, InvalidProgramFile, PolicyRefused, StorageError, SupervisordDown, UsageError
from supz.failover.guard import require_master
from supz.names import validate_name
from supz.ops.auditing import audit_change
from supz.ops.env import Command, OpsEnv
from supz.ops.lifecycle import DONE_START
from supz.ops.report import Report, add_results
from supz.paths import HostPaths
from supz.programfile import ProgramSpec, parse_program_text, read_program_text
from supz.registry import Change


def require_autostart(spec: ProgramSpec, where: object, hint: str, thing: str | None = None) -> ProgramSpec:
    """An active entry must run: autostart=false is refused (parking is how one stays stopped)."""
    if not spec.autostart:
        raise InvalidProgramFile(f"{where}: autostart=false: an active entry must run; {hint}", thing=thing)
    return spec


def require_registry_write(paths: HostPaths, name: str, why: str = "") -> None:
    """One clear line instead of a permission error halfway through a registry transaction."""
    needed = [paths.registry, paths.active, paths.parked, paths.locks]
    if not all(os.access(folder, os.W_OK) for folder in needed):
        raise PolicyRefused(f"{name}: {why}registering it needs write access to the registry {paths.registry} "
                            "(run as root)", thing=name)


def register(env: OpsEnv, name: str, text: str, *, command: Command, replace: bool = False,
             keep_state: bool = False, start: bool = False, op: str = "add",
             said: str = "active in the registry (generation {generation})",
             done: Mapping[str, str] | None = None) -> Report:
    """Write `text` as NAME's entry (needs write access to the registry), let supervisord load it,
    and write one audit line for the whole command.

    keep_state: rewrite the entry where it is (active or parked); else make it active
    (replace: over an active one). start: make sure it runs (unpark) once loaded.
    """
    require_registry_write(env.paths, name)
    # Only a MASTER pushes: content admitted on another HA host would never reach the pair.
    require_master(env.paths, env.config.ha_enabled)
    registry = env.registry()
    change: Change
    note = hist.Note(command.name, command.args, command.reason)
    if keep_state:
        change = registry.write(name, text, who=env.who, op=op, note=note)
    else:
        try:
            change = registry.add(name, text, who=env.who, replace=replace, op=op, note=note)
        except EntryExists:
            raise EntryExists(f"{name}: already an active entry; use --replace to change it", thing=name) from None
    report = Report()
    report.say(f"{name}: " + said.format(generation=change.generation_after))
    try:
        with env.connect() as client:
            add_results(report, client.supz("update", [name], env.context(command, audit=False)), done)
            if start and report.ok:
                started = client.supz("unpark", [name], env.context(command, audit=False))
                if any(item["status"] != "already running" for item in started["results"]):
                    add_results(report, started, DONE_START)
    except SupervisordDown:
        report.warn(f"{name}: supervisord is not running; it starts with supervisord")
    audit_change(env, command, change, report)
    return report


def program_name(file: Path) -> str:
    """The program name a file stands for: its name without .conf/.ini."""
    return file.name.rsplit(".", 1)[0] if file.suffix in (".conf", ".ini") else file.name


def add_text(env: OpsEnv, name: str, text: str, *, command: Command, replace: bool = False,
             label: str | None = None) -> Report:
    """Validate `text` as NAME's program file and make it an active entry; supervisord loads and
    starts it (or will, when it starts)."""
    validate_name(name)
    spec = require_autostart(parse_program_text(text, name, label=label), label or name,
                             "park it to keep it stopped", name)
    return register(env, name, spec.text, command=command, replace=replace)


def add_file(env: OpsEnv, file: Path, *, name: str | None = None, replace: bool = False,
             command: Command | None = None) -> Report:
    """`supz registry add FILE`: the program name is the file's (without .conf/.ini) unless given."""
    name = name or program_name(file)
    validate_name(name)
    return add_text(env, name, read_program_text(file), label=str(file), replace=replace,
                    command=command or Command.of("registry add", [str(file)]))


@dataclass(frozen=True)
class Listing:
    """The registry as `supz registry list` shows it: the generation, its last change, the entries."""

    generation: int
    changed_at: str
    changed_by: str
    changed_on: str
    op: str
    entries: dict[str, str]  # name -> "active" | "parked", in the registry's order
    notes: dict[str, dict[str, str]] = field(default_factory=dict)  # parked entries: who, when, why

    @property
    def active(self) -> list[str]:
        return [name for name, state in self.entries.items() if state == "active"]

    @property
    def parked(self) -> list[str]:
        return [name for name, state in self.entries.items() if state == "parked"]

    def as_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "changed_at": self.changed_at, "changed_by": self.changed_by,
                "changed_on": self.changed_on, "active": self.active, "parked": self.parked,
                "notes": {n: v for n, v in self.notes.items() if n in self.parked}}


def listing(env: OpsEnv) -> Listing:
    """Read from the registry's files (needs read access to it; supervisord may be down)."""
    registry = env.registry()
    manifest = registry.manifest()
    entries = {name: entry.state.value for name, entry in registry.entries().items()}
    return Listing(manifest.generation, manifest.time, manifest.user, manifest.host, manifest.op, entries,
                   dict(manifest.notes))


def history(env: OpsEnv, count: int | None = 20, *, app: str | None = None, user: str | None = None,
            since: str | None = None, local: bool = False) -> list[dict[str, Any]]:
    """The registry's history (replicated with the registry: the same on every host of a pair),
    filtered by application, user and time (`2d`, `12h`, an ISO date), its last `count` lines
    (all when None or 0), oldest first. `local`: this host's own audit file instead (every
    command run here, registry changes or not), as `supz registry history` read it before."""
    try:
        cutoff = hist.since_cutoff(since) if since else None
    except ValueError:
        raise UsageError(f"--since {since}: not a span (2d, 12h, 30m, 1w) nor an ISO date", thing=since) from None
    if app is not None:
        validate_name(app)
    records = _audit_file(env, 0) if local else _registry_history(env)
    chosen = hist.select(records, app=app, user=user, since=cutoff)
    return chosen[-count:] if count else chosen


def _registry_history(env: OpsEnv) -> list[dict[str, Any]]:
    """The manifest's history: from the registry's files, or through supervisord for a user who
    may not read them."""
    try:
        return [dict(line) for line in env.registry().manifest().history]
    except StorageError:
        if os.access(env.paths.manifest, os.R_OK):
            raise
    with env.connect() as client:
        text = str(client.supz("registryHistory"))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _audit_file(env: OpsEnv, count: int | None) -> list[dict[str, Any]]:
    log = AuditLog(env.paths.audit_log)
    if os.access(log.path, os.R_OK) or not log.path.exists():
        return log.tail(count or None)
    with env.connect() as client:
        text = str(client.supz("history", count or 0))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def history_line(record: Mapping[str, Any]) -> str:
    """One audit record as `supz registry history` prints it."""
    user = record.get("real_user") or record.get("user")
    if record.get("user") and record.get("user") != user:
        user = f"{user} (as {record['user']})"
    gens = f"{record.get('generation_before')}->{record.get('generation_after')}"
    args = " ".join(record.get("args", []))
    return (f"{record.get('time')} {record.get('host')} {user}: {record.get('command')} {args} "
            f"[{record.get('result')}] gen {gens}")


def show(env: OpsEnv, name: str) -> dict[str, Any]:
    """`supz registry show NAME`: one entry's file, state, park note, last change and history."""
    validate_name(name)
    registry = env.registry()
    entry = registry.get(name)
    manifest = registry.manifest()
    lines = hist.select(manifest.history, app=name)
    return {"name": name, "state": entry.state.value, "file": str(entry.path),
            "sha256": manifest.entries.get(name, {}).get("sha256", ""),
            "changed_at": manifest.changed.get(name, ""), "parked": manifest.notes.get(name),
            "last_change": lines[-1] if lines else None, "history": lines, "text": registry.read_text(name)}
