"""The supz policy and the registry's meaning, enforced inside supervisord for every client.

supervisor's own API (stock supervisorctl, the web UI, any XML-RPC client) is wrapped once, when
the extension loads:

- a caller that is not root (by the socket's peer credentials, `caller.py`) cannot run what the
  policy refuses (shutdown and reload by default), nor an operation the policy wants confirmed
  (`stop all`, `remove`): supervisor's API has no way to carry a confirmation, supz's calls do;
- stopping a registry application parks it and starting a parked one unparks it, with an audit
  line naming the caller, so the registry stays the truth whatever tool was used. One process of
  a multi-process application stops as before (the entry stays active); host-local programs
  keep supervisor's behaviour; `stopAllProcesses` on registry applications is refused, since it
  cannot park them, and so is `removeProcessGroup` of one;
- `reloadConfig` (supervisorctl's reread and update) reads only supervisor's own files, which
  do not include the registry: the registry's loaded groups stay known and out of its difference.

supervisord's own code (its start, deferred steps) runs as the internal caller and is never held.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from supervisor.http import NOT_DONE_YET
from supervisor.xmlrpc import Faults, RPCError

from supz.config import ShellPolicy
from supz.errors import PolicyRefused, SupzError, UnknownEntry
from supz.policy import Verdict, decide
from supz.registry import EntryState
from supz.supervisord import caller as callers
from supz.supervisord.faults import as_rpc_error

# supervisor's RPC methods as the supzcli command words the policy speaks of.
METHOD_COMMANDS: dict[str, str] = {
    "shutdown": "shutdown",
    "restart": "reload",
    "reloadConfig": "update",
    "addProcessGroup": "add",
    "removeProcessGroup": "remove",
    "stopAllProcesses": "stop",
    "startAllProcesses": "start",
    "stopProcessGroup": "stop",
    "stopProcess": "stop",
    "startProcessGroup": "start",
    "startProcess": "start",
    "signalAllProcesses": "signal",
    "signalProcessGroup": "signal",
    "signalProcess": "signal",
    "clearLog": "clear",
    "clearAllProcessLogs": "clear",
    "clearProcessLogs": "clear",
    "sendProcessStdin": "fg",
}
ON_ALL = {"stopAllProcesses", "startAllProcesses", "signalAllProcesses", "clearAllProcessLogs"}
_MARK = "_supz_gate_installed"
_interface: Any = None


def permit(policy: ShellPolicy, who: callers.Caller, command: str, args: list[str], confirmed: bool) -> None:
    """Raise PolicyRefused when the policy refuses `command` to a caller that does not own this
    supervisord (root, or the user it runs as), or wants it confirmed and the call carries no
    confirmation. An owner is held by supzcli's prompt only."""
    if who.owns_supervisord:
        return
    decision = decide(policy, command, args)
    if decision.verdict is Verdict.REFUSE:
        raise PolicyRefused(f"refused for {who.user}: '{command}' is disabled by the supz policy", thing=command)
    if decision.verdict is Verdict.CONFIRM and not confirmed:
        raise PolicyRefused(f"refused for {who.user}: '{decision.rule}' needs a confirmation in the call "
                            f"(supzcli asks for it; in one-shot mode add --yes)", thing=command)


def then(result: Any, convert: Callable[[Any], Any]) -> Any:
    """Apply `convert` to an operation's answer, now or, for a deferred one, when it is ready."""
    if not callable(result):
        return convert(result)

    def step() -> Any:
        value = result()
        return value if value is NOT_DONE_YET else convert(value)

    step.delay = result.delay  # type: ignore[attr-defined]
    step.rpcinterface = result.rpcinterface  # type: ignore[attr-defined]
    return step


def _process_results(answer: dict[str, Any], specs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """A supz bulk answer for one group as supervisor's per-process results."""
    outcome = answer["results"][0]
    status, description = (Faults.SUCCESS, "OK") if outcome["ok"] else (Faults.FAILED, outcome["message"])
    return [{"name": name, "group": group, "status": status, "description": description} for group, name in specs]


def _single_result(answer: dict[str, Any]) -> bool:
    outcome = answer["results"][0]
    if not outcome["ok"]:
        raise RPCError(Faults.FAILED, f"{outcome['name']}: {outcome['message'] or outcome['status']}")
    return True


class Gate:
    """Routes supervisor's stop and start of registry applications through park and unpark."""

    def __init__(self, interface: Any) -> None:
        self.interface = interface

    def call(self, method: str, original: Callable[..., Any], stock: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        who = callers.current()
        if who.kind == callers.INTERNAL:
            return original(stock, *args, **kwargs)
        words = ["all"] if method in ON_ALL else [str(a) for a in args[:1] if isinstance(a, str)]
        try:
            permit(self.interface.config.policy, who, METHOD_COMMANDS[method], words, confirmed=False)
            if method == "stopAllProcesses":
                self._refuse_stop_all()
            routed = None
            if method == "removeProcessGroup" and args and self._entry_state(str(args[0])) is not None:
                raise PolicyRefused(f"{args[0]}: a registry application: 'supzcli stop {args[0]}' parks it, "
                                    f"'supzcli remove {args[0]}' deletes its entry", thing=str(args[0]))
            if method in ("stopProcessGroup", "stopProcess") and args:
                routed = self._park(method, str(args[0]))
            elif method in ("startProcessGroup", "startProcess") and args:
                routed = self._unpark(method, str(args[0]))
        except SupzError as exc:
            raise as_rpc_error(exc) from exc
        if routed is not None:
            return routed
        answer = original(stock, *args, **kwargs)
        if method == "reloadConfig":
            answer = self._keep_registry_groups(answer)
        return answer

    def _keep_registry_groups(self, answer: Any) -> Any:
        """supervisor re-read its files, which do not name registry applications: keep their loaded
        configs in its list and leave them out of the difference, so `update` never unloads one."""
        entries = set(self.interface.registry.entries())
        options = self.interface.supervisord.options
        known = {c.name for c in options.process_group_configs}
        options.process_group_configs.extend(
            group.config for name, group in self.interface.table.groups.items() if name in entries and name not in known
        )
        return [[[n for n in names if n not in entries] for names in diff] for diff in answer]

    def _entry_state(self, group: str) -> EntryState | None:
        try:
            return self.interface.registry.get(group).state  # type: ignore[no-any-return]
        except UnknownEntry:
            return None

    def _refuse_stop_all(self) -> None:
        registry = self.interface.registry
        running = [n for n in registry.active_names() if self.interface.table.loaded(n)]
        if running:
            raise PolicyRefused("refused: stopping every process would leave the registry saying "
                                f"{len(running)} application(s) must run: 'supzcli stop all' parks them "
                                "(or stop them by name)", thing="stop all")

    def _park(self, method: str, name: str) -> Any:
        group, _, process = name.partition(":")
        if self._entry_state(group) is not EntryState.ACTIVE:
            return None
        processes = self.interface.table.processes(group)
        if process not in ("", "*") and len(processes) > 1:
            return None  # one process of several: it stops, the entry stays active
        specs = [(group, p.config.name) for p in processes]
        if self.interface.config.require_reason:
            # supervisor's clients cannot give one; FAILED is the fault they print as it is.
            raise RPCError(Faults.FAILED, f"{group}: ERROR (refused: a reason is required to stop (park) it: "
                                          f"`supzcli stop {group} -m TEXT`)")
        ctx = self.interface.context_of_caller("stop", [name])
        answer = self.interface._drive(self.interface._park([group], ctx))
        if method == "stopProcessGroup":
            return then(answer, lambda value: _process_results(value, specs))
        return then(answer, _single_result)

    def _unpark(self, method: str, name: str) -> Any:
        group = name.partition(":")[0]
        state = self._entry_state(group)
        if state is None or (state is EntryState.ACTIVE and self.interface.table.loaded(group)):
            return None
        ctx = self.interface.context_of_caller("start", [name])
        answer = self.interface._drive(self.interface._unpark([group], ctx, True))

        def started(value: dict[str, Any]) -> Any:
            outcome = value["results"][0]
            if outcome["ok"] and not self.interface.table.loaded(group):
                raise RPCError(Faults.FAILED, f"{group}: {outcome['message'] or 'not started'}")
            if method == "startProcessGroup":
                return _process_results(value, [(group, p.config.name) for p in self.interface.table.processes(group)])
            return _single_result(value)

        return then(answer, started)


def install(interface: Any) -> None:
    """Wrap supervisor's RPC methods (once per process); `interface` is the loaded supz extension."""
    from supervisor.rpcinterface import SupervisorNamespaceRPCInterface

    global _interface
    _interface = Gate(interface)
    callers.install()
    if getattr(SupervisorNamespaceRPCInterface, _MARK, False):
        return
    for method in METHOD_COMMANDS:
        original = getattr(SupervisorNamespaceRPCInterface, method)

        def wrapper(stock: Any, *args: Any, _method: str = method, _original: Any = original, **kwargs: Any) -> Any:
            if _interface is None:
                return _original(stock, *args, **kwargs)
            return _interface.call(_method, _original, stock, args, kwargs)

        setattr(SupervisorNamespaceRPCInterface, method, functools.wraps(original)(wrapper))
    setattr(SupervisorNamespaceRPCInterface, _MARK, True)
