"""`python -m supz.sync.hook --root ROOT`: the rsync daemon's pre-xfer exec on a receiving host.

Kept apart from the click CLI so each transfer starts as few modules as possible.
"""

from __future__ import annotations

import sys

from supz.sync.agent import hook_main

if __name__ == "__main__":
    sys.exit(hook_main())
