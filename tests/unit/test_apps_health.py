"""Health checks: a URL on loopback, a command; polled until they pass or the deadline."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from supz.apps.health import HealthCheck, probe_url, validate_url, wait_healthy
from supz.errors import ConfigError


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_url_answers(server: str) -> None:
    assert probe_url(f"{server}/ok", 2) is None
    assert probe_url(f"{server}/down", 2) == "HTTP 503"
    assert "refused" in (probe_url(f"http://127.0.0.1:{closed_port()}/", 2) or "").lower()


def test_wait_healthy_reports_the_last_failure(server: str, tmp_path: Path) -> None:
    assert wait_healthy(HealthCheck(url=f"{server}/ok", timeout=2), tmp_path) is None
    problem = wait_healthy(HealthCheck(url=f"{server}/down", timeout=0.5), tmp_path)
    assert problem == f"health URL {server}/down failed for 0.5 s: HTTP 503"


def test_health_commands_run_in_the_release_without_a_shell(tmp_path: Path) -> None:
    (tmp_path / "ready").write_text("")
    assert wait_healthy(HealthCheck(command="test -f ready", timeout=1), tmp_path) is None
    problem = wait_healthy(HealthCheck(command="sh -c 'echo not yet >&2; exit 3'", timeout=0.3), tmp_path)
    assert problem is not None and problem.endswith("exit 3: not yet")
    missing = wait_healthy(HealthCheck(command="./no-such-check", timeout=0.3), tmp_path)
    assert missing is not None and "cannot run ./no-such-check" in missing
    assert wait_healthy(HealthCheck(command="test -f 'ready; rm -rf x'", timeout=0.3), tmp_path) is not None


def test_no_check_configured_passes(tmp_path: Path) -> None:
    assert wait_healthy(HealthCheck(), tmp_path) is None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", "localhost:80", "http://", "http://a b/"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(ConfigError):
        validate_url(url)
