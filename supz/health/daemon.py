"""`supz health run`: probe every registry application that has health settings, concurrently on
one asyncio loop, and restart what stays unhealthy, within its budget.

It acts only where applications run (a standalone host, or the MASTER of a pair); elsewhere it
idles and says so in its state file. It never touches a parked application, a process that is
not RUNNING (starting, stopping, backing off) or one still in its start period. Restarts go
through the extension's `supz.restart` (the registry unchanged, an audit line naming why); a
spent budget leaves the application, parks it (`supz.park`, the reason in the audit), or makes
the vrrp check fail (`supz_health_exhausted = failover`) so the peer takes over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from supz.audit import AuditLog, AuditRecord, current_who
from supz.config import load_config, read_config
from supz.errors import SupzError
from supz.health import policy
from supz.health.probes import new_session, probe
from supz.health.settings import Exhausted, HealthSettings, Target, entry_targets
from supz.health.state import write_state
from supz.paths import HostPaths
from supz.programfile import sha256_text
from supz.registry import Registry
from supz.role import HA_ROLE, read_role
from supz.supervisord.client import SupervisorClient

log = logging.getLogger("supz.health")

# How often the daemon looks at the role, the registry and supervisord's process table.
REFRESH = 2.0
# How often the state file is rewritten (when something changed).
WRITE_EVERY = 1.0


@dataclass
class AppView:
    settings: HealthSettings | None = None
    error: str = ""
    sha: str = ""
    targets: list[Target] = field(default_factory=list)
    busy: bool = False          # a restart or park of it is under way
    parked_reason: str = ""


class HealthDaemon:
    def __init__(self, paths: HostPaths, *, client: Callable[[], SupervisorClient] | None = None,
                 refresh: float = REFRESH) -> None:
        self.paths = paths
        self.client = client or (lambda: SupervisorClient.for_host(paths))
        self.refresh = refresh
        config = load_config(read_config(paths.config_file))
        self.ha = config.ha_enabled
        self.registry = Registry(paths, host=config.host)
        self.audit = AuditLog(paths.audit_log)
        self.apps: dict[str, AppView] = {}
        self.parked: dict[str, str] = {}          # parked application -> why (when health parked it)
        self.states: dict[str, policy.TargetState] = {}
        self.processes: dict[str, dict[str, Any]] = {}
        self.failover: set[str] = set()
        self.acting = False
        self.role = ""
        self.generation = -1
        self.supervisord_error = ""
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.session: Any = None
        self.dirty = True
        self.stopping: asyncio.Event | None = None

    # ---- the world ------------------------------------------------------------------------

    def _load_registry(self) -> None:
        """Targets of every active entry; re-read only when the manifest's generation moves."""
        generation = self.registry.generation
        if generation == self.generation:
            return
        self.generation = generation
        apps: dict[str, AppView] = {}
        for name in self.registry.active_names():
            try:
                text = self.registry.read_text(name)
            except SupzError as exc:
                apps[name] = AppView(error=str(exc))
                continue
            sha = sha256_text(text)
            old = self.apps.get(name)
            if old is not None and old.sha == sha:
                apps[name] = old
                continue
            view = AppView(sha=sha)
            try:
                view.targets = entry_targets(text, name)
                view.settings = view.targets[0].settings if view.targets else None
            except SupzError as exc:
                view.error = str(exc)
            apps[name] = view
        self.parked = {n: self.parked.get(n, "") for n in self.registry.parked_names()}
        self.apps = {n: v for n, v in apps.items() if v.targets or v.error}
        wanted = {t.namespec: t for v in self.apps.values() for t in v.targets}
        for namespec in list(self.tasks):
            if namespec not in wanted or self._target(namespec) is not wanted[namespec]:
                self.tasks.pop(namespec).cancel()
                self.states.pop(namespec, None)
        for namespec, target in wanted.items():
            if namespec not in self.tasks:
                self.states.setdefault(namespec, policy.TargetState())
                self.tasks[namespec] = asyncio.ensure_future(self._watch(target))
        self.failover &= set(self.apps)
        self.dirty = True

    def _target(self, namespec: str) -> Target | None:
        app = self.apps.get(namespec.partition(":")[0])
        return next((t for t in app.targets if t.namespec == namespec), None) if app else None

    def _read_processes(self) -> dict[str, dict[str, Any]]:
        with self.client() as client:
            infos = client.supervisor("getAllProcessInfo")
        return {f"{i['group']}:{i['name']}": i for i in infos}

    async def _refresh(self) -> None:
        role = read_role(self.paths)
        acting = not self.ha or role == HA_ROLE
        if acting != self.acting or role != self.role:
            self.dirty = True
            if not acting:
                self._reset()
            log.info("role %s: %s", role, "probing" if acting else "idle (applications run on the MASTER)")
        self.role, self.acting = role, acting
        if not acting:
            return
        try:
            self._load_registry()
            if not self.apps:
                self.processes = {}
                return
            self.processes = await asyncio.get_running_loop().run_in_executor(None, self._read_processes)
            self.supervisord_error = ""
        except SupzError as exc:
            if self.supervisord_error != str(exc):
                log.warning("%s", exc)
            self.supervisord_error = str(exc)
            self.processes = {}

    def _reset(self) -> None:
        """Not acting (any more): forget everything, so a later MASTER term starts afresh."""
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()
        self.states.clear()
        self.apps.clear()
        self.failover.clear()
        self.generation = -1

    # ---- probing --------------------------------------------------------------------------

    def _hold(self, target: Target, now: float) -> str:
        """Why `target` is not probed now ("" when it is)."""
        view = self.apps.get(target.app)
        if view is None:
            return "not active"
        if view.busy:
            return "restarting"
        info = self.processes.get(target.namespec)
        if info is None:
            return "not loaded" if not self.supervisord_error else "supervisord not answering"
        if info.get("statename") != "RUNNING":
            return str(info.get("statename", "")).lower()
        started = float(info.get("start") or 0)
        restarted = max(self.states[target.namespec].restarts, default=0.0)
        if now - max(started, restarted) < target.settings.start_period:
            return "start period"
        return ""

    async def _watch(self, target: Target) -> None:
        settings = target.settings
        await asyncio.sleep(random.uniform(0, min(settings.interval, 1.0)))
        while True:
            state = self.states[target.namespec]
            hold = self._hold(target, time.time())
            if hold:
                if state.note != hold:
                    state.note = hold
                    self.dirty = True
            else:
                result = await probe(target, self.session)
                if self._target(target.namespec) is not target or not self.acting:
                    return
                before = (state.status, state.failures)
                policy.observe(state, result, settings)
                if (state.status, state.failures) != before and state.status != policy.HEALTHY:
                    log.info("%s: %s (%s)", target.namespec, state.status, result.describe())
                elif before[0] != state.status:
                    log.info("%s: %s", target.namespec, state.status)
                self.dirty = True
                self._act(target, state, time.time())
            await asyncio.sleep(settings.interval)

    def _act(self, target: Target, state: policy.TargetState, now: float) -> None:
        settings = target.settings
        action = policy.decide(state, settings, now)
        view = self.apps[target.app]
        if action is policy.Action.RESTART and not view.busy:
            view.busy = True
            why = policy.reason_line(state, settings)
            asyncio.ensure_future(self._run_restart(target, view, state, why))
        elif action is policy.Action.EXHAUSTED:
            state.exhausted = True
            why = policy.exhausted_reason(state, settings)
            log.warning("%s: restart budget spent (%s): %s", target.namespec, settings.exhausted.value, why)
            if settings.exhausted is Exhausted.PARK and not view.busy:
                view.busy = True
                asyncio.ensure_future(self._run_park(target, view, why))
            elif settings.exhausted is Exhausted.FAILOVER:
                self.failover.add(target.app)
                self._audit("health failover", [target.process, why], "check fails")
            else:
                self._audit("health exhausted", [target.process, why], "left running")

    def _audit(self, command: str, args: list[str], result: str) -> None:
        try:
            self.audit.append(AuditRecord(command=command, args=args, result=result,
                                          who=current_who(self.registry.host)))
        except SupzError as exc:
            log.error("%s", exc)

    def _call(self, method: str, names: list[str], ctx: dict[str, Any]) -> Any:
        with self.client() as client:
            return client.supz(method, names, ctx)

    def _still_restartable(self, target: Target) -> str:
        """Why `target` must not be restarted now, asked afresh ("" when it may be): the
        snapshot the probes ran on may be seconds old (a park or a stop under way since)."""
        from supz.registry import EntryState

        if self.registry.get(target.app).state is not EntryState.ACTIVE:
            return "parked"
        with self.client() as client:
            info = client.supervisor("getProcessInfo", target.namespec)
        if info.get("statename") != "RUNNING":
            return str(info.get("statename", "")).lower()
        if float(info.get("now", 0)) - float(info.get("start", 0)) < target.settings.start_period:
            return "start period"
        return ""

    def _restart(self, target: Target, ctx: dict[str, Any]) -> tuple[str, Any]:
        hold = self._still_restartable(target)
        if hold:
            return hold, None
        return "", self._call("restart", [target.namespec], ctx)

    async def _run_restart(self, target: Target, view: AppView, state: policy.TargetState, why: str) -> None:
        ctx = {"command": "health restart", "args": [target.process, why], "confirmed": True}
        try:
            hold, answer = await asyncio.get_running_loop().run_in_executor(None, self._restart, target, ctx)
            if hold:
                log.info("health restart %s skipped: %s", target.process, hold)
                state.note, state.failures, state.status = hold, 0, policy.UNKNOWN
                return
            log.warning("health restart %s: %s", target.process, why)
            policy.restarted(state, time.time())
            for result in answer.get("results", []):
                if not result.get("ok"):
                    log.error("health restart %s failed: %s", result.get("name"), result.get("message"))
        except SupzError as exc:
            log.error("health restart %s failed: %s", target.namespec, exc)
        finally:
            view.busy = False
            self.dirty = True

    async def _run_park(self, target: Target, view: AppView, why: str) -> None:
        reason = f"parked by health: {target.process} {why}"
        log.warning("health park %s: %s", target.app, why)
        ctx = {"command": "health park", "args": [target.app, reason], "confirmed": True}
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._call, "park", [target.app], ctx)
            self.parked[target.app] = reason
        except SupzError as exc:
            log.error("health park %s failed: %s", target.app, exc)
        finally:
            view.busy = False
            self.dirty = True

    # ---- the state file -------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, Any]:
        apps: dict[str, Any] = {}
        for name, view in self.apps.items():
            apps[name] = {"settings": view.settings.as_dict() if view.settings else {}, "error": view.error,
                          "processes": [t.namespec for t in view.targets]}
        for name, reason in self.parked.items():
            if reason:
                apps[name] = {"settings": {}, "error": "", "processes": [], "parked": reason}
        targets: dict[str, Any] = {}
        for namespec, state in self.states.items():
            target = self._target(namespec)
            if target is None:
                continue
            if target.settings:
                policy.restarts_in_window(state, target.settings, now)
            targets[namespec] = dict(state.as_dict(), app=target.app, probe=target.target)
        return {"updated": now, "pid": os.getpid(), "role": self.role, "acting": self.acting,
                "ha": self.ha, "supervisord_error": self.supervisord_error, "apps": apps,
                "targets": targets, "failover": sorted(self.failover)}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        self.session = new_session()
        last_refresh = last_write = 0.0
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now - last_refresh >= self.refresh:
                    last_refresh = now
                    await self._refresh()
                if (self.dirty and now - last_write >= WRITE_EVERY) or now - last_write >= 10:
                    last_write = now
                    self.dirty = False
                    try:
                        write_state(self.paths, self.snapshot(time.time()))
                    except SupzError as exc:
                        log.error("%s", exc)
                try:
                    await asyncio.wait_for(self.stopping.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._reset()
            await self.session.close()


def run(paths: HostPaths) -> int:
    """The daemon's main: log lines to stderr (supervisord writes them to var/log/supz/health.log)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    daemon = HealthDaemon(paths)
    asyncio.run(daemon.run())
    return 0
