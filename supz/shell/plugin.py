"""supzcli's commands: supervisorctl's, made registry-aware.

`stop` parks, `start` unparks, `restart` never touches the registry, `status`/`avail` show
parked applications, `update` applies changed entry files one by one. Host-local programs
(the syncer, agents) keep supervisorctl's plain behaviour.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from supervisor.supervisorctl import DefaultControllerPlugin, LSBInitExitStatuses, LSBStatusExitStatuses
from supervisor.xmlrpc import Faults

from supz.errors import SupervisorFault, SupzError
from supz.health.state import read_state, with_health
from supz.supervisord.client import SupervisorClient, context

RUNNING_STATES = ("RUNNING", "STARTING", "BACKOFF")


def supz_command(method: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    """Turn any SupzError from a command into one line and the exit code it carries."""

    @functools.wraps(method)
    def wrapper(self: SupzControllerPlugin, arg: str) -> None:
        try:
            method(self, arg)
        except SupzError as exc:
            self.ctl.output(f"error: {exc}")
            self.ctl.exitstatus = int(exc.exit_code)

    return wrapper


class SupzControllerPlugin(DefaultControllerPlugin):
    name = "supz"

    # ---- plumbing ------------------------------------------------------------------------

    def _client(self) -> SupervisorClient:
        options = self.ctl.options
        return SupervisorClient(options.serverurl, options.username, options.password)

    def _fail(self, code: int) -> None:
        """Keep the worst exit status of a multi-name command."""
        if code and (not self.ctl.exitstatus or code > self.ctl.exitstatus):
            self.ctl.exitstatus = code

    def _print_results(self, answer: dict[str, Any], done: dict[str, str], fail_code: int) -> None:
        for item in answer["results"]:
            if item["ok"]:
                text = done.get(item["status"], item["status"])
                self.ctl.output(f"{item['name']}: {text}" + (f" ({item['message']})" if item["message"] else ""))
            else:
                self.ctl.output(f"{item['name']}: ERROR ({item['status']}: {item['message']})")
                self._fail(fail_code)

    def _names_or_usage(self, verb: str, arg: str) -> list[str] | None:
        names = arg.split()
        if not names:
            self.ctl.output(f"Error: {verb} requires a process name")
            self.ctl.exitstatus = LSBInitExitStatuses.INVALID_ARGS
            getattr(self, f"help_{verb}")()
            return None
        return names

    def _resolve(self, client: SupervisorClient, names: list[str]) -> dict[str, Any] | None:
        """Classify every name first: one unknown name changes nothing."""
        resolved = client.supz("resolve", names)
        unknown = [n for n in names if resolved[n]["kind"] == "unknown"]
        for name in unknown:
            self.ctl.output(f"{name}: ERROR (no such process or application)")
        if unknown:
            self.ctl.exitstatus = LSBInitExitStatuses.INVALID_ARGS
            return None
        return resolved

    def _plain(self, client: SupervisorClient, method: str, name: str, done: str, fail_code: int) -> list[str]:
        """supervisor's own stop/start on a group or process; returns the outcome lines."""
        group, _, process = name.partition(":")
        lines = []
        try:
            if process and process != "*":
                client.supervisor(f"{method}Process", name)
                lines.append(f"{name}: {done}")
            else:
                for result in client.supervisor(f"{method}ProcessGroup", group):
                    spec = f"{result['group']}:{result['name']}"
                    if result["status"] == Faults.SUCCESS:
                        lines.append(f"{spec}: {done}")
                    else:
                        lines.append(f"{spec}: ERROR ({result['description']})")
                        self._fail(fail_code)
        except SupervisorFault as exc:
            lines.append(f"{name}: ERROR ({exc})")
            self._fail(int(exc.exit_code))
        return lines

    def _context(self, command: str, args: list[str]) -> dict[str, Any]:
        """The call's context; `confirmed` when the policy's confirmation was given (the extension
        refuses an unconfirmed mass operation to a caller that is not root)."""
        return dict(context(command, args), confirmed=bool(getattr(self.ctl, "confirmed", False)))

    def _audit(self, client: SupervisorClient, command: str, args: list[str], lines: list[str]) -> None:
        client.supz("audit", context(command, args), "; ".join(lines)[:2000] or "ok")

    # ---- stop / start / restart -------------------------------------------------------

    @supz_command
    def do_stop(self, arg: str) -> None:
        if not self.ctl.upcheck():
            return
        names = self._names_or_usage("stop", arg)
        if names is None:
            return
        client = self._client()
        if "all" in names:
            registry = client.supz("getRegistry")
            if registry["active"]:
                answer = client.supz("park", registry["active"], self._context("stop", names))
                self._print_results(answer, {"parked": "stopped and parked"}, LSBInitExitStatuses.GENERIC)
            else:
                self.ctl.output("no active application to stop")
            self.ctl.output("host-local programs (not in the registry) left running")
            return
        resolved = self._resolve(client, names)
        if resolved is None:
            return
        park, lines = [], []
        for name in names:
            item = resolved[name]
            if item["kind"] in ("active", "parked"):
                if item["process"] and len(item["processes"]) > 1:
                    lines += [f"{line} (one process of {item['group']}: the entry stays active)"
                              for line in self._plain(client, "stop", name, "stopped", LSBInitExitStatuses.GENERIC)]
                elif item["group"] not in park:
                    park.append(item["group"])
            else:
                lines += [f"{line} (host-local: registry unchanged)"
                          for line in self._plain(client, "stop", name, "stopped", LSBInitExitStatuses.GENERIC)]
        if park:
            answer = client.supz("park", park, self._context("stop", park))
            self._print_results(answer, {"parked": "stopped and parked"}, LSBInitExitStatuses.GENERIC)
        for line in lines:
            self.ctl.output(line)
        if lines:
            self._audit(client, "stop", [n for n in names if resolved[n]["group"] not in park], lines)

    def help_stop(self) -> None:
        self.ctl.output("stop <name>\t\tStop an application and park it: it stays stopped (restarts, failovers)")
        self.ctl.output("stop <gname>:*\t\tPark a whole multi-process application")
        self.ctl.output("stop <gname>:<proc>\tStop one process of a multi-process application (entry stays active)")
        self.ctl.output("stop <name> <name>\tStop and park several applications")
        self.ctl.output("stop all\t\tPark every active application (needs confirmation)")

    @supz_command
    def do_start(self, arg: str) -> None:
        if not self.ctl.upcheck():
            return
        names = self._names_or_usage("start", arg)
        if names is None:
            return
        client = self._client()
        done = {"unparked": "unparked and started", "started": "started", "already running": "already running"}
        if "all" in names:
            answer = client.supz("activate", self._context("start", names))
            self._print_results(answer, done, LSBInitExitStatuses.NOT_RUNNING)
            parked = client.supz("getRegistry")["parked"]
            if parked:
                self.ctl.output(f"{len(parked)} parked application(s) left parked: start them by name")
            return
        resolved = self._resolve(client, names)
        if resolved is None:
            return
        unpark, lines = [], []
        for name in names:
            item = resolved[name]
            if item["kind"] in ("active", "parked") and not (item["process"] and len(item["processes"]) > 1):
                if item["group"] not in unpark:
                    unpark.append(item["group"])
            else:
                lines += self._plain(client, "start", name, "started", LSBInitExitStatuses.NOT_RUNNING)
        if unpark:
            answer = client.supz("unpark", unpark, self._context("start", unpark))
            self._print_results(answer, done, LSBInitExitStatuses.NOT_RUNNING)
        for line in lines:
            self.ctl.output(line)
        if lines:
            self._audit(client, "start", [n for n in names if resolved[n]["group"] not in unpark], lines)

    def help_start(self) -> None:
        self.ctl.output("start <name>\t\tStart an application; a parked one is unparked first")
        self.ctl.output("start <gname>:*\t\tStart all processes of an application")
        self.ctl.output("start <name> <name>\tStart several applications")
        self.ctl.output("start all\t\tStart every active application (parked ones stay parked)")

    @supz_command
    def do_restart(self, arg: str) -> None:
        if not self.ctl.upcheck():
            return
        names = self._names_or_usage("restart", arg)
        if names is None:
            return
        client = self._client()
        if "all" not in names and self._resolve(client, names) is None:
            return
        answer = client.supz("restart", names, self._context("restart", names))
        self._print_results(answer, {}, LSBInitExitStatuses.NOT_RUNNING)

    def help_restart(self) -> None:
        self.ctl.output("restart <name>\t\tRestart an application (the registry is unchanged)")
        self.ctl.output("restart <gname>:*\tRestart all processes of an application")
        self.ctl.output("restart all\t\tRestart every loaded program (needs confirmation)")

    # ---- status / avail ------------------------------------------------------------------

    @supz_command
    def do_status(self, arg: str) -> None:
        if not self.ctl.upcheck():
            self.ctl.exitstatus = LSBStatusExitStatuses.UNKNOWN
            return
        rows = [line.split("\t", 2) for line in self._client().supz("status").splitlines() if line]
        names = arg.split()
        if names and "all" not in names:
            chosen = []
            for name in names:
                group, _, process = name.partition(":")
                hits = [r for r in rows if r[0] == name or r[0] == group
                        or (r[0].startswith(group + ":") and (not process or process == "*" or r[0] == name))]
                if not hits:
                    self.ctl.output(f"{name}: ERROR (no such process or application)")
                    self.ctl.exitstatus = LSBStatusExitStatuses.UNKNOWN
                chosen += [r for r in hits if r not in chosen]
            rows = chosen
        # Health hook: HEALTHY / UNHEALTHY (n/fails) / UNKNOWN beside the state (supz/health/state.py).
        rows = with_health(rows, read_state(self.ctl.paths)) if hasattr(self.ctl, "paths") else rows
        width = max([30] + [len(r[0]) for r in rows]) + 3
        self.ctl.output("\n".join(f"{r[0]:<{width}}{r[1]:<10}{r[2] if len(r) > 2 else ''}" for r in rows)) if rows else None
        if self.ctl.exitstatus != LSBStatusExitStatuses.UNKNOWN and any(r[1] not in ("RUNNING",) for r in rows):
            self.ctl.exitstatus = LSBStatusExitStatuses.NOT_RUNNING

    def help_status(self) -> None:
        self.ctl.output("status <name>\t\tStatus of an application (PARKED when stopped on purpose)")
        self.ctl.output("status <gname>:*\tStatus of all processes of an application")
        self.ctl.output("status\t\t\tEvery process and parked application")

    @supz_command
    def do_avail(self, arg: str) -> None:
        if arg:
            self.ctl.output("Error: avail accepts no arguments")
            self.ctl.exitstatus = LSBInitExitStatuses.GENERIC
            return
        client = self._client()
        super().do_avail(arg)
        for name in client.supz("getRegistry")["parked"]:
            self.ctl.output("%-32s %-6s %-12s %s" % (name, "parked", "start-it", "'start' brings it back"))

    # ---- update / add / remove -------------------------------------------------------------

    @supz_command
    def do_update(self, arg: str) -> None:
        if not self.ctl.upcheck():
            return
        names = [n for n in arg.split() if n != "all"]
        client = self._client()
        answer = client.supz("update", names, self._context("update", arg.split()))
        for item in answer["results"]:
            if not item["ok"]:
                self.ctl.output(f"{item['name']}: ERROR ({item['status']}: {item['message']})")
                self._fail(LSBInitExitStatuses.GENERIC)
            elif item["status"] != "unchanged":
                self.ctl.output(f"{item['name']}: {item['status']}")
        if not names:
            self._update_host_local(client)

    def _update_host_local(self, client: SupervisorClient) -> None:
        """supervisorctl's update, for the programs that are not in the registry."""
        try:
            added, changed, removed = client.supervisor("reloadConfig")[0]
        except SupervisorFault as exc:
            self.ctl.output(f"host-local programs not updated: {exc}")
            self._fail(LSBInitExitStatuses.GENERIC)
            return
        registry = client.supz("getRegistry")
        ours = set(registry["active"]) | set(registry["parked"])
        lines = []
        for name in [n for n in removed + changed if n not in ours]:
            lines += [line for line in self._plain(client, "stop", f"{name}:*", "stopped", 0) if "ERROR" in line]
            client.supervisor("removeProcessGroup", name)
            lines.append(f"{name}: removed process group")
        for name in [n for n in changed + added if n not in ours]:
            client.supervisor("addProcessGroup", name)
            lines.append(f"{name}: {'updated' if name in changed else 'added'} process group")
        for line in lines:
            self.ctl.output(line)
        if lines:
            self._audit(client, "update", ["host-local"], lines)

    def help_update(self) -> None:
        self.ctl.output("update\t\t\tApply changed registry entries (malformed ones are reported and skipped)")
        self.ctl.output("update <name> [...]\tApply the entry files of these applications only")

    @supz_command
    def do_add(self, arg: str) -> None:
        names = self._names_or_usage("add", arg)
        if names is None:
            return
        client = self._client()
        registry = client.supz("getRegistry")
        ours = [n for n in names if n in registry["active"] or n in registry["parked"]]
        if ours:
            self.do_update(" ".join(ours))
        rest = [n for n in names if n not in ours]
        if rest:
            super().do_add(" ".join(rest))
            self._audit(client, "add", rest, ["ok"])

    @supz_command
    def do_remove(self, arg: str) -> None:
        names = self._names_or_usage("remove", arg)
        if names is None:
            return
        client = self._client()
        resolved = self._resolve(client, names)
        if resolved is None:
            return
        ours = [n for n in names if resolved[n]["kind"] in ("active", "parked")]
        if ours:
            answer = client.supz("remove", ours, self._context("remove", ours))
            self._print_results(answer, {"removed": "stopped and removed from the registry (a copy is kept)"},
                                LSBInitExitStatuses.GENERIC)
        rest = [n for n in names if n not in ours]
        if rest:
            super().do_remove(" ".join(rest))
            self._audit(client, "remove", rest, ["done"])

    @supz_command
    def do_signal(self, arg: str) -> None:
        super().do_signal(arg)
        self._audit(self._client(), "signal", arg.split(), [f"exit {self.ctl.exitstatus}"])

    @supz_command
    def do_clear(self, arg: str) -> None:
        super().do_clear(arg)
        self._audit(self._client(), "clear", arg.split(), [f"exit {self.ctl.exitstatus}"])

    def help_remove(self) -> None:
        self.ctl.output("remove <name> [...]\tStop applications and delete their registry entries "
                        "(a copy is kept under var/lib/supz/removed; needs confirmation)")

