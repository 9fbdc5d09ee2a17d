"""`supz` in-process: every command family's error paths, with the exact exit code and one line.

`supz.cli.main.run` is the entry point without `sys.exit`; click's CliRunner isolation gives it
its own streams and environment. No supervisord runs here: these are the paths a user meets
when something is missing or wrong.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from supz.cli import host as host_cli
from supz.config import set_options
from supz.errors import ExitCode
from supz.host.layout import InitOptions, init_host
from supz.paths import HostPaths
from tests.clirun import Ran, run_supz
from tests.conftest import short_tempdir

Outcome = Ran


def supz(root: Path | str, *args: str) -> Outcome:
    return run_supz(list(args), env={"SUPZ_ROOT": str(root)})


@pytest.fixture
def root() -> Iterator[Path]:
    """An initialised host root (short: its socket path must fit), no supervisord."""
    folder = short_tempdir("supz-cli-")
    init_host(HostPaths(folder), InitOptions(host="hosta"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def one_error_line(outcome: Outcome) -> str:
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    assert len(lines) == 1, outcome.err
    assert lines[0].startswith("supz: error: ") or lines[0].startswith("Error: "), lines[0]
    return lines[0]


def test_usage_errors_exit_2(root: Path) -> None:
    for args in (["--bogus"], ["nosuchcommand"], ["role", "set", "EMPEROR"], ["status", "--bogus"],
                 ["sync", "pull"], ["registry", "add"]):
        outcome = supz(root, *args)
        assert outcome.code == ExitCode.USAGE, (args, outcome)


def test_help_exits_0(root: Path) -> None:
    outcome = supz(root, "--help")
    assert outcome.code == ExitCode.OK and "Usage: supz" in outcome.out


def test_malformed_config_is_one_line_and_exit_2(root: Path) -> None:
    HostPaths(root).config_file.write_text("[supz]\nhost = a\n[shell\n")
    for args in (["status"], ["role", "set", "MASTER"], ["keepalived", "render"], ["sync", "check"]):
        outcome = supz(root, *args)
        assert outcome.code == ExitCode.USAGE, (args, outcome)
        assert "supz.conf" in one_error_line(outcome)


def test_bad_section_value_names_the_section(root: Path) -> None:
    with HostPaths(root).config_file.open("a") as conf:
        conf.write("\n[failover]\nvip = 10.0.0.300/24\n")
    outcome = supz(root, "keepalived", "render")
    assert outcome.code == ExitCode.USAGE and "[failover]" in one_error_line(outcome)


def test_status_without_supervisord_exits_7(root: Path) -> None:
    outcome = supz(root, "status")
    assert outcome.code == ExitCode.DOWN and " down " in outcome.out
    data = supz(root, "status", "--json")
    assert data.code == ExitCode.DOWN and '"supervisord": "down"' in data.out


def test_cluster_status_names_each_problem(root: Path) -> None:
    set_options(HostPaths(root).config_file, "sync", {"peers": "/tmp/supz-no-such-peer-root"})
    outcome = supz(root, "status", "--cluster")
    assert outcome.code == ExitCode.ERROR
    assert "ERROR: hosta: supervisord is not running" in outcome.err
    assert "warning: /tmp/supz-no-such-peer-root: unreachable" in outcome.err


def test_doctor_without_supervisord_exits_1(root: Path) -> None:
    outcome = supz(root, "doctor")
    assert outcome.code == ExitCode.ERROR
    assert [line for line in outcome.out.splitlines() if line.startswith("FAIL")] == [
        line for line in outcome.out.splitlines() if "supervisord" in line and line.startswith("FAIL")]


def test_doctor_on_an_empty_folder_exits_1(tmp_path: Path) -> None:
    outcome = supz(tmp_path, "doctor")
    assert outcome.code == ExitCode.ERROR and "FAIL folder" in outcome.out


def test_up_without_init_is_not_installed(tmp_path: Path) -> None:
    outcome = supz(tmp_path, "up")
    assert outcome.code == ExitCode.NOT_INSTALLED and "init" in one_error_line(outcome)


def test_demo_refuses_the_real_host() -> None:
    outcome = supz("/", "demo", "--no-shell")
    assert outcome.code == ExitCode.USAGE and "own --root" in outcome.err


def test_sync_once_refused_when_not_master(root: Path) -> None:
    outcome = supz(root, "sync", "once")
    assert outcome.code == ExitCode.REFUSED and "only a MASTER pushes" in one_error_line(outcome)


def test_sync_status_never_ran_exits_3(root: Path) -> None:
    outcome = supz(root, "sync", "status")
    assert outcome.code == ExitCode.NOT_RUNNING and "never ran" in outcome.out


def test_sync_check_without_peers_and_a_bad_peer_spec_exit_2(root: Path) -> None:
    checked = supz(root, "sync", "check")
    assert checked.code == ExitCode.USAGE and "no peers" in one_error_line(checked)
    outcome = supz(root, "sync", "pull", "a b")
    assert outcome.code == ExitCode.USAGE and "'a b'" in one_error_line(outcome)


def test_sync_pull_from_a_dead_peer_exits_6(root: Path) -> None:
    outcome = supz(root, "sync", "pull", "/tmp/supz-no-such-peer-root")
    assert outcome.code == ExitCode.UNREACHABLE and "no supz host there" in one_error_line(outcome)


def test_sync_check_unreachable_peer_exits_6(root: Path) -> None:
    set_options(HostPaths(root).config_file, "sync", {"peers": "/tmp/supz-no-such-peer-root"})
    outcome = supz(root, "sync", "check")
    assert outcome.code == ExitCode.UNREACHABLE and "unreachable" in outcome.out


def test_failover_check_without_supervisord_exits_1(root: Path) -> None:
    outcome = supz(root, "failover", "check")
    assert outcome.code == ExitCode.ERROR and outcome.err.strip()


def test_keepalived_render_needs_the_failover_section(root: Path) -> None:
    outcome = supz(root, "keepalived", "render", "--no-check")
    assert outcome.code == ExitCode.USAGE and "[failover]" in one_error_line(outcome)


def test_ctrl_c_exits_130(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object, **__: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(host_cli.daemon, "up", interrupted)
    outcome = supz(root, "up")
    assert outcome.code == ExitCode.INTERRUPTED and "aborted" in outcome.err


def test_failover_log_text_and_json(root: Path) -> None:
    paths = HostPaths(root)
    records = [{"time": "2026-11-29T02:14:00+00:00", "from": "BACKUP", "to": "MASTER", "seconds": 1.5,
                "result": "ok", "started": 3},
               {"time": "2026-11-29T02:20:00+00:00", "from": "MASTER", "to": "FAULT", "seconds": 0.2,
                "result": "ok", "stopped": 3}]
    paths.failover_log.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")
    text = supz(root, "failover", "log")
    assert text.code == ExitCode.OK
    assert text.out.splitlines() == ["2026-11-29T02:14:00+00:00 BACKUP -> MASTER 1.50s ok (started 3)",
                                     "2026-11-29T02:20:00+00:00 MASTER -> FAULT 0.20s ok (stopped 3)"]
    data = supz(root, "failover", "log", "--json", "-n", "1")
    assert data.code == ExitCode.OK and [json.loads(line) for line in data.out.splitlines()] == records[1:]
