"""supzcli -- supervisorctl with the supz registry and policy.

Usage: supzcli [options] [--yes] [action [arguments]]

Options (as supervisorctl):
-c/--configuration FILENAME -- configuration file [default: the host's supervisord.conf]
-h/--help -- print this message and exit
-i/--interactive -- start an interactive shell after executing commands
-s/--serverurl URL -- URL on which supervisord server is listening
-u/--username USERNAME -- username to use for authentication with server
-p/--password PASSWORD -- password to use for authentication with server
-r/--history-file FILE -- keep a readline history [default: ~/.supzcli_history]
supz options:
--yes -- confirm commands the policy wants confirmed (stop all, restart all, remove)
         in one-shot mode

The host comes from $SUPZ_ROOT (default /). 'stop NAME' parks an application
(it stays stopped across restarts and failovers); 'start NAME' brings it back;
'restart' never changes the registry. 'shutdown' and 'reload' are refused by
default (exit 4). Exit codes: supz.errors.ExitCode (0 ok, 1 failed, 2 bad name,
3 status: not all RUNNING, 4 refused, 7 supervisord not running).
"""

from __future__ import annotations

import sys
from typing import Any

from supervisor.options import ClientOptions
from supervisor.supervisorctl import Controller

from supz.config import SupzConfig, load_config, read_config
from supz.errors import ExitCode, SupzError
from supz.paths import HostPaths, resolve_root
from supz.policy import Verdict, confirmed, decide, needs_yes_message, refusal_message
from supz.shell.plugin import SupzControllerPlugin
from supz.supervisord.client import ControllerClient

YES_FLAGS = ("--yes",)


class SupzController(Controller):  # type: ignore[misc]
    """supervisorctl's Controller with the policy check in front of every command."""

    def __init__(self, options: Any, supz_config: SupzConfig, paths: HostPaths, assume_yes: bool) -> None:
        self.supz_config = supz_config
        self.paths = paths
        self.assume_yes = assume_yes
        self.confirmed = False
        super().__init__(options)

    def onecmd(self, line: str) -> Any:
        command, arg, _ = self.parseline(line)
        self.confirmed = False
        if command:
            decision = decide(self.supz_config.policy, command, (arg or "").split())
            if decision.verdict is Verdict.REFUSE:
                self.output(refusal_message(command, str(self.paths.config_file)))
                self.exitstatus = ExitCode.REFUSED
                return None
            if decision.verdict is Verdict.CONFIRM and not self.assume_yes:
                if not self.options.interactive:
                    self.output(needs_yes_message(decision.rule))
                    self.exitstatus = ExitCode.REFUSED
                    return None
                try:
                    answer = input(f"'{line.strip()}' on {self.supz_config.host}: type 'yes' to go on: ")
                except EOFError:
                    answer = ""
                if not confirmed(answer):
                    self.output("not confirmed: nothing done")
                    self.exitstatus = ExitCode.REFUSED
                    return None
            # The extension holds a caller that is not root to the same rule: it sees this flag.
            self.confirmed = decision.verdict is Verdict.CONFIRM
        return super().onecmd(line)

    def upcheck(self) -> bool:
        """supervisorctl's check, with supz's one-line messages and exit codes (7 down, 4 no access)."""
        from supervisor import rpcinterface

        try:
            with ControllerClient(self) as client:
                api = client.supervisor("getVersion")
        except SupzError as exc:
            self.output(f"error: {exc}")
            self.exitstatus = exc.exit_code
            return False
        if api != rpcinterface.API_VERSION:
            self.output(f"error: supervisord speaks API {api}, this supzcli expects {rpcinterface.API_VERSION}")
            self.exitstatus = ExitCode.NOT_INSTALLED
            return False
        return True

    def _get_complete_info(self) -> Any:
        """Complete parked applications too: `start <TAB>` must offer them."""
        info = list(super()._get_complete_info())
        try:
            registry = self.get_server_proxy("supz").getRegistry()
        except Exception:  # noqa: BLE001 - completion must never break the shell
            return info
        known = {i["group"] for i in info}
        info += [{"group": n, "name": n} for n in registry["parked"] if n not in known]
        return info


def _has_option(args: list[str], short: str, long: str) -> bool:
    return any(a == short or a.startswith(short) and len(a) > 2 or a == long or a.startswith(long + "=") for a in args)


def client_options(args: list[str], paths: HostPaths, config: SupzConfig) -> Any:
    """supervisorctl's options with the host's defaults: its supervisord.conf, and a readline
    history file (-r, else [supervisorctl] history_file, else ~/.supzcli_history).

    supervisor 4 stores -r in `options.history`, which its shell never reads (it saves
    `options.history_file`, set from the config file only): without this no history was kept.
    """
    options_end = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
    head, tail = args[:options_end], args[options_end:]
    if not _has_option(head, "-c", "--configuration") and not _has_option(head, "-s", "--serverurl"):
        head = ["-c", str(paths.supervisord_conf)] + head
    options = ClientOptions()
    options.plugin_factories = [("default", SupzControllerPlugin, {})]
    options.realize(head + tail, doc=__doc__)
    options.history_file = getattr(options, "history", None) or options.history_file or str(paths.history_file)
    options.prompt = config.look.prompt.format(host=config.host)
    return options


def main(argv: list[str] | None = None) -> None:
    """The entry point: the only place supzcli exits."""
    args = list(sys.argv[1:] if argv is None else argv)
    assume_yes = any(a in YES_FLAGS for a in args)
    args = [a for a in args if a not in YES_FLAGS]
    paths = resolve_root()
    try:
        config = load_config(read_config(paths.config_file))
    except SupzError as exc:
        sys.stderr.write(f"supzcli: error: {exc}\n")
        sys.exit(int(exc.exit_code))
    options = client_options(args, paths, config)
    controller = SupzController(options, config, paths, assume_yes)
    if options.args:
        controller.onecmd(" ".join(options.args))
        sys.exit(controller.exitstatus)
    if options.interactive:
        controller.output(config.look.banner.format(host=config.host))
        controller.exec_cmdloop(args, options)
        controller.output(config.look.farewell.format(host=config.host))
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
