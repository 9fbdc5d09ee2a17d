"""Whole-registry operations: export to an archive, import one, restore a backup, and admit many
program files at once. Each change is one registry transaction (one generation), applied to
supervisord in one call, refused off the MASTER, and validated completely before anything moves.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

from supz import archive, backups
from supz import history as hist
from supz.errors import EntryExists, InvalidProgramFile, SupervisordDown, SupzError, UsageError
from supz.failover.guard import require_master
from supz.names import validate_name
from supz.ops.auditing import audit_change
from supz.ops.env import Command, OpsEnv
from supz.ops.registry import program_name, require_autostart, require_registry_write
from supz.ops.report import Report, add_results
from supz.programfile import parse_program_text, read_program_text, sha256_text
from supz.registry import Change, EntryState, Manifest

PROGRAM_SUFFIXES = (".conf", ".ini")


def export(env: OpsEnv, out: Path | None = None) -> tuple[Path, int, int]:
    """Write an archive of the registry (under its lock, so the manifest matches the files);
    returns (path, generation, entries). Default name: supz-registry-HOST-gGEN-TIME in the cwd."""
    registry = env.registry()
    with registry.locked():
        manifest = registry.manifest()
        data = archive.snapshot(env.paths.registry, env.config.host)
    if out is None:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = Path(f"supz-registry-{env.config.host}-g{manifest.generation}-{stamp}{archive.SUFFIX}")
    archive.write(out, data)
    return out, manifest.generation, len(manifest.entries)


def changes(current: Manifest, wanted: archive.Archive) -> list[str]:
    """What applying `wanted` changes, one line per entry: add, remove, park, unpark, edit."""
    lines = []
    for name in sorted(set(current.entries) | set(wanted.manifest.entries)):
        now, then = current.entries.get(name), wanted.manifest.entries.get(name)
        if now == then:
            continue
        if then is None:
            lines.append(f"{name}: remove")
        elif now is None:
            lines.append(f"{name}: add ({then['state']})")
        else:
            words = []
            if now["state"] != then["state"]:
                words.append("park" if then["state"] == "parked" else "unpark")
            if now["sha256"] != then["sha256"]:
                words.append("edit")
            lines.append(f"{name}: {' and '.join(words)}")
    return lines


def apply_archive(env: OpsEnv, wanted: archive.Archive, *, command: Command, op: str, dry_run: bool) -> Report:
    """Make the registry equal to `wanted` as one transaction and apply it to supervisord."""
    require_registry_write(env.paths, op)
    require_master(env.paths, env.config.ha_enabled)
    registry = env.registry()
    current = registry.manifest()
    listed = changes(current, wanted)
    report = Report()
    if dry_run:
        report.lines += listed
        report.say(f"{len(listed)} change(s) from generation {current.generation} (dry run: nothing changed)")
        return report
    if not listed:
        report.say(f"the registry (generation {current.generation}) already equals it: nothing to change")
        return report
    texts = {name: (EntryState(wanted.state(name)), text) for name, text in wanted.texts.items()}
    change = registry.replace_all(texts, who=env.who, op=op, note=hist.Note(command.name, command.args),
                                  notes=wanted.manifest.notes)
    if change is None:
        report.say(f"the registry (generation {current.generation}) already equals it: nothing to change")
        return report
    report.lines += listed
    report.say(f"{len(listed)} change(s): generation {change.generation_after}")
    removed = sorted(set(current.entries) - set(wanted.manifest.entries))
    _apply(env, command, removed, report)
    audit_change(env, command, change, report)
    return report


def _apply(env: OpsEnv, command: Command, removed: Sequence[str], report: Report) -> None:
    """supervisord runs exactly the active entries now: removed ones stop and unload, the rest is
    one `supz.update` (parked ones unload, new and changed ones load and start)."""
    try:
        with env.connect() as client:
            for name in removed:
                for method in ("stopProcessGroup", "removeProcessGroup"):
                    try:
                        client.supervisor(method, name)
                    except SupzError:
                        pass  # not loaded (a BACKUP, a parked entry): nothing to stop
            answer = client.supz("update", [], env.context(command, audit=False))
            add_results(report, answer, {"added": "loaded and started", "updated": "updated and restarted",
                                         "removed": "stopped and unloaded"}, hide=("unchanged",))
    except SupervisordDown:
        report.warn("supervisord is not running: the registry is applied when it starts")


def import_archive(env: OpsEnv, path: Path, *, dry_run: bool = False) -> Report:
    """`supz registry import FILE [--dry-run]`."""
    wanted = archive.read(path)
    return apply_archive(env, wanted, command=Command.of("registry import", [str(path)]), op="import",
                         dry_run=dry_run)


def restore(env: OpsEnv, ident: str, *, dry_run: bool = False) -> Report:
    """`supz registry restore ID [--dry-run]`: the registry as it was in that backup, as a new generation."""
    found = backups.find(env.paths, ident)
    wanted = archive.read(found.path)
    return apply_archive(env, wanted, command=Command.of("registry restore", [found.id]), op="restore",
                         dry_run=dry_run)


def program_files(given: Sequence[Path]) -> list[Path]:
    """The files named, a folder standing for its *.conf and *.ini files (sorted)."""
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in PROGRAM_SUFFIXES and not p.name.startswith("."))
            if not found:
                raise UsageError(f"{path}: no .conf or .ini program file in this folder", thing=str(path))
            files += found
        else:
            files.append(path)
    return files


def add_many(env: OpsEnv, given: Sequence[Path], *, replace: bool = False) -> Report:
    """`supz registry add FILE... | DIR`: every file validated first (one bad file refuses the whole
    call, naming it, nothing changed), then one transaction and one load-and-start call."""
    files = program_files(given)
    texts: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for file in files:
        name = program_name(file)
        validate_name(name)
        if name in texts:
            raise InvalidProgramFile(f"{file}: program {name} is also {origin[name]}", thing=str(file))
        spec = require_autostart(parse_program_text(read_program_text(file), name, label=str(file)), file,
                                 "park it to keep it stopped", str(file))
        texts[name], origin[name] = spec.text, file
    require_registry_write(env.paths, "registry add")
    require_master(env.paths, env.config.ha_enabled)
    command = Command.of("registry add", [str(p) for p in given])
    registry = env.registry()
    unchanged = [n for n, text in texts.items() if registry.manifest().entries.get(n) ==
                 {"state": "active", "sha256": sha256_text(text)}] if replace else []
    try:
        change: Change = registry.add_many({n: t for n, t in texts.items() if n not in unchanged}, who=env.who,
                                           replace=replace, note=hist.Note(command.name, (f"{len(texts)} files",)))
    except EntryExists as exc:
        raise EntryExists(f"{exc}; nothing added (use --replace to change it)", thing=exc.thing) from None
    report = Report()
    report.say(f"{len(texts)} entries active in the registry (generation {change.generation_after})")
    try:
        with env.connect() as client:
            answer = client.supz("update", sorted(texts), env.context(command, audit=False))
        add_results(report, answer, hide=("added", "updated", "unchanged"))
        started = sum(1 for r in report.results if r.ok)
        report.say(f"{started} of {len(texts)} loaded and RUNNING")
    except SupervisordDown:
        report.warn("supervisord is not running; they start with supervisord")
    audit_change(env, command, change, report)
    return report
