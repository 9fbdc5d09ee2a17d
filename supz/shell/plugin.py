"""supzcli's commands: supervisorctl's, made registry-aware.

`stop` parks, `start` unparks, `restart` never touches the registry, `status`/`avail` show
parked applications, `update` applies changed entry files one by one. Host-local programs
(the syncer, agents) keep supervisorctl's plain behaviour. The work is done by `supz.ops`;
this module parses arguments and prints reports. supervisord is reached through the
controller (`ctl.get_server_proxy`), as supervisor's own plugins do.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from supervisor.supervisorctl import DefaultControllerPlugin

from supz import ops
from supz.audit import current_who
from supz.errors import ExitCode, SupzError
from supz.ops.env import Command, OpsEnv
from supz.ops.report import Report
from supz.supervisord.client import ControllerClient


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


def split_reason(arg: str) -> tuple[str, str]:
    """`web api -m INC-42: payment timeouts` -> ("web api", "INC-42: payment timeouts"): the reason
    is the rest of the line after -m/--reason (one-shot mode joins the arguments with spaces)."""
    words = arg.split(" ")
    for index, word in enumerate(words):
        if word in ("-m", "--reason") or word.startswith("--reason="):
            rest = " ".join(words[index + 1:]) if "=" not in word else word.split("=", 1)[1] + " " + " ".join(
                words[index + 1:])
            rest = rest.strip()
            if len(rest) >= 2 and rest[0] == rest[-1] and rest[0] in "'\"":
                rest = rest[1:-1]
            return " ".join(words[:index]), rest.strip()
    return arg, ""


class SupzControllerPlugin(DefaultControllerPlugin):  # type: ignore[misc]
    name = "supz"

    # ---- plumbing ------------------------------------------------------------------------

    def _env(self) -> OpsEnv:
        """The operations' environment for this command: `confirmed` when the policy's confirmation
        was given (the extension refuses an unconfirmed mass operation to a caller that is not root)."""
        config = self.ctl.supz_config
        return OpsEnv(self.ctl.paths, config, current_who(config.host), lambda: ControllerClient(self.ctl),
                      confirmed=bool(getattr(self.ctl, "confirmed", False)))

    def _show(self, report: Report) -> None:
        """Print a report; its exit code becomes the command's (the worst of several, for one line)."""
        for line in report.lines + report.warnings:
            self.ctl.output(line)
        if report.exit_code != ExitCode.OK:
            self.ctl.exitstatus = int(report.exit_code)

    def _names_or_usage(self, verb: str, arg: str) -> list[str] | None:
        names = arg.split()
        if not names:
            self.ctl.output(f"Error: {verb} requires a process name")
            self.ctl.exitstatus = ExitCode.USAGE
            getattr(self, f"help_{verb}")()
            return None
        return names

    def _up(self) -> bool:
        return bool(self.ctl.upcheck())

    # ---- stop / start / restart -------------------------------------------------------

    @supz_command
    def do_stop(self, arg: str) -> None:
        names_part, reason = split_reason(arg)
        names = self._up() and self._names_or_usage("stop", names_part)
        if names:
            self._show(ops.stop(self._env(), names, reason=reason))

    def help_stop(self) -> None:
        self.ctl.output("stop <name>\t\tStop an application and park it: it stays stopped (restarts, failovers)")
        self.ctl.output("stop <gname>:*\t\tPark a whole multi-process application")
        self.ctl.output("stop <gname>:<proc>\tStop one process of a multi-process application (entry stays active)")
        self.ctl.output("stop <name> <name>\tStop and park several applications")
        self.ctl.output("stop all\t\tPark every active application (needs confirmation)")
        self.ctl.output("stop <name> -m <reason>\tPark it with a reason (--reason): status and list show it on every host")

    @supz_command
    def do_start(self, arg: str) -> None:
        names = self._up() and self._names_or_usage("start", arg)
        if names:
            self._show(ops.start(self._env(), names))

    def help_start(self) -> None:
        self.ctl.output("start <name>\t\tStart an application; a parked one is unparked first")
        self.ctl.output("start <gname>:*\t\tStart all processes of an application")
        self.ctl.output("start <name> <name>\tStart several applications")
        self.ctl.output("start all\t\tStart every active application (parked ones stay parked)")

    @supz_command
    def do_restart(self, arg: str) -> None:
        names = self._up() and self._names_or_usage("restart", arg)
        if names:
            self._show(ops.restart(self._env(), names))

    def help_restart(self) -> None:
        self.ctl.output("restart <name>\t\tRestart an application (the registry is unchanged)")
        self.ctl.output("restart <gname>:*\tRestart all processes of an application")
        self.ctl.output("restart all\t\tRestart every loaded program (needs confirmation)")

    # ---- status / avail ------------------------------------------------------------------

    @supz_command
    def do_status(self, arg: str) -> None:
        words = arg.split()
        as_json = "--json" in words
        if not self._up():
            return
        report = ops.status(self._env(), [w for w in words if w != "--json"])
        if as_json:
            self.ctl.output(json.dumps(report.as_dict(), indent=1))
            self.ctl.exitstatus = int(report.exit_code)
        else:
            self._show(report)

    def help_status(self) -> None:
        self.ctl.output("status <name>\t\tStatus of an application (PARKED when stopped on purpose)")
        self.ctl.output("status --json [name]\tThe same as JSON: processes (name, state, health, description), "
                        "missing, exit_code")
        self.ctl.output("status <gname>:*\tStatus of all processes of an application")
        self.ctl.output("status\t\t\tEvery process and parked application")

    @supz_command
    def do_avail(self, arg: str) -> None:
        if arg:
            self.ctl.output("Error: avail accepts no arguments")
            self.ctl.exitstatus = ExitCode.ERROR
            return
        super().do_avail(arg)
        for name in ops.parked_names(self._env()):
            self.ctl.output(f"{name:<32} {'parked':<6} {'start-it':<12} 'start' brings it back")

    # ---- update / add / remove -------------------------------------------------------------

    @supz_command
    def do_update(self, arg: str) -> None:
        if self._up():
            self._show(ops.update(self._env(), arg.split()))

    def help_update(self) -> None:
        self.ctl.output("update\t\t\tApply changed registry entries (malformed ones are reported and skipped)")
        self.ctl.output("update <name> [...]\tApply the entry files of these applications only")

    @supz_command
    def do_add(self, arg: str) -> None:
        names = self._names_or_usage("add", arg)
        if names:
            self._show(ops.add(self._env(), names))

    @supz_command
    def do_remove(self, arg: str) -> None:
        names = self._names_or_usage("remove", arg)
        if names:
            self._show(ops.remove(self._env(), names))

    def help_remove(self) -> None:
        self.ctl.output("remove <name> [...]\tStop applications and delete their registry entries "
                        "(a copy is kept under var/lib/supz/removed; needs confirmation)")

    # ---- supervisor's own commands, audited ------------------------------------------------

    def _audited(self, command: str, arg: str) -> None:
        ops.audit_command(self._env(), Command.of(command, arg.split()), f"exit {self.ctl.exitstatus}")

    @supz_command
    def do_signal(self, arg: str) -> None:
        super().do_signal(arg)
        self._audited("signal", arg)

    @supz_command
    def do_clear(self, arg: str) -> None:
        super().do_clear(arg)
        self._audited("clear", arg)
