"""The [failover] section of the supz config: the VRRP pair and the health check."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from supz.config import ConfigFile
from supz.errors import ConfigError
from supz.names import validate_name


@dataclass(frozen=True)
class FailoverSettings:
    vip: str = ""  # address/prefix, e.g. 10.0.0.100/24
    interface: str = ""
    router_id: int = 51
    priority: int = 100
    unicast_src: str = ""
    peers: tuple[str, ...] = ()
    advert_int: int = 1
    notify: str = "notify"  # or "fifo"
    critical: tuple[str, ...] = ()
    check_interval: int = 1
    check_timeout: float = 0.8

    @property
    def vip_address(self) -> str:
        return self.vip.split("/", 1)[0]


def _addresses(values: list[str], key: str) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: {value!r} is not an IP address", thing=value) from exc
    return tuple(values)


def load_failover_settings(config: ConfigFile) -> FailoverSettings:
    """Read [failover]; a missing section means the defaults (no VIP: keepalived not rendered)."""
    section = config.section("failover")
    if section is None:
        return FailoverSettings()
    try:
        vip = section.get("vip", "").strip()
        if vip:
            ipaddress.ip_interface(vip)
        settings = FailoverSettings(
            vip=vip,
            interface=section.get("interface", "").strip(),
            router_id=section.getint("router_id", 51),
            priority=section.getint("priority", 100),
            unicast_src=_addresses(section.get("unicast_src", "").split(), "unicast_src")[0]
            if section.get("unicast_src", "").strip() else "",
            peers=_addresses(section.get("peers", "").split(), "peers"),
            advert_int=section.getint("advert_int", 1),
            notify=section.get("notify", "notify").strip(),
            critical=tuple(validate_name(n) for n in section.get("critical", "").split()),
            check_interval=section.getint("check_interval", 1),
            check_timeout=section.getfloat("check_timeout", 0.8),
        )
    except ConfigError as exc:
        raise config.error("failover", exc, thing=exc.thing) from exc
    except ValueError as exc:
        raise config.error("failover", exc) from exc
    if settings.notify not in ("notify", "fifo"):
        raise config.error("failover", f"notify must be 'notify' or 'fifo', not {settings.notify!r}")
    if not 1 <= settings.router_id <= 255 or not 1 <= settings.priority <= 254:
        raise config.error("failover", "router_id must be 1-255 and priority 1-254")
    return settings
