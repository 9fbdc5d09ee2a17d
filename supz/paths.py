"""Every path a host uses, derived from one root: the only module that knows /etc, /var/lib and /run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "SUPZ_ROOT"

# The distributions' own supervisord.conf, adapted by `supz init` on a real host (root "/").
DEBIAN_SUPERVISORD_CONF = Path("/etc/supervisor/supervisord.conf")
RHEL_SUPERVISORD_CONF = Path("/etc/supervisord.conf")
# Debian's folder of host-local program files, included by its supervisord.conf: supz puts its
# own settings there (conf.d/supz.conf) instead of editing the package's conffile.
DEBIAN_CONF_D = Path("/etc/supervisor/conf.d")
# The distribution's own supervisor commands and service managers (supz/host/distro.py).
DISTRIBUTION_SUPERVISORD = Path("/usr/bin/supervisord")
DISTRIBUTION_SUPERVISORCTL = Path("/usr/bin/supervisorctl")
INIT_SCRIPTS = Path("/etc/init.d")
SYSTEMD_RUNNING = Path("/run/systemd/system")


@dataclass(frozen=True)
class HostPaths:
    """The layout of one host under `root` ("/" in production, any folder in tests and demos)."""

    root: Path

    # configuration
    @property
    def etc(self) -> Path:
        return self.root / "etc" / "supz"

    @property
    def config_file(self) -> Path:
        return self.etc / "supz.conf"

    @property
    def own_supervisord_conf(self) -> Path:
        return self.etc / "supervisord.conf"

    @property
    def host_programs(self) -> Path:
        """Host-local program files (the syncer, agents): never synced, parked or failed over.

        On a real Debian host, the distribution's own conf.d, which its supervisord.conf includes."""
        if self.is_real_host and DEBIAN_CONF_D.is_dir():
            return DEBIAN_CONF_D
        return self.etc / "host.d"

    @property
    def template_overrides(self) -> Path:
        return self.etc / "templates"

    # the registry and state
    @property
    def lib(self) -> Path:
        return self.root / "var" / "lib" / "supz"

    @property
    def registry(self) -> Path:
        """The registry: a symlink to the current version in `registry_versions` (see supz/sync/layout.py)."""
        return self.lib / "registry"

    @property
    def registry_versions(self) -> Path:
        """Published registry versions, and `incoming/` where a peer's push is assembled."""
        return self.lib / "registry.d"

    @property
    def set_aside(self) -> Path:
        """Copies kept instead of lost: a replaced diverged registry, a parked duplicate."""
        return self.lib / "set-aside"

    @property
    def sync_work(self) -> Path:
        """The syncer's outgoing snapshots (hard links: must share the registry's file system)."""
        return self.lib / "sync"

    @property
    def active(self) -> Path:
        return self.registry / "active"

    @property
    def parked(self) -> Path:
        return self.registry / "parked"

    @property
    def manifest(self) -> Path:
        return self.registry / "manifest.json"

    @property
    def removed(self) -> Path:
        """Last content of entries removed from the registry: nothing is lost."""
        return self.lib / "removed"

    @property
    def backups(self) -> Path:
        """Automatic registry archives (`supz registry backups`, `restore ID`)."""
        return self.lib / "backups"

    @property
    def quarantine(self) -> Path:
        """Invalid program files found in the registry folders, moved aside with why (never entries)."""
        return self.lib / "quarantine"

    @property
    def state(self) -> Path:
        return self.lib / "state"

    @property
    def role_file(self) -> Path:
        return self.state / "role"

    @property
    def sync_status(self) -> Path:
        """What the syncer last did, per peer: written by `supz sync run`, read by `supz sync status`."""
        return self.state / "sync.json"

    @property
    def sync_lineage(self) -> Path:
        """Recent (generation, digest) states this host's registry held: tells history from divergence."""
        return self.state / "lineage.json"

    @property
    def sync_bases(self) -> Path:
        """Manifests of states shared with a peer (hard links): the common bases of a merge."""
        return self.state / "lineage.d"

    @property
    def set_aside_index(self) -> Path:
        """What was set aside by a merge or a resolve and not yet reviewed (`supz sync set-aside`)."""
        return self.state / "set-aside.json"

    # logs
    @property
    def log(self) -> Path:
        return self.root / "var" / "log" / "supz"

    @property
    def audit_log(self) -> Path:
        return self.log / "audit.jsonl"

    @property
    def app_logs(self) -> Path:
        return self.log / "apps"

    @property
    def supervisord_log(self) -> Path:
        return self.log / "supervisord.log"

    @property
    def child_logs(self) -> Path:
        return self.log / "children"

    # runtime
    @property
    def run(self) -> Path:
        return self.root / "run" / "supz"

    @property
    def locks(self) -> Path:
        return self.run / "locks"

    @property
    def registry_lock(self) -> Path:
        return self.locks / "registry.lock"

    @property
    def sync_run(self) -> Path:
        """The syncer's runtime files: ssh control sockets."""
        return self.run / "sync"

    @property
    def sync_log(self) -> Path:
        return self.log / "sync.log"

    @property
    def rsyncd_conf(self) -> Path:
        """The receiving side's rsync daemon config, rendered by `supz sync rsyncd-conf`."""
        return self.etc / "rsyncd.conf"

    @property
    def rsyncd_secrets(self) -> Path:
        return self.etc / "rsyncd.secrets"

    @property
    def socket(self) -> Path:
        return self.run / "supervisord.sock"

    @property
    def pidfile(self) -> Path:
        return self.run / "supervisord.pid"

    @property
    def failover_lock(self) -> Path:
        return self.locks / "failover.lock"

    @property
    def failover_wanted(self) -> Path:
        """The latest state keepalived announced, with its sequence: what transitions reconcile to."""
        return self.state / "failover-wanted.json"

    @property
    def check_heartbeat(self) -> Path:
        """Touched by every run of the vrrp check: keepalived is alive while it stays fresh."""
        return self.state / "check-heartbeat"

    @property
    def check_busy(self) -> Path:
        """Since when supervisord has been alive but too slow for the check."""
        return self.state / "check-busy"

    @property
    def failover_damping(self) -> Path:
        """Hold-down after an own failure, and the flapping freeze."""
        return self.state / "failover-damping.json"

    @property
    def failover_maintenance(self) -> Path:
        """An operator's freeze (`supz failover freeze`): transitions recorded, none applied."""
        return self.state / "failover-maintenance.json"

    @property
    def failover_handover(self) -> Path:
        """A switchover under way: the check fails on purpose until it is gone or expired."""
        return self.state / "failover-handover.json"

    @property
    def alerts_spool(self) -> Path:
        """Events waiting for delivery to the [alerts] targets, one file each, in order."""
        return self.lib / "alerts"

    @property
    def last_master(self) -> Path:
        """The host whose registry push this host last took: its MASTER, as far as it knows."""
        return self.state / "master.json"

    @property
    def failover_log(self) -> Path:
        return self.log / "failover.jsonl"

    @property
    def health_state(self) -> Path:
        """What `supz health run` last saw, per process: read by every health view and the vrrp check."""
        return self.state / "health.json"

    @property
    def health_log(self) -> Path:
        return self.log / "health.log"

    @property
    def keepalived_conf(self) -> Path:
        return self.etc / "keepalived.conf"

    @property
    def notify_fifo(self) -> Path:
        return self.run / "keepalived.fifo"

    @property
    def history_file(self) -> Path:
        return Path.home() / ".supzcli_history"

    def systemd_dropin(self, unit: str) -> Path:
        return self.root / "etc" / "systemd" / "system" / f"{unit}.d" / "supz.conf"

    @property
    def is_real_host(self) -> bool:
        return self.root == Path("/")

    @property
    def supervisord_conf(self) -> Path:
        """The supervisord.conf this host runs: the distribution's on a real host, else supz's own."""
        if self.is_real_host:
            for candidate in (DEBIAN_SUPERVISORD_CONF, RHEL_SUPERVISORD_CONF):
                if candidate.exists():
                    return candidate
        return self.own_supervisord_conf

    def folders(self) -> list[Path]:
        """Every folder `supz init` creates."""
        return [
            self.etc,
            self.host_programs,
            self.template_overrides,
            self.active,
            self.parked,
            self.state,
            self.log,
            self.app_logs,
            self.child_logs,
            self.run,
            self.locks,
        ]


def resolve_root(root: str | os.PathLike[str] | None = None) -> HostPaths:
    """The host layout for `root`, else $SUPZ_ROOT, else "/"."""
    chosen = root if root is not None else os.environ.get(ROOT_ENV) or "/"
    return HostPaths(Path(os.path.abspath(chosen)))
