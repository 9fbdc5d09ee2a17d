"""Application directories against a real supervisord: sup_run.sh start/stop/status/update,
rolling deploys that never leave zero instances running, automatic rollback, lint."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from supz.supervisord.client import SupervisorClient
from tests.conftest import SupzHost

SLEEPER = "#!/bin/sh\necho \"started in $(pwd)\"\nexec sleep 100000\n"
BROKEN = "#!/bin/sh\necho 'fatal: cannot read config' >&2\nexit 3\n"


def init_app(host: SupzHost, directory: Path, *options: str) -> Path:
    host.supz("app", "init", str(directory), "--command", "bin/run", "--startsecs", "1", *options, check=True)
    return directory


def add_release(app: Path, version: str, script: str = SLEEPER) -> Path:
    run = app / "releases" / version / "bin" / "run"
    run.parent.mkdir(parents=True)
    run.write_text(script)
    run.chmod(0o755)
    return run


def sup_run(host: SupzHost, app: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(app / "sup_run.sh"), *args], env=host.env, capture_output=True, text=True,
                            timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"sup_run.sh {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def pids(host: SupzHost, name: str) -> dict[str, int]:
    with host.client() as client:
        return {f"{i['group']}:{i['name']}": i["pid"] for i in client.supervisor("getAllProcessInfo")
                if i["group"] == name and i["statename"] == "RUNNING"}


def release_of(pid: int) -> str:
    """The release a process runs: its working directory is current/ as it was at its start."""
    return Path(os.readlink(f"/proc/{pid}/cwd")).name


def set_app_setting(host: SupzHost, key: str, value: str) -> None:
    conf = host.paths.config_file
    lines = [f"{key} = {value}" if line.startswith(f"{key} =") else line for line in conf.read_text().splitlines()]
    conf.write_text("\n".join(lines) + "\n")


class Sampler:
    """Counts RUNNING processes of one application, as often as supervisord answers, in a thread."""

    def __init__(self, host: SupzHost, name: str) -> None:
        self.paths = host.paths
        self.name = name
        self.counts: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with SupervisorClient.for_host(self.paths) as client:
            while not self._stop.is_set():
                infos = client.supervisor("getAllProcessInfo")
                self.counts.append(sum(1 for i in infos if i["group"] == self.name and i["statename"] == "RUNNING"))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def web(host: SupzHost) -> Iterator[Path]:
    """A two-instance application in a folder with a space, release 1.0 deployed and started."""
    app = init_app(host, host.root / "my apps" / "web", "--numprocs", "2")
    add_release(app, "1.0")
    sup_run(host, app, "deploy", "1.0", check=True)
    sup_run(host, app, "start", check=True)
    yield app


def test_start_stop_status_update_restart(host: SupzHost) -> None:
    app = init_app(host, host.root / "my apps" / "api", "--env", "GREETING=hello world")
    add_release(app, "1.0")
    assert sup_run(host, app, "start").stderr.startswith("supz: error: api: no release deployed")
    deployed = sup_run(host, app, "deploy", "1.0", check=True)
    assert "not registered: nothing restarted" in deployed.stdout

    started = sup_run(host, app, "start", check=True)
    assert "api: registered and started" in started.stdout
    assert host.states() == {"api:api": "RUNNING"}
    status = sup_run(host, app, "status")
    assert status.returncode == 0 and status.stdout.split()[:2] == ["api", "RUNNING"]
    (entry,) = host.paths.active.glob("api.conf")
    assert entry.read_text() == (app / "program.ini").read_text()

    stopped = sup_run(host, app, "stop", check=True)
    assert stopped.stdout.strip() == "api: stopped and parked"
    status = sup_run(host, app, "status")
    assert status.returncode == 3 and "PARKED" in status.stdout
    assert (host.paths.parked / "api.conf").exists() and host.states() == {}

    assert "api: unparked and started" in sup_run(host, app, "start", check=True).stdout
    pid = pids(host, "api")["api:api"]

    # A malformed program.ini is refused with its line; the running version keeps running.
    program = app / "program.ini"
    good = program.read_text()
    lines = good.splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if line.startswith("startsecs"))
    program.write_text(good.replace("startsecs = 1", "startsecs = soon"))
    refused = sup_run(host, app, "update")
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"supz: error: {program}: line {number}: ")
    assert pids(host, "api") == {"api:api": pid} and entry.read_text() == good

    program.write_text(good.replace("GREETING=", "EXTRA=\"1\",GREETING="))
    updated = sup_run(host, app, "update", check=True)
    assert "api: updated and restarted" in updated.stdout
    assert entry.read_text() == program.read_text()
    new_pid = pids(host, "api")["api:api"]
    assert new_pid != pid
    assert b"EXTRA=1" in Path(f"/proc/{new_pid}/environ").read_bytes().split(b"\0")
    assert sup_run(host, app, "update", check=True).stdout.strip() == "api: unchanged"

    generation = json.loads(host.paths.manifest.read_text())["generation"]
    assert "api:api: restarted" in sup_run(host, app, "restart", check=True).stdout
    assert pids(host, "api")["api:api"] != new_pid
    assert json.loads(host.paths.manifest.read_text())["generation"] == generation

    audited = [(line["command"], line["args"][0], line["result"]) for line in host.audit_lines()
               if line["command"].startswith("app ")]
    # (an update that changes nothing writes no line)
    assert [a[0] for a in audited] == ["app deploy", "app start", "app stop", "app start", "app update",
                                       "app restart"]
    assert all(a[1] == str(app) and a[2].startswith("ok") for a in audited)


def test_a_program_whose_path_holds_spaces_runs(host: SupzHost) -> None:
    program = host.root / "my tools" / "run server"
    program.parent.mkdir()
    program.write_text(SLEEPER)
    program.chmod(0o755)
    app = host.root / "tool"
    host.supz("app", "init", str(app), "--command", str(program), "--startsecs", "1", check=True)
    add_release(app, "1.0")
    sup_run(host, app, "deploy", "1.0", check=True)
    started = sup_run(host, app, "start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert host.states() == {"tool:tool": "RUNNING"}
    assert "started in" in (host.paths.app_logs / "tool.out.log").read_text()


def test_status_and_usage_exit_codes(host: SupzHost) -> None:
    app = init_app(host, host.root / "lonely")
    status = sup_run(host, app, "status")
    # An application that is not registered is not running: 3 (4 before issue 9).
    assert status.returncode == 3 and status.stdout == "lonely: UNKNOWN (not in the registry, not loaded)\n"
    as_json = host.supz("app", "status", str(app), "--json")
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["missing"] == ["lonely"]
    assert sup_run(host, app, "help").returncode == 2
    assert sup_run(host, app, "launch").returncode == 2
    stopped = sup_run(host, app, "stop")
    assert stopped.returncode == 2 and "lonely: not in the registry" in stopped.stderr
    # supervisord not running: 7 for every status command (4 before issue 9).
    host.supz("down", check=True)
    down = sup_run(host, app, "status")
    assert down.returncode == 7 and "supervisord is not running" in down.stderr, down.stdout + down.stderr
    shell = host.supzcli("status")
    assert shell.returncode == 7 and "supervisord is not running" in shell.stdout, shell.stdout


def test_rolling_deploy_keeps_an_instance_running(host: SupzHost, web: Path) -> None:
    add_release(web, "2.0")
    before = pids(host, "web")
    with Sampler(host, "web") as sampler:
        deployed = sup_run(host, web, "deploy", "2.0", check=True)
    assert "web: deploy of release 2.0 done" in deployed.stdout
    assert len(sampler.counts) > 20
    assert min(sampler.counts) >= 1, "a moment with no RUNNING instance"
    assert 1 in sampler.counts  # one at a time: there were moments with only one
    after = pids(host, "web")
    assert set(after) == {"web:web_01", "web:web_02"} and not set(after.values()) & set(before.values())
    assert {release_of(pid) for pid in after.values()} == {"2.0"}
    listing = sup_run(host, web, "releases", check=True).stdout.splitlines()
    assert listing == ["  1.0 (previous)", "* 2.0 (current)"]
    deploys = [line for line in host.audit_lines() if line["command"] == "app deploy"]
    assert deploys[-1]["args"] == [str(web), "2.0"] and deploys[-1]["result"] == "ok: 1.0 -> 2.0"


def test_a_release_that_exits_at_once_is_rolled_back(host: SupzHost, web: Path) -> None:
    add_release(web, "2.0", BROKEN)
    before = pids(host, "web")
    with Sampler(host, "web") as sampler:
        failed = sup_run(host, web, "deploy", "2.0")
    assert failed.returncode == 1
    assert "web:web_01 did not start" in failed.stdout and "fatal: cannot read config" in failed.stdout
    assert failed.stdout.splitlines()[-1] == "web: release 2.0 failed; rolled back to 1.0, which is running"
    assert min(sampler.counts) >= 1
    after = pids(host, "web")
    assert set(after) == {"web:web_01", "web:web_02"}
    assert after["web:web_02"] == before["web:web_02"]  # never touched: web_01 failed first
    assert {release_of(pid) for pid in after.values()} == {"1.0"}
    assert os.readlink(web / "current") == "releases/1.0"
    assert host.audit_lines()[-1]["result"].startswith("failed: web:web_01 did not start")


def test_missing_versions_and_rollback(host: SupzHost, web: Path) -> None:
    before = pids(host, "web")
    for version in ("9.9", "../1.0", "1.0 beta"):
        missing = sup_run(host, web, "deploy", version)
        assert missing.returncode == 2 and missing.stderr.startswith("supz: error: ")
    assert "no release '9.9'" in sup_run(host, web, "deploy", "9.9").stderr
    assert pids(host, "web") == before and os.readlink(web / "current") == "releases/1.0"
    assert "no previous release" in sup_run(host, web, "rollback").stderr

    add_release(web, "1.1")
    sup_run(host, web, "deploy", "1.1", check=True)
    rolled = sup_run(host, web, "rollback", check=True)
    assert "web: rollback of release 1.0 done" in rolled.stdout
    assert {release_of(pid) for pid in pids(host, "web").values()} == {"1.0"}
    assert sup_run(host, web, "releases", check=True).stdout.splitlines() == ["* 1.0 (current)", "  1.1 (previous)"]
    again = sup_run(host, web, "deploy", "1.0", check=True)
    assert "already current; nothing changed" in again.stdout


def test_a_release_failing_its_health_url_is_rolled_back(host: SupzHost) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    set_app_setting(host, "health_timeout", "2")
    app = init_app(host, host.root / "shop", "--health-url", url)
    add_release(app, "1.0", f"#!/bin/sh\nexec {sys.executable} -m http.server {port} --bind 127.0.0.1\n")
    add_release(app, "2.0", SLEEPER)  # runs, but serves nothing
    sup_run(host, app, "deploy", "1.0", check=True)
    sup_run(host, app, "start", check=True)
    add_release(app, "1.1", f"#!/bin/sh\nexec {sys.executable} -m http.server {port} --bind 127.0.0.1\n")
    healthy = sup_run(host, app, "deploy", "1.1", check=True)
    assert f"shop:shop: RUNNING on release 1.1, health URL {url} ok" in healthy.stdout

    failed = sup_run(host, app, "deploy", "2.0")
    assert failed.returncode == 1
    assert f"shop:shop: health URL {url} failed for 2 s:" in failed.stdout
    assert failed.stdout.splitlines()[-1] == "shop: release 2.0 failed; rolled back to 1.1, which is running"
    assert release_of(pids(host, "shop")["shop:shop"]) == "1.1"
    assert sup_run(host, app, "status").returncode == 0


def test_policy_applies_to_sup_run(host: SupzHost, web: Path) -> None:
    add_release(web, "2.0")
    set_app_setting(host, "refuse", "shutdown, reload, deploy")
    refused = sup_run(host, web, "deploy", "2.0")
    assert refused.returncode == 4 and "'deploy' is disabled by the supz policy" in refused.stderr
    assert os.readlink(web / "current") == "releases/1.0"
    set_app_setting(host, "confirm", "stop all, restart all, remove, restart")
    assert sup_run(host, web, "restart").returncode == 4
    assert "web:web_01: restarted" in sup_run(host, web, "restart", "--yes", check=True).stdout


def test_lint_directories_and_every_registered_app(host: SupzHost, web: Path) -> None:
    assert host.supz("app", "lint", str(web)).returncode == 0
    assert host.supz("app", "lint", "--all").stdout == ""
    host.add("plain", "[program:plain]\ncommand = /bin/sleep 100000\nstartsecs = 0\n")
    (web / "current").unlink()
    linted = host.supz("app", "lint", "--all")
    assert linted.returncode == 1
    assert linted.stdout.splitlines() == [f"{web}: current: no current link: no release deployed"]
    assert "registry entry plain: skipped" in linted.stderr


OPERATOR = "supzapp-op"


def _python_usable_by(user: str) -> bool:
    probe = subprocess.run(["runuser", "-u", user, "--", sys.executable, "-c", "import supz"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture
def operator(traversable_venv: None) -> Iterator[str]:
    """A user in the socket group of its own host, not root."""
    if os.geteuid() != 0:
        pytest.skip("needs root (creates a user and a group)")
    subprocess.run(["groupadd", "-f", OPERATOR], check=True)
    subprocess.run(["useradd", "-M", "-N", "-g", OPERATOR, "-s", "/bin/sh", OPERATOR], capture_output=True, check=False)
    try:
        if not _python_usable_by(OPERATOR):
            pytest.skip(f"the test environment's python ({sys.executable}) cannot be run by another user")
        yield OPERATOR
    finally:
        subprocess.run(["userdel", OPERATOR], capture_output=True, check=False)
        subprocess.run(["groupdel", OPERATOR], capture_output=True, check=False)


def test_an_operator_needs_only_the_socket_unless_the_program_changes(operator: str) -> None:
    from tests.conftest import destroy_host, make_host

    host = make_host("--socket-group", operator)
    try:
        app = init_app(host, host.root / "apps" / "web")
        add_release(app, "1.0")
        sup_run(host, app, "deploy", "1.0", check=True)
        sup_run(host, app, "start", check=True)

        def as_operator(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["runuser", "-u", operator, "--", str(app / "sup_run.sh"), *args],
                                  capture_output=True, text=True, timeout=60, check=False)

        assert as_operator("stop").returncode == 0 and host.states() == {}
        started = as_operator("start")
        assert started.returncode == 0, started.stderr
        assert host.states() == {"web:web": "RUNNING"}
        assert [line["user"] for line in host.audit_lines()[-2:]] == [operator, operator]

        program = app / "program.ini"
        program.write_text(program.read_text().replace("startretries = 3", "startretries = 5"))
        refused = as_operator("update")
        assert refused.returncode == 4
        assert refused.stderr.strip() == (
            f"supz: error: web: program.ini is not the registered entry; registering it needs write access "
            f"to the registry {host.paths.registry} (run as root)")
        assert host.states() == {"web:web": "RUNNING"}
        assert "startretries = 3" in (host.paths.active / "web.conf").read_text()
    finally:
        destroy_host(host)
