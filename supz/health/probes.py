"""The probes: HTTP(S) (status codes, optional body text), TCP connect, a command with a timeout.

Every probe is a coroutine that never raises: it returns a `ProbeResult` saying what was seen.
The health daemon runs thousands of them on one event loop with one pooled HTTP client
(aiohttp); `probe_once` runs one for callers that are not async (the deploy health check).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supz.health.settings import ProbeKind, Target

# Enough of a body to find the expected text without reading a whole page.
BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    code: int | None      # HTTP status, or the command's exit status; None for TCP and errors
    detail: str           # what a person reads: "HTTP 502", "timed out after 2 s", "exit 1: ..."
    elapsed: float        # seconds
    at: float             # wall-clock time the probe finished

    def describe(self) -> str:
        return f"{self.detail} in {self.elapsed:.2f} s"


def new_session(limit: int = 100) -> Any:
    """One pooled HTTP client for many probes (keep-alive, a bounded number of connections)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300, enable_cleanup_closed=False)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": "supz-health"},
                                 auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())


async def probe(target: Target, session: Any = None, env: Mapping[str, str] | None = None) -> ProbeResult:
    """Run `target`'s probe once, within its timeout."""
    started = time.monotonic()
    timeout = target.settings.timeout
    try:
        if target.kind is ProbeKind.HTTP:
            # aiohttp's own deadline (a timer, not a wrapping task: cheaper at thousands of probes).
            ok, code, detail = await _http(target, session)
        elif target.kind is ProbeKind.TCP:
            ok, code, detail = await asyncio.wait_for(_tcp(target), timeout)
        else:
            ok, code, detail = await _command(target, timeout, env)
    except asyncio.TimeoutError:
        ok, code, detail = False, None, f"timed out after {timeout:g} s"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a probe reports, it never raises
        ok, code, detail = False, None, failure_reason(exc)
    return ProbeResult(ok, code, detail, time.monotonic() - started, time.time())


def failure_reason(exc: BaseException) -> str:
    """What a person reads of a failed connection or request: the OS's word when there is one."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno:
        text = os.strerror(exc.errno)
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    cause = exc.__cause__ or getattr(exc, "os_error", None)
    if isinstance(cause, OSError) and cause.errno and not isinstance(exc, OSError):
        text = os.strerror(cause.errno)
    return " ".join(text.split())[:200]


async def _http(target: Target, session: Any) -> tuple[bool, int | None, str]:
    settings = target.settings
    own = session is None
    if own:
        session = new_session(limit=1)
    try:
        import aiohttp

        deadline = aiohttp.ClientTimeout(total=settings.timeout)
        async with session.get(target.target, allow_redirects=False, timeout=deadline) as response:
            code = int(response.status)
            good = any(low <= code <= high for low, high in settings.expect)
            if not good:
                return False, code, f"HTTP {code}"
            if settings.body:
                data = await response.content.read(BODY_LIMIT)
                if settings.body.encode("utf-8") not in data:
                    return False, code, f"HTTP {code} without {settings.body!r}"
            else:
                response.release()
            return True, code, f"HTTP {code}"
    finally:
        if own:
            await session.close()


async def _tcp(target: Target) -> tuple[bool, int | None, str]:
    _reader, writer = await asyncio.open_connection(target.host, target.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, None, "connected"


async def _command(target: Target, timeout: float, env: Mapping[str, str] | None) -> tuple[bool, int | None, str]:
    try:
        process = await asyncio.create_subprocess_exec(
            *target.argv, cwd=target.cwd or None, env=dict(os.environ if env is None else env),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
    except OSError as exc:
        return False, None, f"cannot run {target.argv[0]}: {exc.strerror}"
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        await process.wait()
        return False, None, f"timed out after {timeout:g} s"
    code = int(process.returncode or 0)
    if code == 0:
        return True, 0, "exit 0"
    lines = (err or out).decode("utf-8", "replace").strip().splitlines()
    return False, code, f"exit {code}" + (f": {lines[-1][:160]}" if lines else "")


def probe_once(target: Target, env: Mapping[str, str] | None = None) -> ProbeResult:
    """One probe, for synchronous callers (the deploy check)."""
    return asyncio.run(probe(target, None, env))
