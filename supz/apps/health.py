"""Is a freshly started application healthy? Its health URL answers 2xx/3xx, or its health
command exits 0, within the deadline. Both are optional; RUNNING past startsecs is checked
by the deploy itself."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from supz.errors import ConfigError
from supz.quoting import split_command

POLL_INTERVAL = 0.25
# One attempt never takes longer than this, so a hung endpoint is retried rather than waited on.
ATTEMPT_TIMEOUT = 5.0


@dataclass(frozen=True)
class HealthCheck:
    url: str | None = None
    command: str | None = None
    timeout: float = 30.0

    @property
    def configured(self) -> bool:
        return bool(self.url or self.command)

    def describe(self) -> str:
        if self.url:
            return f"health URL {self.url}"
        if self.command:
            return f"health command {self.command}"
        return "no health check"


def validate_url(url: str) -> str:
    """An http(s) URL with a host: anything else (file:, ftp:, a bare word) is refused."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"health URL {url!r} must be an http:// or https:// URL with a host", thing=url)
    if any(ch.isspace() for ch in url):
        raise ConfigError(f"health URL {url!r} holds white space", thing=url)
    return url


def command_argv(command: str) -> list[str]:
    """A health command line split into its argument list (it never goes through a shell)."""
    return split_command(command, "health command")


def probe_url(url: str, timeout: float) -> str | None:
    """None when `url` answers 2xx or 3xx, else what went wrong."""
    request = urllib.request.Request(url, headers={"User-Agent": "supz-health"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{reason}"
    return None if 200 <= status < 400 else f"HTTP {status}"


def probe_command(argv: list[str], cwd: Path, timeout: float, env: Mapping[str, str]) -> str | None:
    """None when the command exits 0, else its exit status and last line of output."""
    try:
        result = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout:g} s"
    except OSError as exc:
        return f"cannot run {argv[0]}: {exc.strerror}"
    if result.returncode == 0:
        return None
    output = (result.stderr or result.stdout).strip().splitlines()
    return f"exit {result.returncode}" + (f": {output[-1]}" if output else "")


def wait_healthy(check: HealthCheck, cwd: Path, env: Mapping[str, str] | None = None) -> str | None:
    """Poll the check until it passes (None) or its deadline passes (the last failure)."""
    if not check.configured:
        return None
    environment = dict(os.environ if env is None else env)
    argv = command_argv(check.command) if check.command and not check.url else None
    deadline = time.monotonic() + check.timeout
    while True:
        attempt = max(0.1, min(ATTEMPT_TIMEOUT, deadline - time.monotonic()))
        if check.url:
            problem = probe_url(check.url, attempt)
        else:
            assert argv is not None
            problem = probe_command(argv, cwd, attempt, environment)
        if problem is None:
            return None
        if time.monotonic() + POLL_INTERVAL >= deadline:
            return f"{check.describe()} failed for {check.timeout:g} s: {problem}"
        time.sleep(POLL_INTERVAL)
