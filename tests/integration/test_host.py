"""supz init / up / down / doctor / registry on a real supervisord, and the BACKUP guarantee."""

from __future__ import annotations

import configparser
import json
import os

from tests.conftest import SupzHost, allow_changes_off_master, destroy_host, make_host, sleep_program


def test_init_lays_out_a_complete_host_and_is_idempotent() -> None:
    host = make_host(up=False)
    try:
        paths = host.paths
        for folder in paths.folders():
            assert folder.is_dir(), folder
        conf = configparser.RawConfigParser(inline_comment_prefixes=(";",), strict=False)
        conf.read(paths.own_supervisord_conf)
        assert conf.get("unix_http_server", "file") == str(paths.socket)
        factory = conf.get("rpcinterface:supz", "supervisor.rpcinterface_factory")
        assert factory == "supz.supervisord.rpc:make_rpcinterface"
        assert conf.get("include", "files").split() == [f"{paths.host_programs}/*.conf"]
        assert int(conf.get("supervisord", "minfds")) >= 3 * 2000 + 100
        assert json.loads(paths.manifest.read_text())["generation"] == 0
        again = host.supz("init")
        assert again.returncode == 0
        assert "already initialised, nothing changed" in again.stdout
    finally:
        destroy_host(host)


def test_root_with_spaces_or_too_deep_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    host = SupzHost(tmp_path / "with space")
    result = host.supz("init")
    assert result.returncode == 2
    assert "white space" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "with space").exists()
    deep = SupzHost(tmp_path / ("d" * 90))
    result = deep.supz("init")
    assert result.returncode == 2 and "too deep" in result.stderr


def test_up_down_and_doctor(host: SupzHost) -> None:
    assert "already running" in host.supz("up", check=True).stdout
    host.add("app1", sleep_program("app1"))
    doctor = host.supz("doctor")
    assert doctor.returncode == 0, doctor.stdout
    assert "supz extension" in doctor.stdout
    host.supz("down", check=True)
    assert host.supz("down").stdout.strip() == "supervisord is not running"
    down = host.supzcli("stop", "app1")
    assert down.returncode == 7 and "not running" in down.stdout
    doctor = host.supz("doctor")
    assert doctor.returncode == 1 and "FAIL supervisord is not running" in doctor.stdout


def test_doctor_finishes_an_interrupted_change(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    # A crash after the journal was written but before any file moved.
    generation = json.loads(host.paths.manifest.read_text())["generation"]
    journal = {"op": "park", "who": {"user": "root"}, "time": "t", "generation_before": generation,
               "moves": {"app1": "parked"}, "removes": []}
    (host.paths.registry / ".journal.json").write_text(json.dumps(journal))
    doctor = host.supz("doctor")
    assert "registry recover" in doctor.stdout
    assert (host.paths.parked / "app1.conf").exists()
    assert not (host.paths.registry / ".journal.json").exists()
    assert json.loads(host.paths.manifest.read_text())["generation"] == generation + 1


def test_registry_add_validates_and_lists(host: SupzHost) -> None:
    good = host.root / "svc.conf"
    good.write_text(sleep_program("svc"))
    added = host.supz("registry", "add", str(good))
    assert added.returncode == 0, added.stderr
    assert host.states() == {"svc:svc": "RUNNING"}
    twice = host.supz("registry", "add", str(good))
    assert twice.returncode == 1 and "--replace" in twice.stderr
    bad = host.root / "broken.conf"
    bad.write_text("[program:broken]\ncommand = /bin/true\nnumprocs = many\n")
    refused = host.supz("registry", "add", str(bad))
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith(
        "line 3: invalid literal for int() with base 10: 'many' in section 'program:broken'")
    wrong = host.root / "other.conf"
    wrong.write_text("[program:svc2]\ncommand = /bin/true\n")
    assert "the file name is the program name" in host.supz("registry", "add", str(wrong)).stderr
    listing = json.loads(host.supz("registry", "list", "--json", check=True).stdout)
    assert listing["active"] == ["svc"] and listing["parked"] == [] and listing["generation"] == 1
    text = host.supz("registry", "list", check=True).stdout
    assert text.splitlines()[0].startswith("generation 1")
    history = host.supz("registry", "history", check=True).stdout
    assert "registry add" in history


def test_a_backup_whose_supervisord_restarts_starts_no_ha_application() -> None:
    host = make_host("--ha")
    try:
        host.supz("role", "set", "BACKUP", check=True)
        allow_changes_off_master(host)
        host.add("app1", sleep_program("app1"))
        allow_changes_off_master(host, False)
        assert host.states() == {}
        status = host.supzcli("status")
        assert status.stdout.split()[:2] == ["app1", "INACTIVE"]
        host.supz("down", check=True)
        host.supz("up", check=True)
        assert host.states() == {}
        start = host.supzcli("start", "app1")
        assert start.returncode == 4 and "refused: this host is BACKUP" in start.stdout + start.stderr
        host.supz("role", "set", "MASTER", check=True)
        started = host.supzcli("start", "all")
        assert started.returncode == 0, started.stdout
        assert host.states() == {"app1:app1": "RUNNING"}
    finally:
        destroy_host(host)


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_init_ha_runs_the_alert_programs_idle_without_targets_then_alerts_of_a_fatal_application() -> None:
    """`supz init --ha` writes the alert deliverer and the FATAL / unexpected-exit event listener
    as host-local programs. Without targets both run and do nothing: no error, no restart, no busy
    loop. Given a target, the deliverer follows the config by itself, and an application that goes
    FATAL on the MASTER reaches the target: its unexpected exit, then FATAL."""
    import time

    from supz.config import set_options

    host = make_host("--ha", up=False)
    try:
        for name in ("supz-alerts", "supz-alerts-events"):
            assert (host.paths.host_programs / f"{name}.conf").exists(), name
        host.supz("role", "set", "MASTER", check=True)
        host.supz("up", check=True)
        host.wait_for(lambda: all(host.states(with_syncer=True).get(f"{n}:{n}") == "RUNNING"
                                  for n in ("supz-alerts", "supz-alerts-events")), what="the alert programs RUNNING")
        flag = host.root / "boom.flag"
        host.add("boom", "[program:boom]\n"
                         f"command = /bin/sh -c 'test -e {flag} && exit 3; exec sleep 100000'\n"
                         "startsecs = 1\nstartretries = 0\nautorestart = unexpected\nstopwaitsecs = 5\n")
        host.wait_for(lambda: host.states().get("boom:boom") == "RUNNING", what="boom RUNNING")
        pids = {n: host.pid_of(f"{n}:{n}") for n in ("supz-alerts", "supz-alerts-events")}
        ticks = {n: _cpu_ticks(p) for n, p in pids.items()}
        time.sleep(3)
        assert {n: host.pid_of(f"{n}:{n}") for n in pids} == pids  # never restarted
        spent = {n: _cpu_ticks(p) - ticks[n] for n, p in pids.items()}
        assert all(t < 30 for t in spent.values()), spent  # idle: a busy loop would spend ~300 ticks in 3 s
        log = (host.paths.log / "alerts.log").read_text()
        assert "no targets in [alerts]" in log and log.count("no targets") == 1, log
        assert not (host.paths.log / "alerts-events.log").exists() or \
            not (host.paths.log / "alerts-events.log").read_text().strip()

        got = host.root / "got.jsonl"
        taker = host.root / "take.sh"
        taker.write_text(f"#!/bin/sh\ncat >> {got}\necho >> {got}\n")
        taker.chmod(0o755)
        set_options(host.paths.config_file, "alerts", {"target.log": f"command {taker}"})
        host.wait_for(lambda: "delivering to log" in (host.paths.log / "alerts.log").read_text(), timeout=10,
                      what="the deliverer to follow the config")
        flag.touch()
        os.kill(host.pid_of("boom:boom"), 9)
        host.wait_for(lambda: got.exists() and "FATAL" in got.read_text(), timeout=20,
                      what="two application alerts")
        events = [json.loads(line) for line in got.read_text().splitlines() if line.strip()]
        # A loaded machine may reap the restarted shell past startsecs: one more unexpected exit then.
        states = [(e["kind"], e["name"], e["state"]) for e in events]
        assert states[0] == ("application", "boom", "EXITED unexpectedly") and states[-1] == ("application", "boom", "FATAL")
        assert set(states[1:-1]) <= {("application", "boom", "EXITED unexpectedly")}, states
        assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})
        assert host.states()["boom:boom"] == "FATAL"
        assert host.pid_of("supz-alerts:supz-alerts") == pids["supz-alerts"]
    finally:
        destroy_host(host)
