"""`supz failover fifo PATH`: apply keepalived's notify_fifo transitions one at a time, in order."""

from __future__ import annotations

import os
import shlex
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from supz.errors import ConfigError
from supz.failover.transitions import Announcement, TransitionResult, announce, reconcile
from supz.paths import HostPaths
from supz.role import ROLES


def parse_line(line: str) -> Announcement | None:
    """`INSTANCE "supz" MASTER 100` -> an announcement; other lines (vrrp_script results...) -> None."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if len(words) < 3 or words[0] not in ("INSTANCE", "GROUP") or words[2] not in ROLES:
        return None
    return Announcement(state=words[2], seq=(time.monotonic_ns(), os.getpid()), instance=words[1])


def open_fifo(path: Path) -> Iterator[str]:
    """Lines from the FIFO forever; opened read-write so a writer closing it is not an end of file."""
    if not path.exists():
        os.mkfifo(path, 0o600)
    elif not stat.S_ISFIFO(path.stat().st_mode):
        raise ConfigError(f"{path} exists and is not a FIFO", thing=str(path))
    fd = os.open(path, os.O_RDWR)
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as handle:
        yield from handle


def run_fifo(paths: HostPaths, host: str, lines: Iterator[str],
             on_transition: Callable[[TransitionResult], None] | None = None,
             pull_first: Callable[[HostPaths], str] | None = None) -> None:
    for line in lines:
        announcement = parse_line(line)
        if announcement is None:
            continue
        announce(paths, announcement)
        for result in reconcile(paths, host, pull_first):
            if on_transition is not None:
                on_transition(result)
