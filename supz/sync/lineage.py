"""The recent states (generation, digest) this host's registry has held.

A receiver about to replace a version it made itself asks whether the sender ever held that
version: if so the sender's registry descends from it (nothing is lost); if not, a partition
let both sides change the registry and the receiver sets its copy aside instead of dropping it.
"""

from __future__ import annotations

import json
from contextlib import suppress

from supz.fsutil import write_quick
from supz.paths import HostPaths

MAX_STATES = 256

State = tuple[int, str]


def load(paths: HostPaths) -> list[State]:
    try:
        data = json.loads(paths.sync_lineage.read_text(encoding="utf-8"))
        return [(int(g), str(d)) for g, d in data["states"]][-MAX_STATES:]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def record(paths: HostPaths, generation: int, digest: str) -> None:
    """Remember one state; a lost write only costs a needless set-aside later, so no fsync."""
    states = load(paths)
    if states and states[-1] == (generation, digest):
        return
    states = [s for s in states if s != (generation, digest)] + [(generation, digest)]
    with suppress(OSError):
        paths.sync_lineage.parent.mkdir(parents=True, exist_ok=True)
    write_quick(paths.sync_lineage, json.dumps({"states": states[-MAX_STATES:]}))
