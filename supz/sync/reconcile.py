"""Ending a divergence: merge a peer's registry into this host's, or take one side whole.

`merge_with_peer` is what a MASTER's syncer does when a peer's registry moved on without it
(a partition let both be MASTER): fetch the peer's version, merge the two entry by entry against
their common base (`supz.sync.merge`), publish the result as a new local version with a
generation above both, apply it to supervisord at once (nothing parked keeps running, nothing
active stays stopped), and let the push bring it to the peer. `take_peer` and `keep_local` are
`supz sync resolve` for two registries with no common base. Every outcome writes an audit line.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from supz import history
from supz.audit import AuditLog, AuditRecord, current_who
from supz.errors import StorageError, SupzError, SyncRefused, UnknownEntry
from supz.paths import HostPaths
from supz.programfile import ENTRY_SUFFIX
from supz.role import HA_ROLE, read_role
from supz.sync import aside, layout, lineage
from supz.sync.landing import BASE_SUFFIX, PUSH_FILE, CommitResult, Landing, PushInfo, ReceiverState
from supz.sync.manifests import MANIFEST, STATES, Entries, VersionInfo, differing, read_version, scan_checksums
from supz.sync.merge import LOCAL, Conflict, merge
from supz.sync.transport import Channel


@dataclass(frozen=True)
class MergeReport:
    peer: str
    peer_host: str
    generation_before: int
    peer_generation: int
    generation_after: int
    changed: list[str]  # entries whose state or content changed here
    conflicts: list[Conflict] = field(default_factory=list)
    parked_by_rule: list[str] = field(default_factory=list)
    set_aside: str | None = None
    applied: str = ""

    def summary(self) -> str:
        parts = [f"merged with {self.peer_host} (generations {self.generation_before} and {self.peer_generation}) "
                 f"into {self.generation_after}: {len(self.changed)} entr{'y' if len(self.changed) == 1 else 'ies'} "
                 f"changed here ({', '.join(self.changed[:10]) or 'none'})"]
        if self.parked_by_rule:
            parts.append(f"parked (a park wins): {', '.join(self.parked_by_rule)}")
        if self.conflicts:
            parts.append("; ".join(f"{c.name}: {c.detail}" for c in self.conflicts))
        if self.set_aside:
            parts.append(f"set aside in {self.set_aside}")
        if self.applied:
            parts.append(self.applied)
        return "; ".join(parts)


def fetch_version(paths: HostPaths, channel: Channel, held: ReceiverState, key: str) -> tuple[Path, VersionInfo]:
    """Copy the peer's current version here, verified against its manifest."""
    dest = paths.sync_work / f"fetch-{key}"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, mode=0o750)
    channel.fetch(held.current, dest)
    info = read_version(dest)
    if info.state != (held.generation, held.digest):
        raise SyncRefused("stale-base", f"{held.host}'s registry changed while it was fetched: trying again")
    if scan_checksums(dest) != info.entries:
        raise SyncRefused("mismatch", f"{held.host}'s registry does not match its own manifest")
    return dest, info


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def publish(paths: HostPaths, host: str, entries: Entries, sources: dict[str, Path], manifest: dict[str, Any],
            *, history: list[tuple[int, str]], expect: tuple[int, str], set_aside: bool = False,
            force: bool = False) -> CommitResult:
    """Make a new local version holding `entries` (each file taken from `sources[name]`), with
    `manifest` as its manifest, through the receiver's own verified, atomic commit. `expect` is
    the local state it was computed from: if the registry moved meanwhile, nothing happens."""
    landing = Landing(paths, host)
    spare = landing.prepare_spare()
    try:
        base = json.loads(Path(str(spare) + BASE_SUFFIX).read_text(encoding="utf-8"))
        if (int(base["generation"]), str(base["digest"])) != tuple(expect):
            raise SyncRefused("stale-base", f"{host}: the registry changed meanwhile: trying again")
        for state in STATES:
            for existing in os.listdir(spare / state):
                os.unlink(spare / state / existing)
        for name, meta in entries.items():
            _link(sources[name], spare / meta["state"] / f"{name}{ENTRY_SUFFIX}")
        (spare / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        push = PushInfo(sender=host, full=True, lineage=tuple(history))
        (spare / PUSH_FILE).write_text(json.dumps(push.as_dict()), encoding="utf-8")
        return landing.commit(spare, allow_master=True, set_aside=set_aside, force=force)
    except OSError as exc:
        landing.discard(spare)
        raise StorageError(f"cannot assemble a registry version in {spare}: {exc.strerror}", thing=str(spare)) from exc
    except BaseException:
        landing.discard(spare)
        raise


def _manifest(generation: int, host: str, op: str, names: list[str], entries: Entries, changed: dict[str, str],
              extra: dict[str, Any], *, histories: tuple[history.History, ...] = (),
              notes: history.Notes | None = None, detail: str = "",
              line: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new version's manifest: `histories` merged (union by id) with one line for this change
    appended (`line`, or one made here), `notes` kept for the entries that are parked."""
    when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
    who = current_who(host)
    if line is None:
        line = history.make_line(op=op, who=who, host=host, names=names, generation_before=generation - 1,
                                 note=history.Note(f"sync {op}", tuple(names), detail=detail), time=when)
    kept = {n: v for n, v in (notes or {}).items() if entries.get(n, {}).get("state") == "parked"}
    return {"format": 1, "generation": generation, "host": host, "user": who.real_user,
            "time": when, "op": op, "names": names, "entries": dict(sorted(entries.items())),
            "changed": dict(sorted((n, t) for n, t in changed.items() if n in entries)),
            "history": list(history.append(history.merge(*histories), [line])),
            "notes": dict(sorted(kept.items())), **extra}


def merge_line(generation: int, hosts: tuple[str, str], sides: tuple[VersionInfo, VersionInfo],
               names: list[str]) -> dict[str, Any]:
    """The history line of a merge, the same whichever side makes it: right after a heal both
    hosts may merge the same two states at once, and must then hold the same registry (the same
    history, so the same digest) instead of diverging again over their merge lines."""
    states = sorted([list(side.state) for side in sides])
    ident = hashlib.sha256(json.dumps(states).encode("utf-8")).hexdigest()[:16]
    last = max((str(line.get("time", "")) for side in sides for line in side.history[-1:]), default="")
    pair = " and ".join(sorted(hosts))
    gens = " and ".join(str(g) for g, _ in states)
    return {"id": f"merge-g{generation}-{ident}", "time": last, "user": "supz", "real_user": "supz",
            "host": pair, "command": "sync merge", "args": list(names), "op": "merge", "names": list(names),
            "result": "ok", "generation_before": generation - 1, "generation_after": generation,
            "detail": f"merged {pair} (generations {gens})"}


def merged_notes(result_entries: Entries, local: VersionInfo, peer: VersionInfo) -> history.Notes:
    """The note of each merged parked entry: from a side where it is parked (the newer note when both)."""
    notes: history.Notes = {}
    for name, meta in result_entries.items():
        if meta["state"] != "parked":
            continue
        found = [side.notes[name] for side in (local, peer)
                 if side.entries.get(name, {}).get("state") == "parked" and name in side.notes]
        if found:
            notes[name] = max(found, key=lambda note: note.get("time", ""))
    return notes


def apply_to_supervisord(paths: HostPaths, removed: list[str], why: str) -> str:
    """On a MASTER, make supervisord run exactly the active entries now; say what happened."""
    if read_role(paths) != HA_ROLE:
        return ""
    from supz.supervisord.client import SupervisorClient, context

    try:
        with SupervisorClient.for_host(paths) as client:
            for name in removed:
                for method in ("stopProcessGroup", "removeProcessGroup"):
                    try:
                        client.supervisor(method, name)
                    except SupzError:
                        pass
            answer = client.supz("update", [], context(why, []))
    except SupzError as exc:
        return f"not applied to supervisord: {exc}"
    results = answer.get("results", []) if isinstance(answer, dict) else []
    moved = [f"{r['name']} {r['status']}" for r in results if r.get("status") not in ("unchanged", None)]
    failed = [f"{r['name']}: {r.get('message') or r.get('status')}" for r in results if not r.get("ok", True)]
    said = f"applied ({', '.join(moved) or 'nothing to change'})"
    return said + (f"; failed: {'; '.join(failed)}" if failed else "")


def _aside_folder(paths: HostPaths, conflicts: list[Conflict], peer_host: str) -> Path | None:
    if not any(c.lost is not None for c in conflicts):
        return None
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return paths.set_aside / f"merge-{stamp}-{peer_host}"


def _keep_conflicts(folder: Path, conflicts: list[Conflict], local_dir: Path, peer_dir: Path,
                    local: VersionInfo, peer: VersionInfo, hosts: dict[str, str]) -> None:
    """Copy each conflict's losing content into `folder` as NAME.HOST.conf."""
    lost = [c for c in conflicts if c.lost is not None]
    folder.mkdir(parents=True, exist_ok=True)
    for c in lost:
        assert c.lost is not None
        side, source = (local, local_dir) if c.lost == LOCAL else (peer, peer_dir)
        meta = side.entries[c.name]
        shutil.copyfile(source / meta["state"] / f"{c.name}{ENTRY_SUFFIX}",
                        folder / f"{c.name}.{hosts[c.lost]}{ENTRY_SUFFIX}")


def merge_with_peer(paths: HostPaths, host: str, channel: Channel, held: ReceiverState, peer_spec: str,
                    key: str, base_state: tuple[int, str]) -> MergeReport:
    """Merge the peer's diverged registry into this host's (see the module's docstring)."""
    current = layout.current_version(paths)
    mine = read_version(current)
    base = mine if base_state == mine.state else lineage.base(paths, base_state)
    if base is None:
        raise SyncRefused("unrelated", f"the common state (generation {base_state[0]}) with {held.host} is no "
                                       "longer kept: resolve with `supz sync resolve`")
    folder, theirs = fetch_version(paths, channel, held, key)
    try:
        result = merge(base, mine, theirs, hosts=(host, held.host))
        generation = max(mine.generation, theirs.generation) + 1
        names = {LOCAL: host, "peer": held.host}
        aside_dir = _aside_folder(paths, result.conflicts, held.host)
        kept_at = None if aside_dir is None else str(aside_dir)
        sources: dict[str, Path] = {}
        for name in result.entries:
            side, where = (mine, current) if result.source[name] == LOCAL else (theirs, folder)
            sources[name] = where / side.entries[name]["state"] / f"{name}{ENTRY_SUFFIX}"
        changed_here = result.differs_from(mine.entries)
        info = {"merge": {
            "hosts": [host, held.host], "from": [list(mine.state), list(theirs.state)], "base": list(base_state),
            "conflicts": [{"name": c.name, "kind": c.kind, "kept": names[c.kept],
                           "lost": names[c.lost] if c.lost else None, "detail": c.detail} for c in result.conflicts],
            "parked_by_rule": result.parked_by_rule, "set_aside_on": host if kept_at else None,
            "set_aside": kept_at,
        }}
        names_changed = differing(mine.entries, theirs.entries)
        manifest = _manifest(generation, host, "merge", names_changed, result.entries, result.changed, info,
                             histories=(mine.history, theirs.history),
                             notes=merged_notes(result.entries, mine, theirs),
                             line=merge_line(generation, (host, held.host), (mine, theirs), names_changed))
        history = [*lineage.load(paths), mine.state, theirs.state]
        committed = publish(paths, host, result.entries, sources, manifest, history=history, expect=mine.state)
        if aside_dir is not None:
            # The replaced version stays readable a while after its retirement (layout.collect).
            try:
                _keep_conflicts(aside_dir, result.conflicts, current, folder, mine, theirs, names)
            except OSError as exc:
                kept_at = f"{aside_dir} (incomplete: {exc})"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lineage.record(paths, theirs.generation, theirs.digest, also=[mine.state])
    removed = sorted(set(mine.entries) - set(result.entries))
    report = MergeReport(peer_spec, held.host, mine.generation, theirs.generation, committed.generation_after,
                         changed_here, result.conflicts, result.parked_by_rule, kept_at)
    if result.conflicts:
        aside.add(paths, "merge", [c.name for c in result.conflicts],
                  "; ".join(c.detail for c in result.conflicts), where=kept_at or "")
    applied = apply_to_supervisord(paths, removed, "sync merge")
    report = replace(report, applied=applied)
    AuditLog(paths.audit_log).append(AuditRecord(
        "sync merge", [peer_spec, *changed_here], "ok" if not result.conflicts else "ok: conflicts set aside",
        current_who(host), mine.generation, committed.generation_after, detail=report.summary()))
    return report


def received_merge(paths: HostPaths, host: str, replaced: VersionInfo, replaced_dir: Path, new: VersionInfo) -> None:
    """On the peer of a merge: when a pushed version is a merge of this host's registry, say so in
    the audit trail and keep what this host lost in it."""
    info = new.merge or {}
    sources = [tuple(s) for s in info.get("from", []) if isinstance(s, list) and len(s) == 2]
    if (replaced.generation, replaced.digest) not in [(int(g), str(d)) for g, d in sources]:
        return
    conflicts = [c for c in info.get("conflicts", []) if isinstance(c, dict)]
    mine = [c for c in conflicts if c.get("lost") == host and c.get("name") in replaced.entries]
    kept_at = None
    if mine:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        folder = paths.set_aside / f"merge-{stamp}-{new.host}"
        folder.mkdir(parents=True, exist_ok=True)
        for c in mine:
            name = str(c["name"])
            meta = replaced.entries[name]
            shutil.copyfile(replaced_dir / meta["state"] / f"{name}{ENTRY_SUFFIX}", folder / f"{name}.{host}{ENTRY_SUFFIX}")
        kept_at = str(folder)
    if conflicts:
        aside.add(paths, "merge", [str(c.get("name")) for c in conflicts],
                  "; ".join(str(c.get("detail")) for c in conflicts),
                  where=", ".join(p for p in (kept_at, f"{info.get('set_aside_on')}:{info.get('set_aside')}"
                                               if info.get("set_aside") else None) if p))
    changed = differing(replaced.entries, new.entries)
    AuditLog(paths.audit_log).append(AuditRecord(
        "sync merge", [new.host, *changed], "ok" if not conflicts else "ok: conflicts set aside", current_who(host),
        replaced.generation, new.generation,
        detail=f"merged by {new.host} from generations {', '.join(str(s[0]) for s in sources)} "
               f"(base {info.get('base', ['?'])[0]}); {len(changed)} entries changed here"
               + (f"; conflicts: {'; '.join(str(c.get('detail')) for c in conflicts)}" if conflicts else "")))


@dataclass(frozen=True)
class ResolveReport:
    peer: str
    peer_host: str
    action: str  # "took", "kept", "same", "dry-run"
    generation_before: int
    generation_after: int
    differing: list[str]
    local: Entries
    theirs: Entries
    set_aside: str | None = None
    applied: str = ""


def _open(paths: HostPaths, peer: str) -> tuple[Any, Channel, ReceiverState, str, str]:
    from supz.config import load_config, read_config
    from supz.sync.peers import find_peer
    from supz.sync.settings import load_sync_settings
    from supz.sync.transport import connect

    config = read_config(paths.config_file)
    settings, host = load_sync_settings(config), load_config(config).host
    Landing(paths, host).ensure_layout()
    named = [p for p in settings.peers if peer in (p.spec, p.host)]
    # A peer may also be named by its supz host name (what the syncer's messages say).
    candidates = named or list(settings.peers) or [find_peer(settings, peer)]
    for target in candidates:
        channel = connect(target, settings, paths)
        try:
            held = channel.hello(host)
        except BaseException:
            channel.close()
            raise
        if named or held.host == peer or not settings.peers:
            return target, channel, held, host, target.spec
        channel.close()
    raise UnknownEntry(f"{peer}: no configured peer by that spec, address or host name ([sync] peers)", thing=peer)


def resolve(paths: HostPaths, peer: str, *, take: bool, dry_run: bool = False) -> ResolveReport:
    """`supz sync resolve`: end a divergence with no merge, by taking `peer`'s registry whole
    (this host's set aside) or keeping this host's (the peer's is replaced, and set aside there)."""
    target, channel, held, host, spec = _open(paths, peer)
    try:
        current = layout.current_version(paths)
        mine = read_version(current)
        theirs_entries = dict(held.entries or {})
        names = differing(mine.entries, theirs_entries)
        same = mine.state == (held.generation, held.digest)
        report = ResolveReport(spec, held.host, "same" if same else "dry-run", mine.generation, mine.generation,
                               names, mine.entries, theirs_entries)
        if same or dry_run:
            return report
        if take:
            return _take(paths, host, channel, held, target, mine, names)
        return _keep(paths, host, held, target, mine, names)
    finally:
        channel.close()


def _take(paths: HostPaths, host: str, channel: Channel, held: ReceiverState, target: Any, mine: VersionInfo,
          names: list[str]) -> ResolveReport:
    folder, theirs = fetch_version(paths, channel, held, target.key)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        sources = {n: folder / meta["state"] / f"{n}{ENTRY_SUFFIX}" for n, meta in theirs.entries.items()}
        committed = publish(paths, host, theirs.entries, sources, manifest, expect=mine.state, set_aside=True,
                            force=True, history=[*lineage.load(paths), theirs.state])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lineage.record(paths, theirs.generation, theirs.digest, peer=target.spec)
    removed = sorted(set(mine.entries) - set(theirs.entries))
    aside.add(paths, "resolve", names, f"took {held.host}'s registry (generation {theirs.generation}); this "
              f"host's (generation {mine.generation}) set aside", where=committed.set_aside or "", reviewed=True)
    applied = apply_to_supervisord(paths, removed, "sync resolve")
    AuditLog(paths.audit_log).append(AuditRecord(
        "sync resolve", ["--take", target.spec, *names], "ok: took the peer's registry", current_who(host),
        mine.generation, theirs.generation,
        detail=f"set aside in {committed.set_aside}" + (f"; {applied}" if applied else "")))
    return ResolveReport(target.spec, held.host, "took", mine.generation, theirs.generation, names, mine.entries,
                         theirs.entries, committed.set_aside, applied)


def _keep(paths: HostPaths, host: str, held: ReceiverState, target: Any, mine: VersionInfo,
          names: list[str]) -> ResolveReport:
    from supz.errors import PolicyRefused

    role = read_role(paths)
    if role != HA_ROLE:
        raise PolicyRefused(f"this host is {role}: only the MASTER pushes, so keep-local is run there "
                            f"(or `supz sync resolve --take {held.host}` here)", thing=role)
    after = mine.generation
    if mine.generation <= held.generation:
        current = layout.current_version(paths)
        after = held.generation + 1
        sources = {n: current / meta["state"] / f"{n}{ENTRY_SUFFIX}" for n, meta in mine.entries.items()}
        manifest = _manifest(after, host, "resolve", [], mine.entries, mine.changed, {}, histories=(mine.history,),
                             notes=mine.notes, detail=f"kept this host's registry over {held.host}'s")
        publish(paths, host, mine.entries, sources, manifest, expect=mine.state, history=lineage.load(paths))
    lineage.overrule(paths, target.spec, (held.generation, held.digest))
    AuditLog(paths.audit_log).append(AuditRecord(
        "sync resolve", ["--keep-local", target.spec, *names], "ok: this host's registry is pushed to the peer",
        current_who(host), mine.generation, after,
        detail=f"{held.host}'s registry (generation {held.generation}) is replaced and set aside there"))
    return ResolveReport(target.spec, held.host, "kept", mine.generation, after, names, mine.entries,
                         dict(held.entries or {}))
