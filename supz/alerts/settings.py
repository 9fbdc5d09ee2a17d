"""The [alerts] section: where events go, and how the spool behaves.

```ini
[alerts]
target.ops = webhook http://10.0.0.9:8080/supz   ; a JSON POST per event
target.pager = command /usr/local/bin/page --team ops   ; the event as JSON on stdin
spool_max = 1000       ; events kept on disk; past it the oldest are dropped (and counted)
timeout = 5            ; seconds per delivery attempt
retry_max = 30         ; the longest pause between attempts at a target that is down
peer_threshold = 30    ; a peer unreachable / newer / diverged / split brain this long raises an event
watch_interval = 5     ; how often `supz alerts deliver` looks at the peers (0: never)
```
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from supz.config import ConfigFile

KINDS = ("webhook", "command")


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "webhook" or "command"
    url: str = ""
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertSettings:
    targets: tuple[Target, ...] = ()
    spool_max: int = 1000
    timeout: float = 5.0
    retry_max: float = 30.0
    peer_threshold: float = 30.0
    watch_interval: float = 5.0


def _target(config: ConfigFile, name: str, value: str) -> Target:
    words = shlex.split(value)
    if len(words) < 2 or words[0] not in KINDS:
        raise config.error("alerts", f"target.{name}: want 'webhook URL' or 'command PROGRAM [ARGS]', not {value!r}",
                           thing=f"target.{name}")
    if words[0] == "webhook":
        if not words[1].startswith(("http://", "https://")) or len(words) != 2:
            raise config.error("alerts", f"target.{name}: {words[1]!r} is not an http(s) URL", thing=f"target.{name}")
        return Target(name, "webhook", url=words[1])
    return Target(name, "command", argv=tuple(words[1:]))


def load_alert_settings(config: ConfigFile) -> AlertSettings:
    """Read [alerts]; a missing section means no targets (events are then not even spooled)."""
    section = config.section("alerts")
    if section is None:
        return AlertSettings()
    try:
        targets = tuple(_target(config, key[len("target."):], value) for key, value in section.items()
                        if key.startswith("target."))
        settings = AlertSettings(targets, section.getint("spool_max", 1000), section.getfloat("timeout", 5.0),
                                 section.getfloat("retry_max", 30.0), section.getfloat("peer_threshold", 30.0),
                                 section.getfloat("watch_interval", 5.0))
    except ValueError as exc:
        raise config.error("alerts", exc) from exc
    if settings.spool_max < 1:
        raise config.error("alerts", "spool_max must be at least 1")
    return settings
