"""`supz.restart`: stop then start programs inside supervisord, the registry unchanged.

Its own method because a stop through supervisor's API parks a registry application (gate.py):
a restart is not an operator's stop. Mixed into `SupzNamespaceRPCInterface` (rpc.py), which
provides `registry`, `table`, `config`, `_context`, `_drive`, `_claim`, `_audit`, the deadlines
and `_summary`/`_results`.
"""

from __future__ import annotations

import time
from typing import Any

from supervisor.states import RUNNING_STATES as _STOPPABLE

from supz.errors import UnknownEntry
from supz.names import validate_name
from supz.registry import EntryState
from supz.supervisord.engine import Operation, Outcome, wait_started, wait_stopped


class RestartMethods:
    registry: Any
    table: Any
    config: Any

    def restart(self, names: list[str] | str, context: dict[str, Any] | None = None) -> Any:
        """Restart programs: `NAME` (every process of it), `NAME:PROC` (one), or `all` (every
        loaded program). A parked application is refused: `start` brings it back."""
        self._update("supz.restart")  # type: ignore[attr-defined]
        specs = [names] if isinstance(names, str) else list(names)
        ctx = self._context(context, "restart", specs)  # type: ignore[attr-defined]
        return self._drive(self._restart(specs, ctx))  # type: ignore[attr-defined]

    def _restart_targets(self, specs: list[str], failed: dict[str, Outcome]) -> list[Any]:
        """The processes to restart; a spec that names nothing restartable goes to `failed`."""
        if "all" in specs:
            specs = sorted(self.table.groups)
        targets: list[Any] = []
        for spec in specs:
            group, _, process = spec.partition(":")
            validate_name(group)
            try:
                parked = self.registry.get(group).state is EntryState.PARKED
            except UnknownEntry:
                parked = False
            if parked:
                failed[spec] = Outcome(spec, ok=False, status="parked", message=f"'start {group}' brings it back")
                continue
            chosen = [p for p in self.table.processes(group) if process in ("", "*") or p.config.name == process]
            if not chosen:
                failed[spec] = Outcome(spec, ok=False, status="failed", message="not loaded on this host")
            targets += [p for p in chosen if not any(p is t for t in targets)]
        return targets

    def _restart(self, specs: list[str], ctx: Any) -> Operation:
        """One result per process restarted (NAME:PROC), or per spec that could not be."""
        groups = sorted({spec.partition(":")[0] for spec in specs if spec != "all"} or set(self.table.groups))
        yield from self._claim(groups, time.monotonic() + 60)  # type: ignore[attr-defined]
        generation = self.registry.generation
        try:
            outcomes: dict[str, Outcome] = {}
            targets = self._restart_targets(specs, outcomes)
            for process in targets:
                outcomes[_namespec(process)] = Outcome(_namespec(process), status="restarted")
            asked = [p for p in targets if p.get_state() in _STOPPABLE]
            for process in asked:
                process.stop()
            stuck = yield from wait_stopped(asked, self._stop_deadline(groups))  # type: ignore[attr-defined]
            for process in stuck:
                outcome = outcomes[_namespec(process)]
                outcome.ok, outcome.status, outcome.message = False, "failed", "did not stop by the deadline"
            spawned = [p for p in targets if outcomes[_namespec(p)].ok]
            for process in spawned:
                process.spawn()
            failures = yield from wait_started(spawned, self._start_deadline(groups))  # type: ignore[attr-defined]
            for process, why in failures:
                outcome = outcomes[_namespec(process)]
                outcome.ok, outcome.status, outcome.message = False, "failed", why
            self._audit(ctx, None, self._summary(outcomes), generation, generation)  # type: ignore[attr-defined]
            return self._results(outcomes, generation, generation)  # type: ignore[attr-defined]
        finally:
            self._busy.difference_update(groups)  # type: ignore[attr-defined]


def _namespec(process: Any) -> str:
    """GROUP:PROCESS always (supervisor's make_namespec writes a lone name for a one-process group)."""
    return f"{process.group.config.name}:{process.config.name}"

