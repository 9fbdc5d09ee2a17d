"""The [sync] section of the supz config: peers, transport options, intervals.

Peers, comma- or line-separated:
    [user@]host[:root]                   rsync over ssh; root is the peer's supz root (default /)
    rsync://[user@]host[:port]/module    rsync daemon (auth user and password file below)
    /path/to/root                        another root on this machine (tests, demos, benchmarks)
"""

from __future__ import annotations

import configparser
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from supz.config import ConfigFile
from supz.errors import ConfigError
from supz.executables import supz_executable

SSH, DAEMON, LOCAL = "ssh", "daemon", "local"
DEFAULT_SSH_OPTIONS = (
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=5",
    "-o", "ServerAliveInterval=10",
    "-o", "ServerAliveCountMax=3",
)

_USER = r"[A-Za-z_][A-Za-z0-9_.-]{0,31}"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]"
_PATH = r"/[A-Za-z0-9_./+-]*"
_SSH_PEER = re.compile(rf"(?:(?P<user>{_USER})@)?(?P<host>{_HOST})(?::(?P<path>{_PATH}))?")
_DAEMON_PEER = re.compile(
    rf"rsync://(?:(?P<user>{_USER})@)?(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?/(?P<module>[A-Za-z0-9_-]+)/?"
)
_LOCAL_PEER = re.compile(_PATH)


@dataclass(frozen=True)
class Peer:
    """One peer to push to, parsed from its spec."""

    spec: str
    transport: str
    host: str = ""
    user: str = ""
    root: str = "/"
    port: int | None = None
    module: str = ""

    @property
    def key(self) -> str:
        """A file-name-safe tag for this peer (snapshot folders, control sockets)."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.spec).strip("_")[:48] or "peer"


def parse_peer(spec: str) -> Peer:
    """Parse a peer spec or raise ConfigError naming it."""
    text = spec.strip()
    if m := _DAEMON_PEER.fullmatch(text):
        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"peer {spec!r}: port {port} out of range", thing=spec)
        return Peer(text, DAEMON, host=m["host"], user=m["user"] or "", port=port, module=m["module"])
    if text.startswith("/"):
        if not _LOCAL_PEER.fullmatch(text) or "/../" in text + "/":
            raise ConfigError(f"peer {spec!r}: a local peer is an absolute path of plain characters", thing=spec)
        return Peer(text, LOCAL, root=text.rstrip("/") or "/")
    if m := _SSH_PEER.fullmatch(text) if not text.startswith("rsync:") else None:
        root = m["path"] or "/"
        if "/../" in root + "/":
            raise ConfigError(f"peer {spec!r}: '..' is not allowed in the root", thing=spec)
        return Peer(text, SSH, host=m["host"], user=m["user"] or "", root=root.rstrip("/") or "/")
    raise ConfigError(
        f"peer {spec!r}: expected [user@]host[:root], rsync://[user@]host[:port]/module or /local/root",
        thing=spec,
    )


def _default_supz() -> str:
    # Both hosts of a pair are installed alike: the peer's supz is where ours is.
    return str(supz_executable())


@dataclass(frozen=True)
class SyncSettings:
    peers: tuple[Peer, ...] = ()
    # A full resync (every file compared by checksum) at start, after an overflow, and this often.
    full_resync_interval: float = 3600.0
    # Seconds for connecting, for a silent transfer (rsync --timeout), and for a receiver's answer.
    timeout: float = 30.0
    # Backoff between attempts to reach a peer that is down.
    retry_min: float = 1.0
    retry_max: float = 5.0  # a healed partition is merged within seconds, not half a minute
    rsync: str = "rsync"
    remote_rsync: str = "rsync"
    remote_supz: str = field(default_factory=_default_supz)
    ssh: str = "ssh"
    ssh_options: tuple[str, ...] = DEFAULT_SSH_OPTIONS
    compress: bool = False
    # rsync daemon transport, sending side.
    daemon_user: str = "supz"
    password_file: Path | None = None
    # rsync daemon transport, receiving side (`supz sync rsyncd-conf`).
    rsyncd_address: str = ""
    rsyncd_port: int = 873
    rsyncd_module: str = "supz"
    rsyncd_auth_user: str = "supz"
    rsyncd_secrets_file: Path | None = None
    rsyncd_hosts_allow: str = ""


def _float(parser: configparser.ConfigParser, key: str, default: float, minimum: float) -> float:
    value = parser.getfloat("sync", key, fallback=default)
    if value < minimum:
        raise ValueError(f"{key} = {value}: must be at least {minimum}")
    return value


def load_sync_settings(config: ConfigFile) -> SyncSettings:
    """Read [sync]; missing keys keep their defaults."""
    parser = config.parser
    if not parser.has_section("sync"):
        return SyncSettings()
    get = parser["sync"].get
    try:
        specs = [s for s in re.split(r"[,\n]", get("peers", "")) if s.strip()]
        peers = tuple(parse_peer(s) for s in specs)
        if len({p.spec for p in peers}) != len(peers):
            raise ValueError("a peer is listed twice")
        defaults = SyncSettings()
        ssh_options = tuple(shlex.split(get("ssh_options", shlex.join(DEFAULT_SSH_OPTIONS))))
        password = get("password_file", "").strip()
        secrets = get("rsyncd_secrets_file", "").strip()
        settings = SyncSettings(
            peers=peers,
            full_resync_interval=_float(parser, "full_resync_interval", defaults.full_resync_interval, 1.0),
            timeout=_float(parser, "timeout", defaults.timeout, 1.0),
            retry_min=_float(parser, "retry_min", defaults.retry_min, 0.05),
            retry_max=_float(parser, "retry_max", defaults.retry_max, 0.05),
            rsync=get("rsync", defaults.rsync).strip(),
            remote_rsync=get("remote_rsync", defaults.remote_rsync).strip(),
            remote_supz=get("remote_supz", "").strip() or defaults.remote_supz,
            ssh=get("ssh", defaults.ssh).strip(),
            ssh_options=ssh_options,
            compress=parser.getboolean("sync", "compress", fallback=False),
            daemon_user=get("daemon_user", defaults.daemon_user).strip(),
            password_file=Path(password) if password else None,
            rsyncd_address=get("rsyncd_address", "").strip(),
            rsyncd_port=parser.getint("sync", "rsyncd_port", fallback=873),
            rsyncd_module=get("rsyncd_module", defaults.rsyncd_module).strip(),
            rsyncd_auth_user=get("rsyncd_auth_user", defaults.rsyncd_auth_user).strip(),
            rsyncd_secrets_file=Path(secrets) if secrets else None,
            rsyncd_hosts_allow=get("rsyncd_hosts_allow", "").strip(),
        )
    except ConfigError as exc:
        raise config.error("sync", exc, thing=exc.thing) from exc
    except (configparser.Error, ValueError) as exc:
        raise config.error("sync", exc) from exc
    for word in (settings.rsyncd_module, settings.rsyncd_auth_user, settings.daemon_user):
        if not re.fullmatch(r"[A-Za-z0-9_-]+", word):
            raise config.error("sync", f"{word!r}: only letters, digits, '_' and '-'", thing=word)
    return settings
