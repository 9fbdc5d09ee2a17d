"""Typed errors: core code raises these, the CLIs turn them into one line and an exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit-code contract of every supz command: `supz`, `supzcli`, `sup_run.sh`, `supz-check`.

    LSB-compatible where LSB says something (supervisorctl's init-script codes; 3 for status).
    Only the entry points exit; core code raises a `SupzError` carrying one of these, or
    returns a report whose `exit_code` is one. The README's table is checked against
    `MEANINGS` by a test.
    """

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_RUNNING = 3
    REFUSED = 4
    NOT_INSTALLED = 5
    UNREACHABLE = 6
    DOWN = 7
    INTERRUPTED = 130


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done; for a status, everything that should run is RUNNING and nothing is wrong",
    ExitCode.ERROR: "failed: an operation did not complete, or a check found a problem "
                    "(doctor, cluster status, split brain, drift)",
    ExitCode.USAGE: "bad input: a name, a program file, an option, an application or peer that does not exist",
    ExitCode.NOT_RUNNING: "status: something that should run is not RUNNING (stopped, parked, FATAL, not registered)",
    ExitCode.REFUSED: "refused: the policy, a missing permission, or a registry change on a host that is not MASTER",
    ExitCode.NOT_INSTALLED: "supz is not set up on this root, or the extension is missing or of another version",
    ExitCode.UNREACHABLE: "a peer could not be reached or did not answer in time",
    ExitCode.DOWN: "supervisord is not running (status commands included)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C) or aborted at a prompt",
}


def exit_code_table() -> str:
    """The README's exit-code table, as markdown: generated here so the two cannot drift."""
    rows = ["| code | name | meaning |", "| --- | --- | --- |"]
    rows += [f"| {int(code)} | `{code.name}` | {MEANINGS[code]} |" for code in ExitCode]
    return "\n".join(rows)


class SupzError(Exception):
    """Base of every error supz reports to a user: a message and the thing it names."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, thing: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.thing = thing

    def __str__(self) -> str:
        return self.message


class InvalidName(SupzError):
    exit_code = ExitCode.USAGE


class InvalidProgramFile(SupzError):
    exit_code = ExitCode.USAGE


class UnknownEntry(SupzError):
    exit_code = ExitCode.USAGE


class EntryExists(SupzError):
    exit_code = ExitCode.ERROR


class ConfigError(SupzError):
    exit_code = ExitCode.USAGE


class UsageError(SupzError):
    """An option or argument that makes no sense (a malformed --since)."""

    exit_code = ExitCode.USAGE


class BadArchive(SupzError):
    """A registry archive that is truncated, fails its checksum or holds an invalid entry."""

    exit_code = ExitCode.USAGE


class PolicyRefused(SupzError):
    exit_code = ExitCode.REFUSED


class RegistryBusy(SupzError):
    exit_code = ExitCode.ERROR


class RegistryCorrupt(SupzError):
    exit_code = ExitCode.ERROR


class StorageError(SupzError):
    """A file could not be read or written (full disk, permissions): nothing was changed."""

    exit_code = ExitCode.ERROR


class SupervisordDown(SupzError):
    exit_code = ExitCode.DOWN


class OperationFailed(SupzError):
    """supervisord answered but the operation did not complete (spawn error, deadline passed)."""

    exit_code = ExitCode.ERROR


class SupervisorFault(SupzError):
    """supervisord's own API refused a call; `fault_code` is supervisor's xmlrpc.Faults value."""

    def __init__(self, message: str, fault_code: int, thing: str | None = None) -> None:
        super().__init__(message, thing=thing)
        self.fault_code = fault_code
        from supervisor.xmlrpc import Faults

        dead = (Faults.SPAWN_ERROR, Faults.ABNORMAL_TERMINATION, Faults.NOT_RUNNING)
        self.exit_code = ExitCode.DOWN if fault_code in dead else ExitCode.ERROR


class NotInstalled(SupzError):
    exit_code = ExitCode.NOT_INSTALLED


class PeerUnreachable(SupzError):
    """A sync peer could not be reached (connection, ssh, rsync daemon, or its agent failed)."""

    exit_code = ExitCode.UNREACHABLE


class SyncRefused(SupzError):
    """A sync peer, or this host, refused a registry version; `code` says why.

    Codes: newer (the receiver holds a higher generation), diverged (same generation, other
    content), master (the receiver is MASTER), stale-base (the receiver changed meanwhile),
    incomplete (a delta missed an entry), mismatch (files do not match the manifest), invalid
    (an entry supervisor's parser or the naming rules refuse),
    auth (credentials refused), bad-request.
    """

    exit_code = ExitCode.ERROR

    def __init__(self, code: str, message: str, thing: str | None = None) -> None:
        super().__init__(message, thing=thing)
        self.code = code
