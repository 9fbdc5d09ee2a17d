"""Counting a host's programs the way the kernel sees them: /proc, not supervisord.

Every process a supervisord of a supz root started carries `SUPZ_SUPERVISORD=<root>` and
supervisor's `SUPERVISOR_PROCESS_NAME` in its environment (/proc/PID/environ keeps both even
after its supervisord died), so a test counts copies per application and per host without
asking anyone who might be dead or lying.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

from supz.host.leftovers import MARK


def programs_by_root(roots: list[Path]) -> dict[Path, collections.Counter[str]]:
    """root -> Counter(program name -> live processes), for processes supervisord started itself
    (a program's own children, such as the syncer's ssh, are not counted)."""
    return {root: collections.Counter({name: len(found) for name, found in names.items()})
            for root, names in program_pids(roots).items()}


def program_pids(roots: list[Path]) -> dict[Path, dict[str, list[int]]]:
    """root -> program name -> pids of its live processes, as `programs_by_root` counts them."""
    wanted = {f"{MARK}={root}".encode(): root for root in roots}
    counts: dict[Path, dict[str, list[int]]] = {root: {} for root in roots}
    marked: dict[int, tuple[Path, str]] = {}
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        found = supervised_process(pid)
        if found is None:
            continue
        env, name, parent = found
        root = next((wanted[item] for item in env if item in wanted), None)
        if root is None:
            continue
        marked[pid] = (root, name)
        parents[pid] = parent
    for pid, (root, name) in marked.items():
        parent = marked.get(parents[pid])
        if parent is not None and parent[1] == name:
            continue  # a child of the program, not a copy of it
        counts[root].setdefault(name, []).append(pid)
    return {root: {name: sorted(found) for name, found in names.items()} for root, names in counts.items()}


def supervised_process(pid: int) -> tuple[list[bytes], str, int] | None:
    """(environment, program name, parent pid) of a live process a supervisord started, from
    /proc; None for a process gone, a zombie, or one no supervisord started (supervisord itself)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            env = handle.read().split(b"\0")
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    name = next((item.split(b"=", 1)[1].decode() for item in env if item.startswith(b"SUPERVISOR_PROCESS_NAME=")),
                None)
    return None if name is None else (env, name, int(fields[1]))
