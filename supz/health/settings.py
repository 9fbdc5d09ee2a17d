"""An application's health settings: `supz_health_*` keys in its own [program:NAME] section.

They live in the registry entry itself, so they travel with it everywhere the entry goes (one
checksum in the manifest, one file for the syncer, park/unpark, merge) and a standby that takes
over checks exactly the way the old MASTER did. supervisor reads the keys it knows by name and
ignores the others (checked by tests/unit/test_health_settings.py against supervisor's parser).
Values are expanded like supervisor's own (`%(process_num)02d`, `%(program_name)s`,
`%(ENV_X)s`; a literal `%` is written `%%`), once per numbered instance.
"""

from __future__ import annotations

import configparser
import platform
import urllib.parse
from dataclasses import dataclass
from enum import Enum

from supz.errors import ConfigError
from supz.programfile import ProgramSpec, parse_program_text
from supz.quoting import split_command

PREFIX = "supz_health_"
KEYS = ("url", "expect", "body", "tcp", "cmd", "interval", "timeout", "fails", "rises",
        "start_period", "max_restarts", "window", "exhausted")


class Exhausted(str, Enum):
    """What happens when the restart budget is spent and the application is still unhealthy."""

    LEAVE = "leave"        # leave it running, reported UNHEALTHY, until the window frees a restart
    PARK = "park"          # park the application (stopped, kept stopped), the reason in the audit
    FAILOVER = "failover"  # critical: the MASTER's vrrp check fails, so the peer takes over


class ProbeKind(str, Enum):
    HTTP = "http"
    TCP = "tcp"
    COMMAND = "command"


@dataclass(frozen=True)
class HealthSettings:
    """One application's probe and policy (values before per-instance expansion)."""

    kind: ProbeKind
    target: str                       # URL, host:port or command line (unexpanded)
    expect: tuple[tuple[int, int], ...] = ((200, 399),)
    body: str = ""
    interval: float = 5.0
    timeout: float = 2.0
    fails: int = 3
    rises: int = 2
    start_period: float = 10.0
    max_restarts: int = 3
    window: float = 600.0
    exhausted: Exhausted = Exhausted.LEAVE

    def describe(self) -> str:
        return f"{self.kind.value} {self.target}"

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "target": self.target, "expect": expect_text(self.expect),
                "body": self.body, "interval": self.interval, "timeout": self.timeout,
                "fails": self.fails, "rises": self.rises, "start_period": self.start_period,
                "max_restarts": self.max_restarts, "window": self.window,
                "exhausted": self.exhausted.value}


@dataclass(frozen=True)
class Target:
    """One process to probe: its namespec and its expanded probe."""

    app: str
    namespec: str          # GROUP:PROCESS
    process: str
    settings: HealthSettings
    kind: ProbeKind
    target: str            # expanded URL, host:port or command line
    argv: tuple[str, ...] = ()
    host: str = ""
    port: int = 0
    cwd: str | None = None


def expect_text(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def parse_expect(value: str) -> tuple[tuple[int, int], ...]:
    """`200`, `200-299,301`: the HTTP status codes that count as healthy."""
    ranges = []
    for part in value.replace(" ", "").split(","):
        low, _, high = part.partition("-")
        try:
            a, b = int(low), int(high or low)
        except ValueError:
            raise ConfigError(f"{PREFIX}expect: {value!r} is not a list of codes (200-299,301)", thing=value) from None
        if not (100 <= a <= b <= 599):
            raise ConfigError(f"{PREFIX}expect: {part!r} is not an HTTP status range", thing=value)
        ranges.append((a, b))
    return tuple(ranges)


def _number(raw: dict[str, str], key: str, default: float, *, minimum: float, integer: bool = False) -> float:
    if key not in raw:
        return default
    try:
        value = int(raw[key]) if integer else float(raw[key])
    except ValueError:
        kind = "a whole number" if integer else "a number of seconds"
        raise ConfigError(f"{PREFIX}{key} = {raw[key]!r}: not {kind}", thing=key) from None
    if value < minimum:
        raise ConfigError(f"{PREFIX}{key} = {raw[key]!r}: must be at least {minimum:g}", thing=key)
    return value


def raw_keys(text: str, name: str) -> dict[str, str]:
    """The supz_health_* keys of [program:NAME], unexpanded (unknown supz_health_ keys refused)."""
    from supervisor.options import UnhosedConfigParser

    parser = UnhosedConfigParser()
    try:
        parser.read_string(text, source=f"{name}.conf")
    except configparser.Error as exc:
        raise ConfigError(f"{name}: {exc}", thing=name) from exc
    section = f"program:{name}"
    if not parser.has_section(section):
        return {}
    found = {}
    for key in parser.options(section):
        if key.startswith(PREFIX):
            short = key[len(PREFIX):]
            if short not in KEYS:
                raise ConfigError(f"{name}: unknown health key {key} (known: {', '.join(PREFIX + k for k in KEYS)})",
                                  thing=key)
            found[short] = parser.get(section, key).strip()
    return found


def settings_from_keys(raw: dict[str, str], name: str = "") -> HealthSettings | None:
    """The settings the keys describe; None when the application has no probe."""
    probes = [k for k in ("url", "tcp", "cmd") if raw.get(k)]
    if not probes:
        if raw:
            raise ConfigError(f"{name}: health settings without a probe: set {PREFIX}url, "
                              f"{PREFIX}tcp or {PREFIX}cmd", thing=name)
        return None
    if len(probes) > 1:
        raise ConfigError(f"{name}: give one probe, not {', '.join(PREFIX + p for p in probes)}", thing=name)
    kind = {"url": ProbeKind.HTTP, "tcp": ProbeKind.TCP, "cmd": ProbeKind.COMMAND}[probes[0]]
    if kind is not ProbeKind.HTTP and (raw.get("expect") or raw.get("body")):
        raise ConfigError(f"{name}: {PREFIX}expect and {PREFIX}body are for {PREFIX}url", thing=name)
    exhausted = raw.get("exhausted", "leave").lower()
    if exhausted not in {e.value for e in Exhausted}:
        raise ConfigError(f"{name}: {PREFIX}exhausted = {exhausted!r}: expected leave, park or failover",
                          thing=name)
    settings = HealthSettings(
        kind=kind,
        target=raw[probes[0]],
        expect=parse_expect(raw["expect"]) if raw.get("expect") else ((200, 399),),
        body=raw.get("body", ""),
        interval=_number(raw, "interval", 5.0, minimum=0.1),
        timeout=_number(raw, "timeout", 2.0, minimum=0.05),
        fails=int(_number(raw, "fails", 3, minimum=1, integer=True)),
        rises=int(_number(raw, "rises", 2, minimum=1, integer=True)),
        start_period=_number(raw, "start_period", 10.0, minimum=0),
        max_restarts=int(_number(raw, "max_restarts", 3, minimum=0, integer=True)),
        window=_number(raw, "window", 600.0, minimum=1),
        exhausted=Exhausted(exhausted),
    )
    # Check the unexpanded value's shape once (each instance is checked again after expansion).
    _check_target(kind, settings.target.replace("%%", "%"), name, expanded=False)
    return settings


def _check_target(kind: ProbeKind, value: str, name: str, *, expanded: bool = True) -> tuple[str, int]:
    if kind is ProbeKind.HTTP:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
            raise ConfigError(f"{name}: {PREFIX}url {value!r} must be an http:// or https:// URL with a host",
                              thing=value)
    elif kind is ProbeKind.TCP:
        host, sep, port = value.rpartition(":")
        if not sep or not host:
            raise ConfigError(f"{name}: {PREFIX}tcp {value!r} must be HOST:PORT", thing=value)
        if expanded:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"{name}: {PREFIX}tcp {value!r}: the port must be 1-65535", thing=value)
            return host.strip("[]"), int(port)
    else:
        split_command(value, f"{PREFIX}cmd")
    return "", 0


def load_health(text: str, name: str) -> HealthSettings | None:
    """The health settings of the entry `text` of program `name` (None: not probed)."""
    return settings_from_keys(raw_keys(text, name), name)


def targets(spec: ProgramSpec, settings: HealthSettings) -> list[Target]:
    """One target per process of the program, `%(process_num)` and friends expanded for each."""
    from supervisor.options import expand

    from supz.programfile import new_server_options

    options = new_server_options()
    start = _numprocs_start(spec.text, spec.name)
    found = []
    for index, process in enumerate(spec.group_config.process_configs):
        expansions = {"program_name": spec.name, "group_name": spec.name, "process_num": start + index,
                      "numprocs": len(spec.group_config.process_configs), "host_node_name": platform.node(),
                      "here": None}
        expansions.update(options.environ_expansions)
        for key, value in (process.environment or {}).items():
            expansions[f"ENV_{key}"] = value
        try:
            value = expand(settings.target, expansions, f"{PREFIX}{settings.kind.value}")
        except ValueError as exc:
            raise ConfigError(f"{spec.name}: {exc}", thing=spec.name) from exc
        host, port = _check_target(settings.kind, value, spec.name)
        argv = tuple(split_command(value, f"{PREFIX}cmd")) if settings.kind is ProbeKind.COMMAND else ()
        found.append(Target(app=spec.name, namespec=f"{spec.name}:{process.name}", process=process.name,
                            settings=settings, kind=settings.kind, target=value, argv=argv, host=host,
                            port=port, cwd=process.directory))
    return found


def _numprocs_start(text: str, name: str) -> int:
    from supervisor.options import UnhosedConfigParser

    parser = UnhosedConfigParser()
    parser.read_string(text)
    try:
        return int(parser.get(f"program:{name}", "numprocs_start", fallback="0"))
    except ValueError:
        return 0


def entry_targets(text: str, name: str) -> list[Target]:
    """Targets of a registry entry's text; [] when it has no probe. ConfigError / InvalidProgramFile
    name what is wrong."""
    settings = load_health(text, name)
    if settings is None:
        return []
    return targets(parse_program_text(text, name), settings)

