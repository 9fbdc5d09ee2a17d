"""`supz up` / `supz down`: start supervisord from supz's own environment and stop it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from supz.errors import ConfigError, NotInstalled, OperationFailed, SupzError
from supz.host import distro
from supz.host.leftovers import find_leftovers, mark, pid_alive, sweep
from supz.paths import HostPaths
from supz.supervisord.client import SupervisorClient


def supervisord_binary() -> Path:
    """The supervisord beside this Python: the one that can import supz."""
    return Path(sys.executable).parent / "supervisord"


def _pid(paths: HostPaths) -> int | None:
    """supervisord's pid, from the pid file its config names (Debian: /var/run/supervisord.pid)."""
    try:
        pidfile = distro.settings(paths).pidfile
    except ConfigError:
        pidfile = paths.pidfile
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _first_error(output: str, code: int) -> str:
    """supervisord's own reason, not its closing 'For help, use ... -h' line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    chosen = errors[0] if errors else next((line for line in lines if not line.startswith("For help")), "")
    return chosen or f"exit {code}"


def up(paths: HostPaths, timeout: float = 30.0) -> str:
    """Start supervisord and return once it answers; a no-op when it already runs."""
    conf = paths.supervisord_conf
    if not conf.exists():
        raise NotInstalled(f"{conf} does not exist: run `supz --root {paths.root} init` first", thing=str(conf))
    client = SupervisorClient.for_host(paths)
    if client.is_up():
        return f"supervisord already running ({client.serverurl})"
    dist = distro.detect(paths)
    if dist is not None:
        # As the distribution starts it (systemd, its init script), never beside it. The extension
        # sweeps what an earlier supervisord left before anything is spawned.
        distro.start(dist)
        result = subprocess.CompletedProcess([], 0, "", "")
        ended = ""
    else:
        binary = supervisord_binary()
        if not binary.exists():
            raise NotInstalled(f"{binary} not found: supervisor is not installed in supz's environment")
        previous = _pid(paths)
        if previous is not None and previous in find_leftovers(paths):
            # A supervisord of this root is alive but not answering yet: it may be starting.
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and pid_alive(previous):
                if client.is_up():
                    return f"supervisord already running ({client.serverurl})"
                time.sleep(0.1)
        # No program outlives its supervisord: whatever a dead (or hung) one left is ended first.
        swept = sweep(paths, supervisord_pid=previous)
        ended = f"; {swept.describe()}" if swept.count else ""
        name, value = mark(paths)
        env = dict(os.environ, SUPZ_ROOT=str(paths.root), **{name: value})
        result = subprocess.run([str(binary), "-c", str(conf)], capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise OperationFailed(f"supervisord did not start: {_first_error(result.stderr or result.stdout, result.returncode)}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.is_up():
            return f"supervisord running (pid {_pid(paths)}, {client.serverurl}){ended}"
        time.sleep(0.05)
    raise OperationFailed(f"supervisord did not answer on {client.serverurl} within {timeout:g}s; see {paths.supervisord_log}")


def down(paths: HostPaths, timeout: float = 60.0) -> str:
    """Stop supervisord (and with it every program) and return once its process is gone."""
    client = SupervisorClient.for_host(paths)
    pid = _pid(paths)
    try:
        client.supervisor("shutdown")
    except SupzError:
        if pid is None or not pid_alive(pid):
            return "supervisord is not running"
        raise
    deadline = time.monotonic() + timeout
    while pid is not None and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid is not None and pid_alive(pid):
        raise OperationFailed(f"supervisord (pid {pid}) still running after {timeout:g}s")
    return "supervisord stopped"


def wait_settled(paths: HostPaths, timeout: float = 15.0) -> bool:
    """Wait until no process is STARTING (autostart done); False if some still are at the timeout."""
    deadline = time.monotonic() + timeout
    with SupervisorClient.for_host(paths) as client:
        while time.monotonic() < deadline:
            infos = client.supervisor("getAllProcessInfo")
            if not any(info["statename"] == "STARTING" for info in infos):
                return True
            time.sleep(0.1)
    return False
