"""Is a freshly started application healthy? Its health URL answers 2xx/3xx, or its health
command exits 0, or (neither given) the probe of its program.ini's `supz_health_*` settings
passes for the restarted process, within the deadline. All are optional; RUNNING past
startsecs is checked by the deploy itself. Every probe is supz.health.probes' (the health
daemon's own code)."""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from supz.apps.conventions import AppLayout
from supz.errors import ConfigError
from supz.health.probes import probe_once
from supz.health.settings import HealthSettings, ProbeKind, Target, entry_targets
from supz.quoting import split_command

POLL_INTERVAL = 0.25
# One attempt never takes longer than this, so a hung endpoint is retried rather than waited on.
ATTEMPT_TIMEOUT = 5.0


@dataclass(frozen=True)
class HealthCheck:
    url: str | None = None
    command: str | None = None
    timeout: float = 30.0
    # namespec -> the probe program.ini's supz_health_* keys give it (used when no URL/command)
    targets: dict[str, Target] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.url or self.command or self.targets)

    def describe(self) -> str:
        if self.url:
            return f"health URL {self.url}"
        if self.command:
            return f"health command {self.command}"
        if self.targets:
            return f"health probe ({next(iter(self.targets.values())).settings.kind.value}, program.ini)"
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


def _adhoc(kind: ProbeKind, value: str, timeout: float, argv: tuple[str, ...] = (), cwd: str | None = None) -> Target:
    settings = HealthSettings(kind=kind, target=value, timeout=timeout)
    return Target(app="", namespec="", process="", settings=settings, kind=kind, target=value, argv=argv, cwd=cwd)


def probe_url(url: str, timeout: float) -> str | None:
    """None when `url` answers 2xx or 3xx, else what went wrong."""
    result = probe_once(_adhoc(ProbeKind.HTTP, url, timeout))
    return None if result.ok else result.detail


def probe_command(argv: list[str], cwd: Path, timeout: float, env: Mapping[str, str]) -> str | None:
    """None when the command exits 0, else its exit status and last line of output."""
    result = probe_once(_adhoc(ProbeKind.COMMAND, " ".join(argv), timeout, tuple(argv), str(cwd)), env)
    return None if result.ok else result.detail


def wait_healthy(check: HealthCheck, cwd: Path, env: Mapping[str, str] | None = None,
                 namespec: str | None = None) -> str | None:
    """Poll the check until it passes (None) or its deadline passes (the last failure).
    `namespec` picks the process's own probe when the check comes from program.ini."""
    target = check.targets.get(namespec or "") if not (check.url or check.command) else None
    if not (check.url or check.command or target):
        return None
    environment = dict(os.environ if env is None else env)
    argv = command_argv(check.command) if check.command and not check.url else None
    deadline = time.monotonic() + check.timeout
    while True:
        attempt = max(0.1, min(ATTEMPT_TIMEOUT, deadline - time.monotonic()))
        if check.url:
            problem = probe_url(check.url, attempt)
        elif target is not None:
            result = probe_once(target, environment)
            problem = None if result.ok else result.detail
        else:
            assert argv is not None
            problem = probe_command(argv, cwd, attempt, environment)
        if problem is None:
            return None
        if time.monotonic() + POLL_INTERVAL >= deadline:
            what = check.describe() if target is None else f"health probe {target.target}"
            return f"{what} failed for {check.timeout:g} s: {problem}"
        time.sleep(POLL_INTERVAL)


def entry_probes(layout: AppLayout) -> dict[str, Target]:
    """namespec -> probe from DIR/program.ini's supz_health_* keys ({} without program.ini or
    keys); invalid settings are a ConfigError, before a deploy switches anything."""
    try:
        text = layout.program_ini.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    return {t.namespec: t for t in entry_targets(text, layout.name)}
