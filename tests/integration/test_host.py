"""supz init / up / down / doctor / registry on a real supervisord, and the BACKUP guarantee."""

from __future__ import annotations

import configparser
import json

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
