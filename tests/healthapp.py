"""A tiny HTTP application for the health tests: `healthapp.py PORT FLAGDIR`.

It answers 200 "ok" until a flag file in FLAGDIR tells this process (by pid), every process of
its network namespace (`net-NNN`, see `netns_flag`) or every process (`all`) to misbehave:
`500` answers 500, `hang` accepts and never answers, `noaccept` closes its listening socket.
A restarted process has a new pid, so a pid flag breaks one process only.
"""

from __future__ import annotations

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT = int(sys.argv[1])
FLAGS = Path(sys.argv[2])


def _netns() -> str:
    try:
        return os.readlink("/proc/self/ns/net").replace(":", "-").strip("[]").replace("[", "")
    except OSError:
        return "none"


NETNS = _netns()


def mode() -> str:
    for name in (str(os.getpid()), NETNS, "all"):
        try:
            return (FLAGS / name).read_text().strip()
        except OSError:
            continue
    return "ok"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        current = mode()
        if current == "hang":
            time.sleep(3600)
        code = 500 if current == "500" else 200
        body = b"ok\n" if code == 200 else b"broken\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
server.timeout = 0.1
while True:
    if mode() == "noaccept":
        server.socket.close()
        while True:
            time.sleep(3600)
    server.handle_request()
