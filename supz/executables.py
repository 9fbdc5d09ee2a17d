"""Where supz's own programs are: the console scripts installed with it (supz, supzcli,
supz-check), for what runs them from outside this process (sup_run.sh, keepalived, the
syncer's program, a peer over ssh, the demo)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def supz_executable(name: str = "supz") -> Path:
    """The program `name` of this installation: the one beside the running interpreter (the same
    environment; both hosts of a pair are installed alike), else the one on PATH, else the path
    it would have beside the interpreter (so a message can name it). Always absolute."""
    beside = Path(os.path.abspath(sys.executable)).parent / name
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    return Path(os.path.abspath(found)) if found else beside
