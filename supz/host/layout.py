"""`supz init`: lay out a complete host under a root, or adapt a real host's supervisor install."""

from __future__ import annotations

import grp
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from supz.errors import ConfigError
from supz.executables import supz_executable
from supz.fsutil import atomic_write, file_lock
from supz.host.adapt import adapt_supervisord_conf
from supz.paths import HostPaths
from supz.registry import Manifest
from supz.sync.layout import ensure_versioned
from supz.templating import render

# AF_UNIX paths are limited to 108 bytes; keep a margin for supervisord's temp names.
MAX_SOCKET_PATH = 100
# supervisord holds 5 fds per program (3 pipes, 2 log files) and raises its soft limit to exactly
# minfds: 16384 leaves room for 3000 programs plus clients. (8192 ran out at ~1600 programs.)
MINFDS = 16384
MINPROCS = 4096


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
    report = InitReport()
    make_folders(paths, report)
    _write_new(paths.config_file, render("supz.conf.j2", paths, host=options.host, ha=options.ha), report)
    if not paths.manifest.exists():
        atomic_write(paths.manifest, json.dumps(Manifest(host=options.host, op="init").as_dict(), indent=1))
        report.did(f"wrote {paths.manifest} (generation 0)")
    _write_new(paths.host_programs / "supz-sync.conf",
               render("sync-program.conf.j2", paths, supz=supz_executable()), report)
    if paths.is_real_host and paths.supervisord_conf != paths.own_supervisord_conf:
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
        include=[f"{paths.host_programs}/*.conf", f"{paths.active}/*.conf"],
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
    dropin = paths.systemd_dropin(f"{unit}.service")
    supervisord = Path(sys.executable).parent / "supervisord"
    text = (
        "# written by supz init: run supervisord from supz's environment so it can load the extension\n"
        "[Service]\nExecStart=\n"
        f"ExecStart={supervisord} -n -c {conf}\n"
    )
    if not dropin.exists() or dropin.read_text(encoding="utf-8") != text:
        dropin.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dropin, text)
        report.did(f"wrote {dropin} (run `systemctl daemon-reload` and restart {unit})")
