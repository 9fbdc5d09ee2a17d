"""Application health end to end: a real supervisord running real HTTP applications on loopback,
the health daemon `supz init` puts in host.d, restarts seen in the audit trail and supervisord.
"""

from __future__ import annotations

import json
import random
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SupzHost, destroy_host, make_host

APP = REPO / "tests" / "healthapp.py"
# Fast probes; a generous timeout, so a loaded CI machine does not fail a healthy probe.
FAST = {"interval": "0.3", "timeout": "3", "fails": "2", "rises": "1", "start_period": "0.5"}


def free_prefix(count: int) -> str:
    """A port prefix P with ports P01 .. P<count> free on loopback (P in 200..599)."""
    for _ in range(200):
        prefix = random.randint(200, 599)
        socks = []
        try:
            for num in range(1, count + 1):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", int(f"{prefix}{num:02d}")))
            return str(prefix)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free ports")


def app_entry(name: str, flags: Path, *, numprocs: int = 1, probe: str = "url",
              health: dict[str, str] | None = None) -> str:
    """A program file running healthapp.py on port P01, P02... (one per instance), with
    supz_health_* keys whose probe names the same port through %(process_num)02d."""
    port = free_prefix(numprocs) + "%(process_num)02d"
    lines = [f"[program:{name}]", f"command = {sys.executable} {APP} {port} {flags}",
             "startsecs = 0", "stopwaitsecs = 2", "numprocs_start = 1", f"numprocs = {numprocs}"]
    if numprocs > 1:
        lines.append("process_name = %(program_name)s_%(process_num)02d")
    settings = dict(FAST, **(health or {}))
    if probe == "url":
        settings.setdefault("url", f"http://127.0.0.1:{port}/health")
    elif probe == "tcp":
        settings.setdefault("tcp", f"127.0.0.1:{port}")
    lines += [f"supz_health_{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def health_host() -> Iterator[SupzHost]:
    h = make_host()
    try:
        yield h
    finally:
        destroy_host(h)


def state(host: SupzHost) -> dict[str, Any]:
    result = host.supz("health", "status", "--json")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def target(host: SupzHost, namespec: str) -> dict[str, Any]:
    return state(host).get("targets", {}).get(namespec, {})


def restarts(host: SupzHost, process: str | None = None) -> list[dict[str, Any]]:
    return [line for line in host.audit_lines() if line["command"] == "health restart"
            and (process is None or line["args"][0] == process)]


def wait_status(host: SupzHost, namespec: str, status: str, timeout: float = 30) -> None:
    host.wait_for(lambda: target(host, namespec).get("status") == status, timeout=timeout,
                  what=f"{namespec} {status}: {target(host, namespec)}")


def test_500_unhealthy_after_fails_restarted_once_then_healthy(health_host: SupzHost, tmp_path: Path) -> None:
    host = health_host
    text = app_entry("web", tmp_path)
    host.add("web", text)
    wait_status(host, "web:web", "HEALTHY")
    pid = host.pid_of("web:web")
    assert "HEALTHY" in host.supzcli("status", "web").stdout
    (tmp_path / str(pid)).write_text("500")
    host.wait_for(lambda: restarts(host, "web"), timeout=30, what="a health restart of web")
    wait_status(host, "web:web", "HEALTHY")
    line = restarts(host, "web")[0]
    assert line["result"] == "ok"
    assert line["args"][1].startswith("2 failures, HTTP 500 in ")
    assert host.pid_of("web:web") != pid
    assert len(restarts(host)) == 1
    # The daemon rewrites its state file every round: the restarted process may still be in its
    # start period in the one read first.
    host.wait_for(lambda: " HEALTHY " in host.supz("health", "status").stdout, timeout=30,
                  what="supz health status to say HEALTHY")
    shown = host.supz("health", "status")
    assert shown.returncode == 0, shown.stderr
    assert "web:web" in shown.stdout and "HEALTHY" in shown.stdout and "restarts 1/3" in shown.stdout


def test_restart_loop_stops_at_the_budget_left_or_parked_with_a_reason(health_host: SupzHost, tmp_path: Path) -> None:
    host = health_host
    budget = {"max_restarts": "2", "window": "600"}
    host.add("leftapp", app_entry("leftapp", tmp_path / "l", health=dict(budget, exhausted="leave")))
    host.add("parkapp", app_entry("parkapp", tmp_path / "p", health=dict(budget, exhausted="park")))
    for sub in ("l", "p"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "all").write_text("500")
    host.wait_for(lambda: "parkapp" in host.call("supz", "getRegistry")["parked"], timeout=60,  # type: ignore[index]
                  what="parkapp parked by health")
    host.wait_for(lambda: target(host, "leftapp:leftapp").get("exhausted"), timeout=60, what="leftapp exhausted")
    # The daemon's state file catches up with the park within a refresh or two.
    host.wait_for(lambda: state(host).get("apps", {}).get("parkapp", {}).get("parked"), what="parkapp PARKED in the state")
    assert len(restarts(host, "leftapp")) == 2 and len(restarts(host, "parkapp")) == 2
    park = [line for line in host.audit_lines() if line["command"] == "health park"]
    assert len(park) == 1 and park[0]["args"][0] == "parkapp"
    assert "parkapp 2 restarts in 600 s did not make it healthy (last: " in park[0]["args"][1]
    assert host.states()["leftapp:leftapp"] == "RUNNING"
    assert "parkapp:parkapp" not in host.states()
    shown = host.supz("health", "status")
    assert shown.returncode == 1
    assert "budget spent (leave)" in shown.stdout and "PARKED" in shown.stdout
    # Left alone: no more restarts while the window holds two.
    before = len(restarts(host))
    host.wait_for(lambda: target(host, "leftapp:leftapp").get("failures", 0) >= 6, what="more probes")
    assert len(restarts(host)) == before


def test_hung_process_tcp_and_command_probes(health_host: SupzHost, tmp_path: Path) -> None:
    host = health_host
    (tmp_path / "h").mkdir()
    (tmp_path / "t").mkdir()
    host.add("hung", app_entry("hung", tmp_path / "h", health={"timeout": "1"}))
    host.add("tcpapp", app_entry("tcpapp", tmp_path / "t", probe="tcp"))
    broken = tmp_path / "cmd-broken"
    host.add("cmdapp", app_entry("cmdapp", tmp_path, probe="cmd",
                                 health={"cmd": f"/usr/bin/test ! -e {broken}", "timeout": "2"}))
    for name in ("hung", "tcpapp", "cmdapp"):
        wait_status(host, f"{name}:{name}", "HEALTHY")
    (tmp_path / "h" / str(host.pid_of("hung:hung"))).write_text("hang")
    (tmp_path / "t" / str(host.pid_of("tcpapp:tcpapp"))).write_text("noaccept")
    broken.write_text("x")
    host.wait_for(lambda: all(restarts(host, n) for n in ("hung", "tcpapp", "cmdapp")), timeout=60,
                  what="a restart of each")
    assert "timed out after 1 s" in restarts(host, "hung")[0]["args"][1]
    assert "Connection refused" in restarts(host, "tcpapp")[0]["args"][1]
    assert "exit 1" in restarts(host, "cmdapp")[0]["args"][1]
    broken.unlink()
    for name in ("hung", "tcpapp", "cmdapp"):
        wait_status(host, f"{name}:{name}", "HEALTHY")


def test_numbered_instances_probed_one_by_one(health_host: SupzHost, tmp_path: Path) -> None:
    host = health_host
    host.add("multi", app_entry("multi", tmp_path, numprocs=3))
    for num in (1, 2, 3):
        wait_status(host, f"multi:multi_0{num}", "HEALTHY")
    pids = {n: host.pid_of(f"multi:multi_0{n}") for n in (1, 2, 3)}
    probes = {t["probe"] for t in state(host)["targets"].values()}
    assert len(probes) == 3
    (tmp_path / str(pids[2])).write_text("500")
    host.wait_for(lambda: restarts(host), timeout=30, what="a restart")
    wait_status(host, "multi:multi_02", "HEALTHY")
    assert [line["args"][0] for line in restarts(host)] == ["multi_02"]
    assert host.pid_of("multi:multi_01") == pids[1] and host.pid_of("multi:multi_03") == pids[3]
    assert host.pid_of("multi:multi_02") != pids[2]
    assert "UNHEALTHY" not in host.supzcli("status").stdout


def test_parked_and_start_period_applications_never_restarted(health_host: SupzHost, tmp_path: Path) -> None:
    host = health_host
    for sub in ("park", "slow", "control"):
        (tmp_path / sub).mkdir()
    host.add("parkme", app_entry("parkme", tmp_path / "park"))
    host.add("slow", app_entry("slow", tmp_path / "slow", health={"start_period": "3600"}))
    host.add("control", app_entry("control", tmp_path / "control"))
    wait_status(host, "parkme:parkme", "HEALTHY")
    host.supzcli("stop", "parkme", check=True)
    host.wait_for(lambda: "parkme:parkme" not in state(host).get("targets", {}), what="parkme no longer probed")
    for sub in ("park", "slow", "control"):
        (tmp_path / sub / "all").write_text("500")
    host.wait_for(lambda: target(host, "slow:slow").get("note") == "start period", what="slow in its start period")
    # The control application, broken at the same time, shows the daemon acted meanwhile.
    host.wait_for(lambda: len(restarts(host, "control")) >= 2, timeout=60, what="control restarted twice")
    assert not restarts(host, "parkme") and not restarts(host, "slow")
    assert target(host, "slow:slow")["status"] == "UNKNOWN"
    assert "parkme" in host.call("supz", "getRegistry")["parked"]  # type: ignore[index]


def test_a_deploy_checks_each_instance_with_the_probe_of_program_ini(health_host: SupzHost, tmp_path: Path) -> None:
    """No --health-url: the deploy probes each restarted process with its supz_health_url."""
    host = health_host
    prefix = free_prefix(2)
    url = f"http://127.0.0.1:{prefix}%(process_num)02d/health"
    app = host.root / "shop"
    settings = host.paths.config_file
    settings.write_text(settings.read_text().replace("health_timeout = 30", "health_timeout = 2"))
    host.supz("app", "init", str(app), "--command", "bin/run", "--startsecs", "1", "--numprocs", "2",
              "--health", f"url={url}", check=True)
    serving = f"#!/bin/sh\nexec {sys.executable} {APP} {prefix}${{SUPERVISOR_PROCESS_NAME##*_}} {tmp_path}\n"
    for version, script in (("1.0", serving), ("1.1", serving), ("2.0", "#!/bin/sh\nexec sleep 100000\n")):
        run = app / "releases" / version / "bin" / "run"
        run.parent.mkdir(parents=True)
        run.write_text(script)
        run.chmod(0o755)

    def sup_run(*args: str) -> Any:
        import subprocess

        return subprocess.run([str(app / "sup_run.sh"), *args], env=host.env, capture_output=True, text=True,
                              timeout=120, check=False)

    assert sup_run("deploy", "1.0").returncode == 0
    assert sup_run("start").returncode == 0
    healthy = sup_run("deploy", "1.1")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "shop:shop_02: RUNNING on release 1.1, health probe (http, program.ini) ok" in healthy.stdout
    failed = sup_run("deploy", "2.0")
    assert failed.returncode == 1
    assert f"shop:shop_01: health probe http://127.0.0.1:{prefix}01/health failed for 2 s:" in failed.stdout
    assert failed.stdout.splitlines()[-1] == "shop: release 2.0 failed; rolled back to 1.1, which is running"
