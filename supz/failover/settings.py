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
    # A supervisord that is alive but slow to answer (busy starting programs) passes the check
    # for this long; 0: derived from the host's program count (`busy_grace_for`).
    busy_grace: float = 0.0
    # After losing MASTER by its own failure (FAULT), this host's check fails this long, so it
    # does not bounce back.
    hold_down: float = 30.0
    # flap_count transitions within flap_window seconds freeze this host's failover (reported
    # by `supz status --cluster`; `supz failover thaw` ends it).
    flap_count: int = 6
    flap_window: float = 60.0
    # A MASTER whose keepalived has not run its check for this long stops its HA applications
    # (the watchdog); 0: 3 check intervals plus 1 s.
    keepalived_silence: float = 0.0
    # Before going MASTER, how long to keep asking a silent peer for its registry generation.
    pull_budget: float = 3.0
    # Registry changes (park, unpark, add, remove) on a host that is not MASTER: refused unless yes.
    changes_off_master: bool = False

    @property
    def vip_address(self) -> str:
        return self.vip.split("/", 1)[0]

    def busy_grace_for(self, programs: int) -> float:
        """How long a busy supervisord passes the check: 10 s plus 10 ms per program."""
        return self.busy_grace or 10.0 + 0.01 * programs

    @property
    def silence_limit(self) -> float:
        return self.keepalived_silence or 3.0 * self.check_interval + 1.0


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
            busy_grace=section.getfloat("busy_grace", 0.0),
            hold_down=section.getfloat("hold_down", 30.0),
            flap_count=section.getint("flap_count", 6),
            flap_window=section.getfloat("flap_window", 60.0),
            keepalived_silence=section.getfloat("keepalived_silence", 0.0),
            pull_budget=section.getfloat("pull_budget", 3.0),
            changes_off_master=section.getboolean("changes_off_master", False),
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
