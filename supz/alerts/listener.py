"""The supervisor event listener that raises an alert when an application goes FATAL or exits
unexpectedly on the MASTER: supervisor's standard way of watching processes.

Run as the host-local `[eventlistener:supz-alerts-events]` (etc/supz/host.d/supz-alerts-events.conf):

```ini
[eventlistener:supz-alerts-events]
command = /opt/supz/.venv/bin/supz --root / alerts listen
events = PROCESS_STATE_FATAL,PROCESS_STATE_EXITED
```

Only registry applications count (host-local programs, the syncer and agents are the host's own
business), and only on the MASTER (a BACKUP stops them on purpose).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO

from supz.alerts.spool import emit
from supz.paths import HostPaths
from supz.role import HA_ROLE, read_role


def _fields(line: str) -> dict[str, str]:
    """`key:value key:value` (supervisor's header and payload lines) as a dict."""
    found: dict[str, str] = {}
    for word in line.split():
        key, sep, value = word.partition(":")
        if sep:
            found[key] = value
    return found


def handle(paths: HostPaths, host: str, headers: dict[str, str], payload: str, registry: set[str]) -> bool:
    """Raise an alert for one event if it is worth one; True if it did."""
    kind = headers.get("eventname", "")
    data = _fields(payload.split("\n", 1)[0])
    group = data.get("groupname", "")
    if group not in registry or read_role(paths) != HA_ROLE:
        return False
    if kind == "PROCESS_STATE_FATAL":
        state = "FATAL"
    elif kind == "PROCESS_STATE_EXITED" and data.get("expected") == "0":
        state = "EXITED unexpectedly"
    else:
        return False
    emit(paths, host, "application", name=group, process=data.get("processname", group), state=state,
         pid=data.get("pid"))
    return True


def listen(paths: HostPaths, host: str, active: Callable[[], Iterable[str]], stdin: IO[str], stdout: IO[str]) -> None:
    """supervisor's listener protocol, forever: READY, one event, RESULT 2 OK."""
    while True:
        stdout.write("READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return
        headers = _fields(line)
        payload = stdin.read(int(headers.get("len", "0")))
        try:
            handle(paths, host, headers, payload, set(active()))
        finally:
            stdout.write("RESULT 2\nOK")
            stdout.flush()
