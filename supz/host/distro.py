"""A real host's own supervisor install (Debian's): how supz joins it without leaving it broken.

Debian starts supervisord in several ways (its systemd unit, /etc/init.d/supervisor, an operator's
plain `supervisord`), always with /usr/bin/python3. So supz does not change how supervisord is
started: it requires that this Python imports supz (supz's Debian package installs it into
Debian's dist-packages), and refuses to init otherwise. Its settings go into a file of its own in
the distribution's conf.d, so Debian's conffile stays untouched and a removal of supz's package
only has to take that file away.
"""

from __future__ import annotations

import configparser
import glob
import grp
import os
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from supz import __version__
from supz.errors import ConfigError, NotInstalled, OperationFailed
from supz.fsutil import atomic_write
from supz.paths import (
    DEBIAN_CONF_D,
    DEBIAN_SUPERVISORD_CONF,
    DISTRIBUTION_SUPERVISORCTL,
    DISTRIBUTION_SUPERVISORD,
    INIT_SCRIPTS,
    SYSTEMD_RUNNING,
    HostPaths,
)

SUPZ_CONF_NAME = "supz.conf"
EXTENSION_FACTORY = "supz.supervisord.rpc:make_rpcinterface"


@dataclass(frozen=True)
class Distribution:
    """Debian's supervisor install: its config, the conf.d it includes, its unit and commands."""

    conf: Path
    confd: Path
    unit: str
    supervisord: Path
    supervisorctl: Path

    @property
    def supz_conf(self) -> Path:
        """supz's own settings for this supervisord (the extension, minfds, the socket's group)."""
        return self.confd / SUPZ_CONF_NAME

    @property
    def init_script(self) -> Path:
        return INIT_SCRIPTS / self.unit


@dataclass(frozen=True)
class SupervisordSettings:
    """What a supervisord.conf (with the files it includes) says about the pid file and socket."""

    pidfile: Path
    socket: Path | None
    chmod: int
    chown: str | None


def read_settings(conf: Path, default_pidfile: Path) -> SupervisordSettings:
    """Read `conf` and its includes as supervisord does (later files win) for the pid file and socket."""
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    here = str(conf.parent)
    try:
        parser.read(conf, encoding="utf-8")
        if parser.has_option("include", "files"):
            for pattern in parser.get("include", "files").replace("%(here)s", here).split():
                full = pattern if os.path.isabs(pattern) else os.path.join(here, pattern)
                for name in sorted(glob.glob(full)):
                    parser.read(name, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {conf}: {exc}", thing=str(conf)) from exc

    def value(section: str, key: str) -> str | None:
        if not parser.has_option(section, key):
            return None
        return parser.get(section, key).replace("%(here)s", here).strip() or None

    pidfile = value("supervisord", "pidfile")
    socket = value("unix_http_server", "file")
    mode = value("unix_http_server", "chmod") or "0700"
    try:
        chmod = int(mode, 8)
    except ValueError as exc:
        raise ConfigError(f"{conf}: [unix_http_server] chmod = {mode} is not an octal mode", thing=str(conf)) from exc
    return SupervisordSettings(
        pidfile=Path(pidfile) if pidfile else default_pidfile,
        socket=Path(socket) if socket else None,
        chmod=chmod,
        chown=value("unix_http_server", "chown"),
    )


def settings(paths: HostPaths) -> SupervisordSettings:
    return read_settings(paths.supervisord_conf, paths.pidfile)


def detect(paths: HostPaths) -> Distribution | None:
    """Debian's supervisor on this real host, when its supervisord.conf includes its conf.d."""
    if not paths.is_real_host or paths.supervisord_conf != DEBIAN_SUPERVISORD_CONF or not DEBIAN_CONF_D.is_dir():
        return None
    try:
        text = DEBIAN_SUPERVISORD_CONF.read_text(encoding="utf-8")
    except OSError:
        return None
    if not re.search(rf"^\s*files\s*[=:].*{re.escape(str(DEBIAN_CONF_D))}/\*\.conf", text, re.MULTILINE):
        return None
    return Distribution(conf=DEBIAN_SUPERVISORD_CONF, confd=DEBIAN_CONF_D, unit="supervisor",
                        supervisord=DISTRIBUTION_SUPERVISORD, supervisorctl=DISTRIBUTION_SUPERVISORCTL)


def interpreter(script: Path) -> Path:
    """The Python a console script runs with (its #! line)."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline().decode("utf-8", "replace").strip()
    except OSError as exc:
        raise NotInstalled(f"{script} not found: the distribution's supervisor is not installed", thing=str(script)) from exc
    if not first.startswith("#!"):
        raise NotInstalled(f"{script} is not a script with a #! line", thing=str(script))
    words = first[2:].split()
    if words and os.path.basename(words[0]) == "env" and len(words) > 1:
        return Path(words[1])
    return Path(words[0]) if words else Path("python3")


def imported_version(python: Path) -> tuple[str | None, str]:
    """(supz version, why not) as seen by `python` with nothing but its own sys.path."""
    code = "import supz, supz.supervisord.rpc as r; r.make_rpcinterface; print(supz.__version__)"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    try:
        result = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, env=env,
                                timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return None, lines[-1] if lines else f"exit {result.returncode}"
    return result.stdout.strip(), ""


def require_importable(supervisord: Path) -> None:
    """Refuse to go on unless the distribution's supervisord can load this supz's extension."""
    python = interpreter(supervisord)
    version, why = imported_version(python)
    if version is None:
        raise NotInstalled(
            f"{supervisord} runs {python}, which cannot import supz ({why}); nothing was changed: install "
            f"supz's Debian package (`./bin/package` builds it; `apt install ./supz_{__version__}_all.deb`) so "
            "every way the distribution starts supervisord loads the extension, then run init again",
            thing=str(python),
        )
    if version != __version__:
        raise NotInstalled(
            f"{python} imports supz {version}, this is supz {__version__}; nothing was changed: run the "
            "supz that the distribution's Python imports (/usr/bin/supz), or upgrade the package",
            thing=str(python),
        )


def supz_conf_text(paths: HostPaths, *, minfds: int, socket_group: str | None) -> str:
    """supz's file in the distribution's conf.d: read into the same parser as supervisord.conf."""
    lines = [
        "; written by `supz init`: supz's settings for the distribution's supervisord. Debian's",
        "; supervisord.conf includes this folder, so its own file stays as the package shipped it.",
        "; Removing supz's package moves this file away, so supervisord starts without the extension.",
        "",
        "[supervisord]",
        f"minfds = {minfds}",
        "",
        "[rpcinterface:supz]",
        f"supervisor.rpcinterface_factory = {EXTENSION_FACTORY}",
        f"root = {paths.root}",
    ]
    if socket_group:
        lines += ["", "[unix_http_server]", "; supz init --socket-group: operators in this group use the socket",
                  "chmod = 0770", f"chown = root:{socket_group}"]
    return "\n".join(lines) + "\n"


def current_socket_group(dist: Distribution) -> str | None:
    """The socket group an earlier `supz init --socket-group` wrote, so a later init keeps it."""
    try:
        text = dist.supz_conf.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^chown\s*=\s*[^:\s]+:(\S+)", text, re.MULTILINE)
    return match.group(1) if match else None


def dropin_text(supervisorctl: Path, conf: Path) -> str:
    """The systemd drop-in: `systemctl reload` must not restart every program behind supz's back."""
    return (
        "# written by supz init. supervisord is started as the distribution starts it (Debian's python3\n"
        "# imports supz). `systemctl reload` ran `supervisorctl reload` as root: a restart of every\n"
        "# program, around supz's refusal of reload. Here it rereads the config and applies changes to\n"
        "# host-local programs only (supz keeps registry applications out of `update`).\n"
        "# KillMode: stopping the unit ends every process of it, so no program outlives supervisord.\n"
        "[Service]\n"
        "ExecReload=\n"
        f"ExecReload={supervisorctl} -c {conf} update\n"
        "KillMode=control-group\n"
    )


def write_dropin(paths: HostPaths, unit: str, supervisorctl: Path, conf: Path) -> str | None:
    """Write the drop-in when it differs; the line to report, or None when unchanged."""
    dropin = paths.systemd_dropin(f"{unit}.service")
    text = dropin_text(supervisorctl, conf)
    if dropin.exists() and dropin.read_text(encoding="utf-8") == text:
        return None
    dropin.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dropin, text)
    return f"wrote {dropin} (takes effect at `systemctl daemon-reload`; the stock unit works until then)"


def install(paths: HostPaths, dist: Distribution, *, minfds: int, socket_group: str | None) -> list[str]:
    """Write supz's conf.d file and the drop-in; the changes made, one line each."""
    changes: list[str] = []
    group = socket_group or current_socket_group(dist)
    text = supz_conf_text(paths, minfds=minfds, socket_group=group)
    old = dist.supz_conf.read_text(encoding="utf-8") if dist.supz_conf.exists() else None
    if old != text:
        atomic_write(dist.supz_conf, text)
        changes.append(f"wrote {dist.supz_conf} (the extension, minfds = {minfds}"
                       + (f", socket mode 0770 group {group}" if group else "") + ")")
    line = write_dropin(paths, dist.unit, dist.supervisorctl, dist.conf)
    if line:
        changes.append(line)
    if changes:
        changes.append(f"restart supervisord to load the extension: `systemctl restart {dist.unit}` "
                       f"(without systemd: `{dist.init_script} restart`)")
    return changes


def start_command(dist: Distribution) -> list[str]:
    """Start supervisord the way this host's distribution does."""
    if SYSTEMD_RUNNING.is_dir():
        return ["systemctl", "start", f"{dist.unit}.service"]
    if dist.init_script.exists():
        return [str(dist.init_script), "start"]
    return [str(dist.supervisord), "-c", str(dist.conf)]


def start(dist: Distribution) -> None:
    command = start_command(dist)
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        out = (result.stderr or result.stdout).strip().splitlines()
        raise OperationFailed(f"`{' '.join(command)}` failed: {out[-1] if out else f'exit {result.returncode}'}")


def socket_checks(paths: HostPaths) -> list[tuple[bool, str]]:
    """The socket's mode and group are the ones supervisord.conf asks for (the operators' access)."""
    try:
        wanted = settings(paths)
    except ConfigError as exc:
        return [(False, str(exc))]
    if wanted.socket is None:
        return []
    try:
        info = os.stat(wanted.socket)
    except OSError:
        return [(True, f"socket {wanted.socket} not there (supervisord not running): mode not checked")]
    mode = stat.S_IMODE(info.st_mode)
    checks = [(mode == wanted.chmod, f"socket {wanted.socket} mode {mode:04o}"
               + ("" if mode == wanted.chmod else f", supervisord.conf says {wanted.chmod:04o}: restart supervisord"))]
    if wanted.chown and ":" in wanted.chown:
        group = wanted.chown.split(":", 1)[1]
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            checks.append((False, f"socket group {group} does not exist"))
        else:
            checks.append((info.st_gid == gid, f"socket {wanted.socket} group {group}"
                           + ("" if info.st_gid == gid else f" wanted, gid {info.st_gid} found: restart supervisord")))
    return checks


def checks(paths: HostPaths) -> list[tuple[bool, str]]:
    """What `supz doctor` checks of a real host's supervisor install (none elsewhere)."""
    dist = detect(paths)
    if dist is None:
        return []
    found: list[tuple[bool, str]] = []
    text = dist.supz_conf.read_text(encoding="utf-8") if dist.supz_conf.exists() else ""
    found.append((EXTENSION_FACTORY in text,
                  f"{dist.supz_conf} loads the extension" if EXTENSION_FACTORY in text else
                  f"{dist.supz_conf} missing or without [rpcinterface:supz]: run `supz --root / init`"))
    found.append((True, f"{dist.conf} includes {dist.confd}/*.conf"))
    version, why = imported_version(interpreter(dist.supervisord))
    found.append((version == __version__,
                  f"{dist.supervisord} imports supz {version}" if version == __version__ else
                  f"{dist.supervisord} cannot load supz {__version__}: {why or f'it imports supz {version}'}"))
    dropin = paths.systemd_dropin(f"{dist.unit}.service")
    expected = dropin_text(dist.supervisorctl, dist.conf)
    current = dropin.read_text(encoding="utf-8") if dropin.exists() else None
    found.append((current == expected,
                  f"systemd drop-in {dropin} (reload applies changes, never restarts everything)"
                  if current == expected else f"systemd drop-in {dropin} missing or changed: run `supz --root / init`"))
    return found
