"""XML-RPC fault codes of the supz namespace, shared by the extension and its client."""

from __future__ import annotations

from supervisor.xmlrpc import RPCError

from supz import errors

# supervisor's own faults stop at 100; supz's start at 1000.
FAULTS: dict[int, type[errors.SupzError]] = {
    1001: errors.InvalidName,
    1002: errors.UnknownEntry,
    1003: errors.InvalidProgramFile,
    1004: errors.RegistryBusy,
    1005: errors.StorageError,
    1006: errors.OperationFailed,
    1007: errors.RegistryCorrupt,
    1008: errors.EntryExists,
    1009: errors.PolicyRefused,
    1010: errors.ConfigError,
}
CODES: dict[type[errors.SupzError], int] = {cls: code for code, cls in FAULTS.items()}
GENERIC = 1000


def code_for(error: errors.SupzError) -> int:
    for cls in type(error).__mro__:
        if cls in CODES:
            return CODES[cls]
    return GENERIC


def error_for(code: int, message: str) -> errors.SupzError:
    # supervisor prefixes the fault's name, "UNKNOWN: " for codes it does not know.
    if message.startswith("UNKNOWN: "):
        message = message[len("UNKNOWN: "):]
    return FAULTS.get(code, errors.SupzError)(message)


def as_rpc_error(exc: BaseException) -> RPCError:
    """Any failure inside the extension as the XML-RPC fault its client maps back to a SupzError."""
    if isinstance(exc, RPCError):
        return exc
    if isinstance(exc, errors.SupzError):
        return RPCError(code_for(exc), exc.message)
    return RPCError(GENERIC, f"internal error: {type(exc).__name__}: {exc}")
