"""The OCF agent's executable: a thin shell script where Pacemaker looks for agents.

Pacemaker runs /usr/lib/ocf/resource.d/PROVIDER/TYPE with the action as its argument and the
resource's parameters as OCF_RESKEY_*; this one hands everything to `supz pacemaker agent`. The
Debian package carries it with /usr/bin/supz; `supz pacemaker install-agent` writes it naming the
supz that runs the command (a virtual environment, a test). Standard library only: the package
build imports it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

AGENT_DIR = Path("/usr/lib/ocf/resource.d/supz")
AGENT_NAME = "registry"

_SCRIPT = """\
#!/bin/sh
# ocf:supz:registry, the OCF resource agent of supz (docs/pacemaker.md). Pacemaker passes the
# resource's parameters as OCF_RESKEY_root (the supz host root, default /) and OCF_RESKEY_supz
# (the supz command, default below). `supz --root ROOT pacemaker agent ACTION` does the work and
# exits with the OCF code.
default_supz={supz}
supz="${{OCF_RESKEY_supz:-$default_supz}}"
if [ ! -x "$supz" ]; then
    echo "ocf:supz:registry: $supz is not installed" >&2
    exit 5  # OCF_ERR_INSTALLED
fi
exec "$supz" --root "${{OCF_RESKEY_root:-/}}" pacemaker agent "${{1:-usage}}"
"""


def agent_script(supz: str) -> str:
    return _SCRIPT.format(supz=shlex.quote(supz))


def install_agent(folder: Path, supz: str) -> Path:
    """Write the agent as FOLDER/registry, mode 0755, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / AGENT_NAME
    spare = folder / f".{AGENT_NAME}.new"
    spare.write_text(agent_script(supz), encoding="utf-8")
    os.chmod(spare, 0o755)
    os.replace(spare, target)
    return target
