"""Writing audit lines for what an operation did: through the extension (a socket user cannot
write the audit log) or, when this side wrote the registry itself, directly."""

from __future__ import annotations

from supz.audit import AuditLog, AuditRecord
from supz.ops.env import Command, OpsEnv
from supz.ops.report import Report
from supz.registry import Change
from supz.supervisord.client import RpcClient


def audit_via_extension(env: OpsEnv, client: RpcClient, command: Command, result: str) -> None:
    """One audit line for a command done through supervisor's own API (restart, signal...)."""
    client.supz("audit", env.context(command), result)


def audit_report(env: OpsEnv, client: RpcClient, command: Command, report: Report) -> None:
    audit_via_extension(env, client, command, report.audit_result())


def audit_change(env: OpsEnv, command: Command, change: Change, report: Report) -> None:
    """The audit line of a command that wrote the registry from this side (it holds the lock)."""
    AuditLog(env.paths.audit_log).append(
        AuditRecord(command.name, list(command.args), report.audit_result(), env.who,
                    change.generation_before, change.generation_after)
    )


def audit_command(env: OpsEnv, command: Command, result: str) -> None:
    """An audit line for a command done by the caller itself (supervisorctl's signal, clear)."""
    with env.connect() as client:
        audit_via_extension(env, client, command, result)
