"""A supervisord client that calls getState every 50 ms and reports the longest wait.

Run as its own process (`python -m bench.probe SOCKET`), so the benchmark's own work never
delays it: it probes until a line arrives on its stdin, then prints one JSON object
(`longest`, `calls`, `failed`) and exits. What a keepalived check sees while supervisord works.
"""

from __future__ import annotations

import json
import select
import sys
import time

from supz.errors import SupzError
from supz.supervisord.client import SupervisorClient

INTERVAL = 0.05


def probe(socket: str) -> dict[str, float]:
    longest, calls, failed = 0.0, 0, 0
    while True:
        began = time.monotonic()
        try:
            with SupervisorClient(f"unix://{socket}") as client:
                client.supervisor("getState")
        except SupzError:
            failed += 1
        longest = max(longest, time.monotonic() - began)
        calls += 1
        ready, _, _ = select.select([sys.stdin], [], [], INTERVAL)
        if ready:
            return {"longest": longest, "calls": calls, "failed": failed}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1])), flush=True)
