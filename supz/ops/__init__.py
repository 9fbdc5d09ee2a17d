"""supz's operations: one function per thing an operator or a script does to a host.

Each takes an `OpsEnv` (the host's paths and config, the caller, a way to reach supervisord)
and returns a `Report` (lines to show, structured results, an `ExitCode`); none prints or
exits. supzcli (`supz.shell.plugin`), sup_run.sh (`supz.apps.control`), `supz registry`
(`supz.cli.registry`) and the Python API (`supz.api`) all call these, and only render.
"""

from supz.ops.auditing import audit_command
from supz.ops.changes import add, remove, update
from supz.ops.env import Command, OpsEnv
from supz.ops.lifecycle import park, parked_names, restart, start, stop, unpark
from supz.ops.registry import Listing, add_file, add_text, history, listing, register, show
from supz.ops.report import Report, Result
from supz.ops.status import StatusReport, StatusRow, status

__all__ = [
    "Command", "Listing", "OpsEnv", "Report", "Result", "StatusReport", "StatusRow",
    "add", "add_file", "add_text", "audit_command", "history", "listing", "park", "parked_names", "register", "remove",
    "restart", "show", "start", "status", "stop", "unpark", "update",
]
