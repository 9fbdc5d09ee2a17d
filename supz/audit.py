"""The audit trail: one JSON line per command that changed (or tried to change) anything,
and who asked (`Who`, `current_who`) and when (`now_iso`): the registry's manifest records both too."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import pwd
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supz.errors import StorageError


@dataclass(frozen=True)
class Who:
    """Who asked for a change: the login user, the real user behind sudo, and the host."""

    user: str = "unknown"
    real_user: str = "unknown"
    host: str = "unknown"

    def as_dict(self) -> dict[str, str]:
        return {"user": self.user, "real_user": self.real_user, "host": self.host}

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> Who:
        data = data or {}
        return cls(
            user=str(data.get("user", "unknown")),
            real_user=str(data.get("real_user", data.get("user", "unknown"))),
            host=str(data.get("host", "unknown")),
        )


def now_iso() -> str:
    """The time of a change, as the audit trail and the manifest write it (UTC, milliseconds)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def current_who(host: str | None = None) -> Who:
    """The user running this process and, through sudo, the person behind it."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    real = os.environ.get("SUDO_USER") or user
    return Who(user=user, real_user=real, host=host or platform.node())


@dataclass(frozen=True)
class AuditRecord:
    command: str
    args: list[str]
    result: str
    who: Who
    generation_before: int | None = None
    generation_after: int | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "time": now_iso(),
            "user": self.who.user,
            "real_user": self.who.real_user,
            "host": self.who.host,
            "command": self.command,
            "args": list(self.args),
            "result": self.result,
            "generation_before": self.generation_before,
            "generation_after": self.generation_after,
        }
        if self.detail:
            record["detail"] = self.detail
        return record


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: AuditRecord) -> dict[str, Any]:
        """Append one line with a single O_APPEND write, so concurrent writers never interleave."""
        data = record.as_dict()
        line = (json.dumps(data, sort_keys=True) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError(f"cannot write the audit log {self.path}: {exc.strerror}") from exc
        return data

    def tail(self, count: int | None = None) -> list[dict[str, Any]]:
        """The last `count` records (all when None); unreadable lines are skipped, not fatal."""
        try:
            handle = self.path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"cannot read the audit log {self.path}: {exc.strerror}") from exc
        with handle:
            lines: deque[str] | list[str] = deque(handle, maxlen=count) if count else list(handle)
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records
