"""supz's Python API: what supzcli, sup_run.sh and `supz registry` do, for a script.

    from supz import api

    host = api.Host("/")                           # the host at this root (else $SUPZ_ROOT, else /)
    host.stop("web", reason="deploy 2.0")          # park: it stays stopped across restarts, failovers
    host.start("web")                              # unpark and start
    if not host.status("web").ok: ...

Every method runs the same operation as the command line (`supz.ops`), asks the same policy
(`[shell] refuse`/`confirm` in supz.conf) and writes the same audit line, naming the user who
runs the script. Failures raise the CLIs' typed errors (`supz.errors`), each carrying the exit
code the CLIs would use; a failure that a report describes (a process that did not start)
raises `OperationFailed` with the report attached as `.report`. See docs/api.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from supz import ops
from supz.errors import (
    ExitCode,
    OperationFailed,
    PolicyRefused,
    SupzError,
    UnknownEntry,
)
from supz.ops.env import Command, OpsEnv
from supz.ops.registry import Listing
from supz.ops.report import Report
from supz.ops.status import StatusReport
from supz.paths import HostPaths, resolve_root
from supz.policy import check_policy

__all__ = ["Host", "Listing", "OperationFailed", "Report", "StatusReport"]


def _checked(report: Report) -> Report:
    """A report that ends in failure becomes the typed error the CLIs would exit with."""
    if report.ok:
        return report
    message = "; ".join(report.errors) or f"failed (exit {int(report.exit_code)})"
    error: SupzError
    if report.exit_code == ExitCode.USAGE:
        error = UnknownEntry(message)
    elif report.exit_code == ExitCode.REFUSED:
        error = PolicyRefused(message)
    else:
        error = OperationFailed(message)
        error.exit_code = report.exit_code
    setattr(error, "report", report)  # noqa: B010 - SupzError has no report field; the API adds one
    raise error


class Host:
    """One supz host, reached through its supervisord socket (the socket's group is enough for
    start, stop, restart and status; adding a program file needs write access to the registry)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, ops_env: OpsEnv | None = None) -> None:
        self.paths: HostPaths = ops_env.paths if ops_env is not None else resolve_root(root)
        self._env = ops_env

    @property
    def env(self) -> OpsEnv:
        """The operations' environment: the host's config is read once, when first needed."""
        if self._env is None:
            self._env = OpsEnv.for_host(self.paths)
        return self._env

    def _policy(self, command: str, names: tuple[str, ...], yes: bool) -> None:
        check_policy(self.env.config.policy, command, list(names), yes=yes)

    # ---- what must run ---------------------------------------------------------------------

    def add(self, file: str | os.PathLike[str], *, name: str | None = None, replace: bool = False) -> Report:
        """`supz registry add FILE`: validate it, make it an active entry, load and start it."""
        return _checked(ops.add_file(self.env, Path(file), name=name, replace=replace,
                                     command=Command.of("api add", [str(file)])))

    def register(self, name: str, text: str, *, replace: bool = False) -> Report:
        """Like `add`, from the text of a program file (`[program:NAME]` ...) instead of a file."""
        return _checked(ops.add_text(self.env, name, text, replace=replace,
                                     command=Command.of("api register", [name])))

    # ---- start, stop, restart ----------------------------------------------------------------

    def start(self, *names: str, yes: bool = False) -> Report:
        """Start applications; a parked one is unparked first (supzcli's `start`)."""
        self._policy("start", names, yes)
        return _checked(ops.start(self.env.confirming(yes), names, command=Command.of("api start", names)))

    def stop(self, *names: str, reason: str = "", yes: bool = False) -> Report:
        """Stop applications and park them: they stay stopped across supervisord restarts and
        failovers until `start`. The reason goes into the audit line (`--reason REASON`), the
        registry's history, and the parked entry's note (`supzcli status`, `supz registry list`)."""
        self._policy("stop", names, yes)
        return _checked(ops.stop(self.env.confirming(yes), names, reason=reason,
                                 command=Command.of("api stop", names)))

    def restart(self, *names: str, yes: bool = False) -> Report:
        """Stop and start every process of the applications; the registry is unchanged."""
        self._policy("restart", names, yes)
        return _checked(ops.restart(self.env.confirming(yes), names, command=Command.of("api restart", names)))

    # ---- reading -------------------------------------------------------------------------------

    def status(self, *names: str) -> StatusReport:
        """Rows per process and parked entry; `.ok` when every one is RUNNING (else `.exit_code`
        is NOT_RUNNING). An unknown name raises UnknownEntry; supervisord down, SupervisordDown."""
        report = ops.status(self.env, names)
        if report.missing:
            _checked(report)
        return report

    def entries(self) -> Listing:
        """The registry: generation, last change, each entry active or parked (needs read access
        to the registry; supervisord may be down)."""
        return ops.listing(self.env)

    def history(self, count: int | None = 20, *, app: str | None = None, user: str | None = None,
                since: str | None = None, local: bool = False) -> list[dict[str, Any]]:
        """The registry's history (the same on every host of a pair), its last `count` lines,
        oldest first, filtered by application, user and time (`2d`, `12h`, an ISO date); `local`:
        this host's own audit file instead (every command run here)."""
        return ops.history(self.env, count, app=app, user=user, since=since, local=local)
