"""Standby readiness: would this host start every active entry if it became MASTER now?

`local_readiness` answers on the host itself, in one pass (one supervisor options object for all
entries, no supervisord call per entry): every active entry parses here (which also resolves its
`user`), its command's executable exists and is executable, its directory exists, and a
`current` release link on either path resolves; supervisord answers, the syncer runs, keepalived
runs its check, and the role is BACKUP. `supz failover ready` runs it on a peer over the
syncer's transport (one `supz failover ready --local --json` over ssh, or directly for a peer
root on this machine) and adds what only the asking side knows: the same generation and digest.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supz.config import ConfigFile, load_config, read_config
from supz.errors import PeerUnreachable, SupzError
from supz.failover.damping import refusal
from supz.failover.maintenance import read_maintenance
from supz.failover.remote import run_on_peer
from supz.failover.settings import load_failover_settings
from supz.host.leftovers import pid_alive
from supz.paths import HostPaths
from supz.programfile import new_server_options, parse_program_text
from supz.registry import Registry
from supz.role import read_role
from supz.supervisord.client import SupervisorClient
from supz.sync.settings import LOCAL, Peer, SyncSettings
from supz.sync.snapshot import local_version
from supz.sync.state import read_status

READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Problem:
    """One reason a host would not start an application (or anything): what, and the fix."""

    host: str
    app: str  # "-" for the host itself
    what: str
    fix: str

    def line(self) -> str:
        return f"{self.host}: {self.app}: {self.what} (fix: {self.fix})"


@dataclass
class Readiness:
    host: str
    role: str
    generation: int
    digest: str
    entries: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ready"] = self.ready
        return data


def readiness_from_dict(data: dict[str, Any]) -> Readiness:
    problems = [Problem(str(p["host"]), str(p["app"]), str(p["what"]), str(p["fix"])) for p in data.get("problems", [])]
    return Readiness(str(data["host"]), str(data["role"]), int(data["generation"]), str(data["digest"]),
                     int(data["entries"]), problems)


def _dangling_release(path: str) -> str | None:
    """The first `current` link on `path` that does not resolve, described; else None."""
    parts = Path(path).parts
    for index, part in enumerate(parts):
        if part != "current":
            continue
        link = Path(*parts[: index + 1])
        if link.is_symlink() and not link.exists():
            return f"release link {link} -> {os.readlink(link)} does not resolve"
        if not link.exists():
            return f"release link {link} is missing"
    return None


def _executable(command: str, environment: dict[str, str] | None) -> tuple[str, str | None]:
    """(the program, why it cannot run here or None)."""
    try:
        program = shlex.split(command)[0]
    except (ValueError, IndexError):
        return command, "the command line does not parse"
    if "/" not in program:
        search = (environment or {}).get("PATH", os.environ.get("PATH", os.defpath))
        return program, None if shutil.which(program, path=search) else f"{program} is not on PATH"
    dangling = _dangling_release(program)
    if dangling is not None:
        return program, dangling
    if not os.path.isfile(program):
        return program, f"{program} does not exist"
    if not os.access(program, os.X_OK):
        return program, f"{program} is not executable"
    return program, None


def entry_problems(host: str, name: str, text: str, options: Any) -> list[Problem]:
    """What would keep this host from starting the entry `name` (its program file `text`)."""
    try:
        spec = parse_program_text(text, name, options=options)
    except SupzError as exc:
        return [Problem(host, name, f"does not parse here: {exc}",
                        f"install what the file names (user, paths) on {host}, or fix the entry")]
    found: list[Problem] = []
    for process in spec.group_config.process_configs:
        program, why = _executable(process.command, process.environment)
        if why is not None:
            found.append(Problem(host, name, f"command: {why}", f"deploy {program} on {host}"))
        directory = process.directory
        if directory:
            dangling = _dangling_release(directory)
            if dangling is not None or not os.path.isdir(directory):
                found.append(Problem(host, name, f"directory: {dangling or f'{directory} does not exist'}",
                                     f"deploy the application on {host}"))
        if found:
            break  # one process of a group says enough
    return found


def _host_problems(paths: HostPaths, file: ConfigFile, host: str, role: str) -> list[Problem]:
    found: list[Problem] = []
    try:
        with SupervisorClient.for_host(paths) as client:
            client.supervisor("getState")
    except SupzError as exc:
        found.append(Problem(host, "-", f"supervisord does not answer: {exc}", f"`supz up` on {host}"))
    status = read_status(paths) if paths.sync_status.exists() else None
    if status is None or not pid_alive(status.pid):
        found.append(Problem(host, "-", "the syncer is not running", f"start supz-sync on {host} (`supz up`)"))
    from supz.failover.watchdog import silence

    quiet = silence(paths)
    limit = load_failover_settings(file).silence_limit
    if quiet is None or quiet > limit:
        said = "never ran its check here" if quiet is None else f"silent for {quiet:.0f}s"
        found.append(Problem(host, "-", f"keepalived {said}", f"start keepalived on {host}"))
    if role != "BACKUP":
        found.append(Problem(host, "-", f"role is {role}, not BACKUP", f"bring {host} back as BACKUP first"))
    if read_maintenance(paths) is not None:
        found.append(Problem(host, "-", "frozen for maintenance: it would not start anything",
                             f"`supz failover unfreeze` on {host}"))
    damped = refusal(paths, role)
    if damped is not None:
        found.append(Problem(host, "-", f"kept out of MASTER: {damped}", f"wait, or `supz failover thaw` on {host}"))
    return found


def local_readiness(paths: HostPaths, file: ConfigFile | None = None) -> Readiness:
    """This host's own answer: every active entry, then the host's daemons and role."""
    file = file or read_config(paths.config_file)
    host = load_config(file).host
    registry = Registry(paths, host=host)
    version = local_version(paths)
    role = read_role(paths)
    options = new_server_options()
    # The host's supervisord runs with SUPZ_ROOT set (supz.host.daemon): `%(ENV_SUPZ_ROOT)s` in an
    # entry means this host's root, as it will for supervisord.
    options.environ_expansions["ENV_SUPZ_ROOT"] = str(paths.root)
    names = registry.active_names()
    result = Readiness(host, role, version.generation, version.digest, len(names))
    result.problems += _host_problems(paths, file, host, role)
    for name in names:
        try:
            text = registry.read_text(name)
        except SupzError as exc:
            result.problems.append(Problem(host, name, f"unreadable: {exc}", "`supz sync push` from the MASTER"))
            continue
        result.problems += entry_problems(host, name, text, options)
    return result


def peer_readiness(peer: Peer, settings: SyncSettings) -> Readiness:
    """A peer's own answer, in one round trip over the syncer's transport."""
    if peer.transport == LOCAL:
        return local_readiness(HostPaths(Path(peer.root)))
    out = run_on_peer(peer, settings, ["failover", "ready", "--local", "--json"], timeout=READY_TIMEOUT,
                      answers=(0, 1))
    try:
        return readiness_from_dict(json.loads(out))
    except (ValueError, KeyError, TypeError) as exc:
        raise PeerUnreachable(f"{peer.spec}: its readiness answer was not understood: {exc}", thing=peer.spec) from exc


def standby_readiness(paths: HostPaths, peer: Peer, settings: SyncSettings) -> Readiness:
    """Would `peer` start this host's registry? Its own problems plus generation and digest."""
    theirs = peer_readiness(peer, settings)
    mine = local_version(paths)
    if (theirs.generation, theirs.digest) != (mine.generation, mine.digest):
        what = (f"holds generation {theirs.generation}, this host {mine.generation}"
                if theirs.generation != mine.generation else f"same generation {mine.generation}, another content")
        theirs.problems.insert(0, Problem(theirs.host, "-", what, "`supz sync push` from the MASTER"))
    return theirs
