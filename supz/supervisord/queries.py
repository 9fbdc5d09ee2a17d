"""The read-only half of the supz extension: registry, status and classification queries.

Mixed into `SupzNamespaceRPCInterface` (rpc.py), which provides `registry`, `table`, `paths`,
`config`, `_stock`, `_update`, `_names` and `ha_allowed`. Nothing here changes anything.
"""

from __future__ import annotations

import json
from typing import Any

from supervisor.options import make_namespec
from supervisor.states import RUNNING_STATES, ProcessStates, getProcessStateDescription

from supz import __version__
from supz.audit import AuditLog
from supz.errors import InvalidProgramFile, SupzError, UnknownEntry
from supz.history import describe_park
from supz.names import validate_name
from supz.programfile import parse_program_text, sha256_text
from supz.registry import EntryState
from supz.role import read_role
from supz.supervisord.faults import as_rpc_error as _fault

API_VERSION = "1"
# Not drift: running, or on its way there.
SETTLED = (ProcessStates.RUNNING, ProcessStates.STARTING)


class QueryMethods:
    """RPC methods that only read: any number of them may run while operations wait."""

    registry: Any
    table: Any
    paths: Any
    config: Any
    _stock: Any

    def _update(self, text: str) -> None:  # provided by the interface
        raise NotImplementedError

    def _names(self, names: Any) -> list[str]:  # provided by the interface
        raise NotImplementedError

    def ha_allowed(self) -> bool:  # provided by the interface
        raise NotImplementedError

    def getAPIVersion(self) -> str:
        """The supz extension's API version."""
        return API_VERSION

    def getVersion(self) -> str:
        """The supz package version running inside supervisord."""
        return __version__

    def history(self, count: int = 20) -> str:
        """The last `count` audit records (0: all), one JSON object per line, as stored.

        Operators with only the socket cannot read the audit log itself (it names who did what
        on the whole host); supervisord reads it for them.
        """
        self._update("supz.history")
        try:
            records = AuditLog(self.paths.audit_log).tail(int(count) or None)
        except SupzError as exc:
            raise _fault(exc) from exc
        return "\n".join(json.dumps(record, sort_keys=True) for record in records)

    def registryHistory(self) -> str:
        """The registry's history (the manifest's, the same on every host), one JSON object per line."""
        self._update("supz.registryHistory")
        try:
            lines = self.registry.manifest().history
        except SupzError as exc:
            raise _fault(exc) from exc
        return "\n".join(json.dumps(line, sort_keys=True) for line in lines)

    def getRegistry(self) -> dict[str, Any]:
        """Active and parked entries, the generation and the role, in one call."""
        self._update("supz.getRegistry")
        try:
            manifest = self.registry.manifest()
            return {
                "active": self.registry.active_names(),
                "parked": self.registry.parked_names(),
                "generation": manifest.generation,
                "changed_by": manifest.user,
                "changed_at": manifest.time,
                "changed_on": manifest.host,
                "role": read_role(self.paths),
                "ha_allowed": self.ha_allowed(),
                "host": self.config.host,
            }
        except SupzError as exc:
            raise _fault(exc) from exc

    def getEntries(self, names: list[str]) -> dict[str, Any]:
        """State ('' when unknown), sha256 and working directory of each named entry.

        Lets a socket user (sup_run.sh) tell whether its program file is the registered one
        without reading the registry, whose files may carry secrets in their environment.
        """
        self._update("supz.getEntries")
        answer: dict[str, Any] = {}
        try:
            for name in self._names(names):
                try:
                    entry = self.registry.get(name)
                except UnknownEntry:
                    answer[name] = {"state": "", "sha256": "", "directory": ""}
                    continue
                text = self.registry.read_text(name)
                try:
                    configs = parse_program_text(text, name).group_config.process_configs
                    directory = (configs[0].directory if configs else None) or ""
                except InvalidProgramFile:
                    directory = ""
                answer[name] = {"state": entry.state.value, "sha256": sha256_text(text), "directory": directory}
        except SupzError as exc:
            raise _fault(exc) from exc
        return answer

    def status(self) -> str:
        """Every process and parked entry, one tab-separated line each: name, state, description.

        One string instead of a struct per process: at 2000 programs the marshalling of
        getAllProcessInfo is what makes `supervisorctl status` slow.
        """
        self._update("supz.status")
        lines = []
        for _group, process in self._stock._getAllProcesses(lexical=True):
            info = self._stock.getProcessInfo(make_namespec(process.group.config.name, process.config.name))
            namespec = make_namespec(info["group"], info["name"])
            lines.append(f"{namespec}\t{info['statename']}\t{info['description']}")
        try:
            parked = self.registry.parked_names()
            active = self.registry.active_names()
            notes = self.registry.manifest().notes if parked else {}
        except SupzError as exc:
            raise _fault(exc) from exc
        for name in parked:
            if not self.table.loaded(name):
                said = describe_park(notes.get(name))
                lines.append(f"{name}\tPARKED\t{said or 'stopped on purpose'}: 'start {name}' brings it back")
        for name in active:
            if not self.table.loaded(name):
                why = "not loaded: this host is not MASTER" if not self.ha_allowed() else "not loaded: run 'update'"
                lines.append(f"{name}\tINACTIVE\t{why}")
        lines.sort(key=lambda line: line.split("\t", 1)[0])
        return "\n".join(lines)

    def resolve(self, names: list[str]) -> dict[str, Any]:
        """Classify names in one call: a registry entry (active/parked), a process of one,
        a host-local group or process, or unknown. Lets the shell route a command without
        fetching every process's info."""
        self._update("supz.resolve")
        answer: dict[str, Any] = {}
        try:
            for spec in names:
                group, _, process = spec.partition(":")
                validate_name(group)
                if process and process != "*":
                    validate_name(process)
                loaded = self.table.groups.get(group)
                try:
                    state = self.registry.get(group).state.value
                except UnknownEntry:
                    state = ""
                kind = state or ("local" if loaded is not None else "unknown")
                processes = sorted(loaded.processes) if loaded is not None else []
                if process and process != "*" and process not in processes:
                    kind = "unknown"
                answer[spec] = {"kind": kind, "group": group, "process": process if process != "*" else "",
                                "processes": processes, "loaded": loaded is not None}
        except SupzError as exc:
            raise _fault(exc) from exc
        return answer

    def isHA(self, name: str) -> bool:
        """Is `name` a registry application (as opposed to a host-local program)?"""
        self._update("supz.isHA")
        try:
            self.registry.get(name)
        except UnknownEntry:
            return False
        except SupzError as exc:
            raise _fault(exc) from exc
        return True

    def running(self) -> list[str]:
        """Namespecs of every process in a running state: a cheap check for the failover hooks."""
        self._update("supz.running")
        return [
            make_namespec(g.config.name, p.config.name)
            for g, p in self._stock._getAllProcesses(lexical=True)
            if p.get_state() in RUNNING_STATES
        ]

    def drift(self) -> list[dict[str, str]]:
        """Where supervisord differs from the registry, one item per application: an active entry
        not RUNNING (stopped by hand, exited, FATAL) or not loaded where it should run, a parked
        entry still running, an entry loaded on a host that must run none. Each item: name, state
        (supervisord's, or NOT LOADED), why."""
        self._update("supz.drift")
        try:
            entries = self.registry.entries()
        except SupzError as exc:
            raise _fault(exc) from exc
        may_run = self.ha_allowed()
        found = []
        for name, entry in entries.items():
            processes = self.table.processes(name)
            states = sorted({p.get_state() for p in processes})
            names = sorted({getProcessStateDescription(s) for s in states})
            if entry.state is EntryState.PARKED:
                if any(s in RUNNING_STATES for s in states):
                    found.append({"name": name, "state": ",".join(names), "why": "parked, but running"})
            elif not may_run:
                if processes:
                    found.append({"name": name, "state": ",".join(names),
                                  "why": f"loaded on a host that runs no application (role {read_role(self.paths)})"})
            elif not processes:
                found.append({"name": name, "state": "NOT LOADED", "why": "active in the registry, not loaded"})
            elif any(s not in SETTLED for s in states):
                bad = sorted({getProcessStateDescription(s) for s in states if s not in SETTLED})
                found.append({"name": name, "state": ",".join(bad),
                              "why": "active in the registry, not RUNNING (start it, or stop it with supzcli to park it)"})
        return found
