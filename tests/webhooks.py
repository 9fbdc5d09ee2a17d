"""A webhook receiver for tests: an HTTP handler class that records every JSON body POSTed to it."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


def recording_handler(got: list[dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    """A handler that appends each POSTed JSON body to `got` and answers 204."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler
