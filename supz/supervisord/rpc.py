"""The [rpcinterface:supz] extension: registry operations done inside supervisord.

Operators need only the socket: the extension moves registry files with supervisord's own
permissions, and every operation is serialized by supervisord's event loop. Bulk calls
(activate, deactivate, status) handle a thousand programs in one round trip.

Load it with:
    [rpcinterface:supz]
    supervisor.rpcinterface_factory = supz.supervisord.rpc:make_rpcinterface
    root = /path/of/the/host/root
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterable
from typing import Any

from supervisor.options import make_namespec
from supervisor.rpcinterface import SupervisorNamespaceRPCInterface
from supervisor.xmlrpc import Faults

from supz import history
from supz.audit import AuditLog, AuditRecord, Who
from supz.config import SupzConfig, load_config, read_config
from supz.errors import InvalidProgramFile, OperationFailed, PolicyRefused, SupzError, UnknownEntry
from supz.failover.guard import require_master
from supz.host.leftovers import mark, sweep
from supz.names import validate_name
from supz.paths import HostPaths, resolve_root
from supz.programfile import ProgramSpec, read_program_file
from supz.registry import EntryState, Registry
from supz.role import HA_ROLE, read_role, write_role
from supz.supervisord import caller as callers
from supz.supervisord import gate
from supz.supervisord.engine import Operation, Outcome, ProcessTable, Slicer, drive, wait_started, wait_stopped
from supz.supervisord.faults import as_rpc_error as _fault
from supz.supervisord.queries import QueryMethods
from supz.supervisord.restarts import RestartMethods
from supz.supervisord.specs import SpecCache
from supz.supervisord.tuning import Pacer, install


class Context:
    """Who called and with what command line, for the audit trail.

    Who comes from the socket's peer credentials: a client's claim (`user`, `real_user`) counts
    only where the peer is root (sudo's SUDO_USER behind root), or for supervisord's own calls.
    The command line and the confirmation are the client's word.
    """

    def __init__(self, data: dict[str, Any] | None, host: str) -> None:
        data = data or {}
        claimed_user = str(data.get("user", "unknown"))
        claimed_real = str(data.get("real_user", claimed_user))
        peer = callers.current()
        if peer.kind == callers.INTERNAL:
            self.who = Who(user=claimed_user, real_user=claimed_real, host=host)
        elif peer.is_root:
            self.who = Who(user=peer.user, real_user=claimed_real, host=host)
        else:
            self.who = Who(user=peer.user, real_user=peer.user, host=host)
        self.command = str(data.get("command", "rpc"))
        self.args = [str(a) for a in data.get("args", [])]
        self.confirmed = bool(data.get("confirmed", False))
        self.reason = " ".join(str(data.get("reason", "")).split())
        # A caller that writes its own audit line for the whole command asks for none here.
        self.audit = bool(data.get("audit", True))

    def note(self, detail: str = "") -> history.Note:
        """The history line's command, arguments and reason."""
        return history.Note(self.command, tuple(self.args), self.reason, detail)


class SupzNamespaceRPCInterface(QueryMethods, RestartMethods):
    def __init__(self, supervisord: Any, paths: HostPaths, config: SupzConfig, pacer: Pacer | None = None) -> None:
        self.supervisord = supervisord
        self.paths = paths
        self.config = config
        self.registry = Registry(paths, host=config.host, lock_timeout=2.0, backups=config.backups)
        self.audit_log = AuditLog(paths.audit_log)
        self.table = ProcessTable(supervisord)
        self._stock = SupervisorNamespaceRPCInterface(supervisord)
        self._busy: set[str] = set()
        self.pacer = pacer
        self._specs: SpecCache | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def on_start(self) -> None:
        """Runs before supervisord starts any process: end what an earlier supervisord of this
        root left running, recover the registry, enforce the role."""
        logger = self.table.logger()
        swept = sweep(self.paths)
        if swept.count:
            logger.warn(f"supz: {swept.describe()}: {', '.join(map(str, swept.terminated + swept.killed))}")
        try:
            self._recover(Context({"command": "recover", "user": "supervisord"}, self.config.host))
        except SupzError as exc:
            logger.critical(f"supz: registry recovery failed: {exc}")
        if self.config.ha_enabled and self.config.manager == "pacemaker" and read_role(self.paths) == HA_ROLE:
            # Under Pacemaker a MASTER role left by a crash is no claim: the cluster may run the
            # resource elsewhere now. Start with none; Pacemaker's probe then starts it where it decides.
            write_role(self.paths, "STOP")
            logger.warn("supz: managed by Pacemaker: the role MASTER left by the last supervisord is now STOP")
        active = self.registry.active_names()
        if not self.ha_allowed():
            self.table.unload_all([n for n in active if self.table.loaded(n)])
            logger.info(f"supz: role is {read_role(self.paths)}: no HA application loaded")
            # Parse ahead, so that becoming MASTER only spawns.
            for problem in self.specs.warm((n, self.registry.entry_path(n, EntryState.ACTIVE)) for n in active):
                logger.warn(f"supz: {problem}")
            return
        # supervisord.conf does not include the registry: its entries are loaded here, each one
        # validated, so a malformed file is reported and skipped instead of stopping supervisord.
        # supervisord's loop starts them (autostart) as it would have from an include.
        configs = []
        for name in active:
            if self.table.loaded(name):
                continue
            try:
                configs.append(self._spec(name).group_config)
            except InvalidProgramFile as exc:
                logger.critical(f"supz: {name} not loaded: {exc}")
        self.table.load_all(configs)

    def _recover(self, ctx: Context) -> None:
        """Finish an interrupted change, adopt valid hand edits, quarantine invalid files: each
        quarantined file gets a log line and an audit line."""
        change = self.registry.recover(who=ctx.who)
        if change is None:
            return
        ctx = copy.copy(ctx)
        ctx.audit = True  # a quarantine is always audited, whatever the caller asked for its own line
        logger = self.table.logger()
        if change.names or change.generation_after != change.generation_before:
            logger.warn(f"supz: registry {change.op}: generation {change.generation_after} ({', '.join(change.names)})")
            self._audit(ctx, change.op, "ok", change.generation_before, change.generation_after)
        for where, why in change.quarantined:
            logger.critical(f"supz: quarantined {where}: {why}")
            self._audit(ctx, "quarantine", f"invalid: {why}", change.generation_before, change.generation_after,
                        detail=where)

    def ha_allowed(self) -> bool:
        """May HA applications run here? Always on a standalone host; on a pair only as MASTER."""
        return not self.config.ha_enabled or read_role(self.paths) == HA_ROLE

    # ---- helpers -------------------------------------------------------------------------

    def _context(self, context: dict[str, Any] | None, command: str, words: list[str]) -> Context:
        """The caller's context, once the policy lets it run `command` on `words` (gate.permit)."""
        ctx = Context(context, self.config.host)
        try:
            gate.permit(self.config.policy, callers.current(), command, words, ctx.confirmed)
        except SupzError as exc:
            raise _fault(exc) from exc
        return ctx

    def context_of_caller(self, command: str, args: list[str]) -> Context:
        """The context of a call made through supervisor's own API (stock supervisorctl...)."""
        return Context({"command": command, "args": args}, self.config.host)

    def _update(self, text: str) -> None:
        self._stock._update(text)

    def _audit(self, ctx: Context, command: str | None, result: str, before: int | None, after: int | None,
               detail: str = "") -> None:
        if not ctx.audit:
            return
        record = AuditRecord(
            command=command or ctx.command,
            args=ctx.args,
            result=result,
            who=ctx.who,
            generation_before=before,
            generation_after=after,
            detail=detail,
        )
        try:
            self.audit_log.append(record)
        except SupzError as exc:
            self.table.logger().error(f"supz: {exc}")

    def _drive(self, operation: Operation) -> Any:
        return drive(operation, _fault, self, self.pacer)

    def _names(self, names: Iterable[str]) -> list[str]:
        if isinstance(names, str):
            names = [names]
        result = []
        for name in names:
            validate_name(name)
            if name not in result:
                result.append(name)
        if not result:
            raise UnknownEntry("no application named")
        return result

    def _claim(self, names: list[str], deadline: float) -> Operation:
        """Wait until no other operation holds any of `names`, then hold them."""
        while any(n in self._busy for n in names):
            if time.monotonic() >= deadline:
                raise OperationFailed(f"{', '.join(names)}: another operation on it did not finish in time")
            yield time.time() + 0.05
        self._busy.update(names)

    @property
    def specs(self) -> SpecCache:
        if self._specs is None:
            options = self.supervisord.options
            environment = getattr(getattr(options.configroot, "supervisord", None), "environment", None)
            self._specs = SpecCache(options, environment)
        return self._specs

    def _spec(self, name: str) -> ProgramSpec:
        return self.specs.spec(name, self.registry.entry_path(name, EntryState.ACTIVE))

    def _stop_deadline(self, names: Iterable[str]) -> float:
        waits = [p.config.stopwaitsecs for n in names for p in self.table.processes(n)] or [0]
        return time.monotonic() + float(max(waits)) + float(self.config.deadline_margin)

    def _start_deadline(self, names: Iterable[str]) -> float:
        secs = [p.config.startsecs for n in names for p in self.table.processes(n)] or [0]
        return time.monotonic() + float(max(secs)) + float(self.config.deadline_margin)

    def _load_and_start(self, names: list[str], outcomes: dict[str, Outcome], wait: bool) -> Operation:
        """Load each active entry not loaded yet, start every process not running, wait for RUNNING.

        Loading and spawning go in slices (`Slicer`): between two, supervisord's loop turns, so
        its clients (the vrrp check among them) are answered while a thousand programs start.
        Each entry is started in the slice that loads it: supervisord's loop spawns every loaded
        `autostart` program it finds never started, all in one turn, outside any slice.
        """
        slicer = Slicer()
        loaded = []
        spawned = []
        for name in names:
            outcome = outcomes[name]
            if not self.table.loaded(name):
                try:
                    config = self._spec(name).group_config
                except InvalidProgramFile as exc:
                    outcome.ok, outcome.status, outcome.message = False, "invalid", exc.message
                    continue
                self.table.add(config)
                loaded.append(config)
            started = self.table.start(name)
            outcome.status = outcome.status or ("started" if started else "already running")
            spawned.extend(started)
            if slicer.due():
                self.table.remember(loaded)
                loaded = []
                yield from slicer.breathe()
        self.table.remember(loaded)
        if not wait or not spawned:
            return outcomes
        failures = yield from wait_started(spawned, self._start_deadline(names))
        for process, why in failures:
            outcome = outcomes[process.group.config.name]
            outcome.ok = False
            outcome.status = "failed"
            outcome.message = f"{make_namespec(process.group.config.name, process.config.name)}: {why}"
        return outcomes

    def _stop_and_unload(self, names: list[str], outcomes: dict[str, Outcome]) -> Operation:
        """Stop every process of `names` and remove their groups; failures are marked, not raised.

        Signals are sent and groups removed in slices, as `_load_and_start` spawns.
        """
        slicer = Slicer()
        asked = []
        for name in names:
            asked.extend(self.table.stop(name))
            yield from slicer.breathe()
        still = yield from wait_stopped(asked, self._stop_deadline(names))
        stuck = {p.group.config.name for p in still}
        unloaded: set[str] = set()
        batch: list[str] = []
        for name in names:
            if name not in stuck:
                batch.append(name)
            if slicer.due():
                unloaded.update(self.table.unload_all(batch))
                batch = []
                yield from slicer.breathe()
        unloaded.update(self.table.unload_all(batch))
        for name in names:
            if name in stuck:
                outcomes[name].ok = False
                outcomes[name].status = "failed"
                outcomes[name].message = "did not stop by the deadline (stopwaitsecs plus margin)"
            elif name not in unloaded:
                outcomes[name].ok = False
                outcomes[name].status = "failed"
                outcomes[name].message = "a process is still running"
        return outcomes

    @staticmethod
    def _results(outcomes: dict[str, Outcome], before: int, after: int) -> dict[str, Any]:
        return {
            "results": [o.as_dict() for o in outcomes.values()],
            "generation_before": before,
            "generation_after": after,
        }

    @staticmethod
    def _summary(outcomes: dict[str, Outcome]) -> str:
        bad = [o for o in outcomes.values() if not o.ok]
        if not bad:
            return "ok"
        return "failed: " + "; ".join(f"{o.name}: {o.message or o.status}" for o in bad[:10])

    # ---- RPC API -------------------------------------------------------------------------

    def park(self, names: list[str] | str, context: dict[str, Any] | None = None) -> Any:
        """Stop programs and park their entries (one generation step for all); remove their groups."""
        self._update("supz.park")
        wanted = [names] if isinstance(names, str) else list(names)
        active = set(self.registry.active_names())
        everything = len(active) > 1 and active <= set(wanted)
        ctx = self._context(context, "stop", ["all"] if everything else wanted)
        return self._drive(self._park(names, ctx))

    def _park(self, names: Any, ctx: Context) -> Operation:
        require_master(self.paths, self.config.ha_enabled)
        if self.config.require_reason and not ctx.reason and not callers.current().kind == callers.INTERNAL:
            shown = ", ".join(self._names(names))
            raise PolicyRefused(f"{shown}: a reason is required to stop (park) an application "
                                f"([shell] require_reason): `supzcli stop {shown} -m TEXT`", thing=shown)
        return (yield from self._stop_then_commit(
            names, ctx, "parked", skip=EntryState.PARKED, skip_status="already parked",
            commit=lambda done: self.registry.park(done, who=ctx.who, note=ctx.note()),
        ))

    def _stop_then_commit(self, names: Any, ctx: Context, status: str, commit: Any,
                          skip: EntryState | None = None, skip_status: str = "") -> Operation:
        """Stop and unload programs, then commit the registry change for those that stopped.

        The registry moves only after the processes are gone: a program that will not stop keeps
        its entry, and the error says so.
        """
        names = self._names(names)
        for name in names:
            self.registry.get(name)
        yield from self._claim(names, time.monotonic() + 60)
        before = self.registry.generation
        try:
            outcomes = {n: Outcome(n) for n in names}
            skipped = [n for n in names if skip is not None and self.registry.get(n).state is skip]
            for name in skipped:
                outcomes[name].status = skip_status
            todo = [n for n in names if n not in skipped]
            yield from self._stop_and_unload(todo, outcomes)
            stopped = [n for n in todo if outcomes[n].ok]
            after = before
            if stopped:
                change = commit(stopped)
                before, after = change.generation_before, change.generation_after
                for name in stopped:
                    outcomes[name].status = status
            self._audit(ctx, None, self._summary(outcomes), before, after)
            return self._results(outcomes, before, after)
        finally:
            self._busy.difference_update(names)

    def unpark(self, names: list[str] | str, context: dict[str, Any] | None = None, wait: bool = True) -> Any:
        """Bring parked entries back to active and start them; start active ones not running."""
        self._update("supz.unpark")
        ctx = self._context(context, "start", [names] if isinstance(names, str) else list(names))
        return self._drive(self._unpark(names, ctx, wait))

    def _unpark(self, names: Any, ctx: Context, wait: bool) -> Operation:
        require_master(self.paths, self.config.ha_enabled)
        names = self._names(names)
        for name in names:
            self.registry.get(name)
        yield from self._claim(names, time.monotonic() + 60)
        before = self.registry.generation
        try:
            outcomes = {n: Outcome(n) for n in names}
            parked = [n for n in names if self.registry.get(n).state is EntryState.PARKED]
            after = before
            if parked:
                # Validate before moving anything: a malformed file stays parked.
                for name in list(parked):
                    try:
                        read_program_file(self.registry.entry_path(name, EntryState.PARKED), name)
                    except InvalidProgramFile as exc:
                        outcomes[name].ok, outcomes[name].status, outcomes[name].message = False, "invalid", exc.message
                        parked.remove(name)
                if parked:
                    change = self.registry.unpark(parked, who=ctx.who, note=ctx.note())
                    before, after = change.generation_before, change.generation_after
                for name in parked:
                    outcomes[name].status = "unparked"
            runnable = [n for n in names if outcomes[n].ok]
            if not self.ha_allowed():
                for name in runnable:
                    outcomes[name].message = f"active in the registry; not started: this host is {read_role(self.paths)}"
                    outcomes[name].status = outcomes[name].status or "not started"
            else:
                yield from self._load_and_start(runnable, outcomes, wait)
            self._audit(ctx, None, self._summary(outcomes), before, after)
            return self._results(outcomes, before, after)
        finally:
            self._busy.difference_update(names)

    def activate(self, context: dict[str, Any] | None = None, wait: bool = True) -> Any:
        """Load and start every active entry (the MASTER transition), in one call."""
        self._update("supz.activate")
        ctx = self._context(context, "start", ["all"])
        return self._drive(self._activate(ctx, wait))

    def _activate(self, ctx: Context, wait: bool) -> Operation:
        names = self.registry.active_names()
        yield from self._claim(names, time.monotonic() + 60)
        generation = self.registry.generation
        try:
            outcomes = {n: Outcome(n) for n in names}
            if not self.ha_allowed():
                raise OperationFailed(f"this host is {read_role(self.paths)}: HA applications run only on the MASTER")
            self.specs.forget(names)
            yield from self._load_and_start(names, outcomes, wait)
            self._audit(ctx, "activate", self._summary(outcomes), generation, generation)
            return self._results(outcomes, generation, generation)
        finally:
            self._busy.difference_update(names)

    def deactivate(self, context: dict[str, Any] | None = None) -> Any:
        """Stop and unload every HA application (the BACKUP transition); host-local ones stay."""
        self._update("supz.deactivate")
        ctx = self._context(context, "stop", ["all"])
        return self._drive(self._deactivate(ctx))

    def _deactivate(self, ctx: Context) -> Operation:
        entries = set(self.registry.entries())
        names = sorted(n for n in self.table.groups if n in entries)
        yield from self._claim(names, time.monotonic() + 60)
        generation = self.registry.generation
        try:
            outcomes = {n: Outcome(n, status="stopped") for n in names}
            yield from self._stop_and_unload(names, outcomes)
            self._audit(ctx, "deactivate", self._summary(outcomes), generation, generation)
            return self._results(outcomes, generation, generation)
        finally:
            self._busy.difference_update(names)

    def update(self, names: list[str] | None = None, context: dict[str, Any] | None = None) -> Any:
        """Apply changed entry files: load new ones, restart changed ones, unload ones gone.

        A malformed file is reported by name and skipped; the others still apply.
        """
        self._update("supz.update")
        ctx = self._context(context, "update", list(names or []))
        return self._drive(self._update_entries(names or [], ctx))

    def _update_entries(self, names: list[str], ctx: Context) -> Operation:
        wanted = self._names(names) if names else None
        self._recover(ctx)
        entries = self.registry.entries()
        if wanted:
            for name in wanted:
                if name not in entries:
                    raise UnknownEntry(f"{name}: no such application in the registry", thing=name)
        scope = wanted or sorted(set(entries) | {n for n in self.table.groups if n in entries})
        yield from self._claim(scope, time.monotonic() + 60)
        generation = self.registry.generation
        try:
            outcomes: dict[str, Outcome] = {}
            to_stop: list[str] = []
            to_start: list[str] = []
            for name in scope:
                entry = entries.get(name)
                outcome = outcomes[name] = Outcome(name)
                if entry is None or entry.state is EntryState.PARKED or not self.ha_allowed():
                    if self.table.loaded(name):
                        to_stop.append(name)
                        outcome.status = "removed"
                    else:
                        outcome.status = "unchanged"
                    continue
                try:
                    spec = self._spec(name)
                except InvalidProgramFile as exc:
                    outcome.ok, outcome.status, outcome.message = False, "invalid", exc.message
                    continue
                group = self.table.groups.get(name)
                if group is None:
                    to_start.append(name)
                    outcome.status = "added"
                elif group.config != spec.group_config:
                    to_stop.append(name)
                    to_start.append(name)
                    outcome.status = "updated"
                else:
                    outcome.status = "unchanged"
            yield from self._stop_and_unload(to_stop, outcomes)
            # Loaded by _load_and_start, each started in the slice that loads it.
            startable = [n for n in to_start if outcomes[n].ok]
            yield from self._load_and_start(startable, outcomes, wait=True)
            changed = [o for o in outcomes.values() if o.status != "unchanged" or not o.ok]
            if changed:
                self._audit(ctx, None, self._summary(outcomes), generation, generation)
            return self._results(outcomes, generation, generation)
        finally:
            self._busy.difference_update(scope)

    def remove(self, names: list[str] | str, context: dict[str, Any] | None = None) -> Any:
        """Stop programs and delete their entries; the last content is kept under var/lib/supz/removed."""
        self._update("supz.remove")
        ctx = self._context(context, "remove", [names] if isinstance(names, str) else list(names))
        return self._drive(self._remove(names, ctx))

    def _remove(self, names: Any, ctx: Context) -> Operation:
        require_master(self.paths, self.config.ha_enabled)
        return (yield from self._stop_then_commit(
            names, ctx, "removed",
            commit=lambda done: self.registry.remove(done, who=ctx.who, keep_in=self.paths.removed, note=ctx.note()),
        ))

    def audit(self, context: dict[str, Any], result: str) -> bool:
        """Append one audit line for a command done through supervisor's own API (restart, signal...)."""
        self._update("supz.audit")
        ctx = Context(context, self.config.host)
        ctx.audit = True
        generation = self.registry.generation
        self._audit(ctx, None, str(result), generation, generation)
        return True

def make_rpcinterface(supervisord: Any, **config: str) -> SupzNamespaceRPCInterface:
    """supervisord's factory hook: `root` names the host root (default $SUPZ_ROOT or /)."""
    paths = resolve_root(config.get("root"))
    # Every program this supervisord spawns inherits the mark: `leftovers.sweep` finds them all
    # should this supervisord die.
    name, value = mark(paths)
    os.environ[name] = value
    try:
        supz_config = load_config(read_config(paths.config_file))
    except SupzError as exc:
        supervisord.options.logger.critical(f"supz: {exc}; using defaults")
        supz_config = SupzConfig()
    pacer = install(supervisord, fast_spawn=supz_config.fast_spawn)
    interface = SupzNamespaceRPCInterface(supervisord, paths, supz_config, pacer)
    interface.on_start()
    gate.install(interface)
    return interface


__all__ = ["make_rpcinterface", "SupzNamespaceRPCInterface", "Faults"]
