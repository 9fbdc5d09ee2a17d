"""`supz init`: lay out a complete host under a root, or adapt a real host's supervisor install."""

from __future__ import annotations

import grp
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from supz.errors import ConfigError
from supz.executables import supz_executable
from supz.fsutil import atomic_write, file_lock
from supz.host import distro
from supz.host.adapt import adapt_supervisord_conf
from supz.paths import DISTRIBUTION_SUPERVISORCTL, DISTRIBUTION_SUPERVISORD, HostPaths
from supz.registry import Manifest
from supz.sync.layout import ensure_versioned
from supz.templating import render

# AF_UNIX paths are limited to 108 bytes; keep a margin for supervisord's temp names.
MAX_SOCKET_PATH = 100
# supervisord holds 5 fds per program (3 pipes, 2 log files) and raises its soft limit to exactly
# minfds: 16384 leaves room for 3000 programs plus clients. (8192 ran out at ~1600 programs.)
MINFDS = 16384
MINPROCS = 4096
# The host-local programs of an HA host beside the syncer and the health daemon: the failover
# watchdog, the alert deliverer and the event listener that alerts of FATAL applications.
HA_PROGRAMS = (("supz-watchdog", "watchdog-program.conf.j2"), ("supz-alerts", "alerts-program.conf.j2"),
               ("supz-alerts-events", "alerts-events.conf.j2"))


@dataclass
class InitReport:
    """What init did, one line per change, for the CLI to print."""

    changes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def did(self, line: str) -> None:
        self.changes.append(line)


@dataclass(frozen=True)
class InitOptions:
    host: str
    socket_group: str | None = None
    ha: bool = False


def check_root(paths: HostPaths) -> None:
    root = str(paths.root)
    if any(ch.isspace() for ch in root):
        raise ConfigError(f"root {root!r} contains white space: supervisord's include cannot name it", thing=root)
    if len(str(paths.socket)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"root {root!r} is too deep: the socket path {paths.socket} passes {MAX_SOCKET_PATH} characters",
            thing=root,
        )


def _write_new(path: Path, text: str, report: InitReport, mode: int = 0o644) -> None:
    """Write a config file only where none exists: init never overwrites an operator's edits."""
    if path.exists():
        report.kept.append(f"kept {path}")
        return
    atomic_write(path, text, mode=mode)
    report.did(f"wrote {path}")


def init_host(paths: HostPaths, options: InitOptions) -> InitReport:
    """Create every folder and file a host needs. Safe to run again: existing files are kept."""
    check_root(paths)
    if options.socket_group:
        try:
            grp.getgrnam(options.socket_group)
        except KeyError as exc:
            raise ConfigError(f"no such group {options.socket_group!r} for the socket",
                              thing=options.socket_group) from exc
    real = paths.is_real_host and paths.supervisord_conf != paths.own_supervisord_conf
    dist = distro.detect(paths)
    if real:
        # Before anything is written: every way the distribution starts supervisord must load supz.
        distro.require_importable(dist.supervisord if dist else DISTRIBUTION_SUPERVISORD)
    report = InitReport()
    make_folders(paths, report)
    _write_new(paths.config_file, render("supz.conf.j2", paths, host=options.host, ha=options.ha), report)
    if not paths.manifest.exists():
        atomic_write(paths.manifest, json.dumps(Manifest(host=options.host, op="init").as_dict(), indent=1))
        report.did(f"wrote {paths.manifest} (generation 0)")
    _write_new(paths.host_programs / "supz-sync.conf",
               render("sync-program.conf.j2", paths, supz=supz_executable()), report)
    _write_new(paths.host_programs / "supz-health.conf",
               render("health-program.conf.j2", paths, supz=supz_executable()), report)
    if options.ha:
        for name, template in HA_PROGRAMS:
            _write_new(paths.host_programs / f"{name}.conf", render(template, paths, supz=supz_executable()), report)
    if dist is not None:
        report.changes.extend(distro.install(paths, dist, minfds=MINFDS, socket_group=options.socket_group))
    elif real:
        adapt_real_host(paths, report)
    else:
        text = render(
            "supervisord.conf.j2",
            paths,
            host=options.host,
            socket_group=options.socket_group,
            socket_mode="0770" if options.socket_group else "0700",
            minfds=MINFDS,
            minprocs=MINPROCS,
        )
        if paths.own_supervisord_conf.exists():
            _stop_including_the_registry(paths, report)
        _write_new(paths.own_supervisord_conf, text, report)
    return report


def make_folders(paths: HostPaths, report: InitReport) -> None:
    """Every folder of a host, the registry a symlink to a version folder (what the unit tests' host is)."""
    _version_registry(paths, report)
    for folder in paths.folders():
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            report.did(f"created {folder}/")
    # The registry holds program files that may carry secrets in their environment.
    os.chmod(paths.registry, 0o750)


def registry_includes(paths: HostPaths) -> tuple[str, ...]:
    """The include patterns of the registry's folders that supz versions before 0.2 wrote."""
    return (f"{paths.active}/*.conf",)


def _stop_including_the_registry(paths: HostPaths, report: InitReport) -> None:
    """An existing supervisord.conf of supz's own that still includes the registry folder."""
    conf = paths.own_supervisord_conf
    original = conf.read_text(encoding="utf-8")
    adapted, changes, _skipped = adapt_supervisord_conf(
        original, include=[f"{paths.host_programs}/*.conf"], exclude=registry_includes(paths),
        root=str(paths.root), minfds=MINFDS,
    )
    if changes:
        atomic_write(conf, adapted)
        report.changes.extend(f"{conf}: {change}" for change in changes)


def _version_registry(paths: HostPaths, report: InitReport) -> None:
    """The registry is a symlink to a version folder, so a received copy can replace it atomically."""
    if paths.registry.is_symlink():
        return
    existed = paths.registry.exists()
    if not paths.locks.is_dir():
        paths.locks.mkdir(parents=True)
        report.did(f"created {paths.locks}/")
    with file_lock(paths.registry_lock):
        version = ensure_versioned(paths)
    os.chmod(paths.registry_versions, 0o750)
    if existed:
        report.did(f"moved the registry into {version} ({paths.registry} now points to it)")
    else:
        report.did(f"created {version}/ ({paths.registry} points to it)")


def adapt_real_host(paths: HostPaths, report: InitReport) -> None:
    """Teach the distribution's supervisord about supz, printing every change, touching nothing unclear."""
    conf = paths.supervisord_conf
    original = conf.read_text(encoding="utf-8")
    adapted, changes, skipped = adapt_supervisord_conf(
        original,
        include=[f"{paths.host_programs}/*.conf"],
        exclude=registry_includes(paths),
        root=str(paths.root),
        minfds=MINFDS,
    )
    report.kept.extend(f"{conf}: left alone: {why}" for why in skipped)
    if changes:
        backup = conf.with_name(conf.name + ".before-supz")
        if not backup.exists():
            atomic_write(backup, original)
            report.did(f"saved {backup}")
        atomic_write(conf, adapted)
        report.changes.extend(f"{conf}: {change}" for change in changes)
    unit = "supervisor" if conf.parent.name == "supervisor" else "supervisord"
    line = distro.write_dropin(paths, unit, DISTRIBUTION_SUPERVISORCTL, conf)
    if line:
        report.did(line)
