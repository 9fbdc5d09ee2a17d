"""Health settings in the entry, the policy, the state file's readers, app init/lint: no supervisord."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from supz.apps.conventions import app_layout
from supz.apps.lint import lint_app
from supz.apps.scaffold import AppOptions, init_app, parse_health
from supz.apps.settings import AppSettings
from supz.errors import ConfigError
from supz.health import policy
from supz.health.probes import ProbeResult
from supz.health.settings import Exhausted, HealthSettings, ProbeKind, entry_targets, load_health
from supz.health.state import failover_reason, health_word, unhealthy_apps, write_state
from supz.ops.status import StatusRow, format_rows, with_health
from supz.paths import HostPaths
from supz.programfile import parse_program_text

WEB = """[program:web]
command = /bin/sleep 100
process_name = %(program_name)s_%(process_num)02d
numprocs = 2
numprocs_start = 1
supz_health_url = http://127.0.0.1:80%(process_num)02d/health?q=100%%
supz_health_expect = 200-299,301
supz_health_body = ok
supz_health_fails = 3
supz_health_exhausted = park
"""


def test_supervisor_ignores_the_health_keys() -> None:
    """supervisor's own parser (processes_from_section, and a whole supervisord.conf) reads the
    entry as if the supz_health_* keys were not there."""
    from supervisor.options import ServerOptions, UnhosedConfigParser

    plain = "\n".join(line for line in WEB.splitlines() if not line.startswith("supz_health_")) + "\n"
    with_keys, without = parse_program_text(WEB, "web"), parse_program_text(plain, "web")
    assert with_keys.process_names == without.process_names == ("web_01", "web_02")
    def fields(spec: object) -> list[dict[str, object]]:
        return [{k: v for k, v in vars(p).items() if k != "options"}
                for p in spec.group_config.process_configs]  # type: ignore[attr-defined]

    assert fields(with_keys) == fields(without)
    options = ServerOptions()
    parser = UnhosedConfigParser()
    parser.read_string("[supervisord]\nlogfile = /dev/null\n" + WEB)
    groups = options.process_groups_from_parser(parser)
    assert [p.name for p in groups[0].process_configs] == ["web_01", "web_02"]


def test_settings_and_one_target_per_instance() -> None:
    settings = load_health(WEB, "web")
    assert settings is not None and settings.kind is ProbeKind.HTTP
    assert settings.expect == ((200, 299), (301, 301)) and settings.fails == 3
    assert settings.exhausted is Exhausted.PARK and settings.interval == 5.0 and settings.max_restarts == 3
    found = entry_targets(WEB, "web")
    assert [(t.namespec, t.target) for t in found] == [
        ("web:web_01", "http://127.0.0.1:8001/health?q=100%"), ("web:web_02", "http://127.0.0.1:8002/health?q=100%")]


def test_tcp_and_command_targets_expand_per_instance() -> None:
    text = WEB.split("supz_health_url")[0] + "supz_health_tcp = 127.0.0.1:90%(process_num)02d\n"
    assert [(t.host, t.port) for t in entry_targets(text, "web")] == [("127.0.0.1", 9001), ("127.0.0.1", 9002)]
    text = WEB.split("supz_health_url")[0] + "supz_health_cmd = /bin/check --n %(process_num)d\n"
    assert [t.argv for t in entry_targets(text, "web")] == [("/bin/check", "--n", "1"), ("/bin/check", "--n", "2")]
    assert entry_targets(WEB.split("supz_health_url")[0], "web") == []


@pytest.mark.parametrize("extra, message", [
    ("supz_health_colour = red", "unknown health key supz_health_colour"),
    ("supz_health_tcp = 127.0.0.1:1", "give one probe"),
    ("supz_health_exhausted = explode", "expected leave, park or failover"),
    ("supz_health_fails = 0", "must be at least 1"),
    ("supz_health_interval = soon", "not a number of seconds"),
])
def test_bad_settings_are_named(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_health(WEB + extra + "\n", "web")


def test_bad_expect_and_url() -> None:
    with pytest.raises(ConfigError, match="HTTP status range"):
        load_health(WEB.replace("200-299,301", "99"), "web")
    with pytest.raises(ConfigError, match="http:// or https://"):
        load_health(WEB.replace("http://127.0.0.1", "ftp://h"), "web")
    with pytest.raises(ConfigError, match="settings without a probe"):
        load_health("[program:x]\ncommand = /bin/true\nsupz_health_fails = 2\n", "x")


def result(ok: bool, detail: str = "HTTP 502", at: float = 0.0) -> ProbeResult:
    return ProbeResult(ok, 200 if ok else 502, "HTTP 200" if ok else detail, 0.01, at)


def test_policy_fails_rises_and_the_budget() -> None:
    settings = HealthSettings(ProbeKind.HTTP, "http://h/", fails=3, rises=2, max_restarts=2, window=100)
    state = policy.TargetState()
    policy.observe(state, result(True), settings)
    assert state.status == policy.HEALTHY
    for count in range(1, 4):
        policy.observe(state, result(False), settings)
        assert state.status == (policy.UNHEALTHY if count == 3 else policy.HEALTHY)
    assert policy.decide(state, settings, now=0) is policy.Action.RESTART
    assert policy.reason_line(state, settings) == "3 failures, HTTP 502 in 0.01 s"
    policy.restarted(state, now=1)
    assert state.status == policy.UNKNOWN and state.failures == 0
    for _ in range(3):
        policy.observe(state, result(False), settings)
    assert policy.decide(state, settings, now=2) is policy.Action.RESTART
    policy.restarted(state, now=2)
    for _ in range(3):
        policy.observe(state, result(False), settings)
    assert policy.decide(state, settings, now=3) is policy.Action.EXHAUSTED
    state.exhausted = True
    assert policy.decide(state, settings, now=4) is policy.Action.NONE
    # The window moves on: a restart is allowed again.
    assert policy.decide(state, settings, now=101.5) is policy.Action.RESTART
    # Back to HEALTHY only after `rises` passes in a row.
    policy.observe(state, result(True), settings)
    assert state.status == policy.UNHEALTHY
    policy.observe(state, result(True), settings)
    assert state.status == policy.HEALTHY and not state.exhausted


def test_state_file_readers(paths: HostPaths) -> None:
    assert health_word(None, "web") is None and failover_reason(paths) is None
    state = {"updated": time.time(), "acting": True, "failover": ["crit"],
             "apps": {"web": {"settings": {"fails": 3}}},
             "targets": {"web:web": {"app": "web", "status": "UNHEALTHY", "failures": 4},
                         "api:api_01": {"app": "api", "status": "HEALTHY", "failures": 0}}}
    write_state(paths, state)
    assert health_word(state, "web") == "UNHEALTHY (4/3)"
    assert health_word(state, "api:api_01") == "HEALTHY" and health_word(state, "other") is None
    assert unhealthy_apps(state) == ["web"]
    assert with_health([StatusRow("web", "RUNNING", "pid 1")], state) == [
        StatusRow("web", "RUNNING", "pid 1", health="UNHEALTHY (4/3)")]
    assert format_rows(with_health([StatusRow("web", "RUNNING", "pid 1")], state))[0].endswith(
        f"RUNNING   {'UNHEALTHY (4/3)':<18}pid 1")
    assert "crit" in (failover_reason(paths) or "")
    stale = dict(state, updated=time.time() - 3600)
    paths.health_state.write_text(json.dumps(stale))
    assert failover_reason(paths) is None and health_word(stale, "web") is None
    idle = dict(state, acting=False)
    assert health_word(idle, "web") is None and unhealthy_apps(idle) == []


def test_app_init_writes_the_settings_and_lint_checks_them(paths: HostPaths, tmp_path: Path) -> None:
    app = tmp_path / "apps" / "web"
    health = parse_health(["url=http://127.0.0.1:80%(process_num)02d/health", "fails=2", "exhausted=failover"])
    init_app(paths, app_layout(app), AppOptions(command="bin/run", numprocs=2, health=health), AppSettings())
    text = (app / "program.ini").read_text()
    assert "supz_health_url = http://127.0.0.1:80%(process_num)02d/health\n" in text
    assert [t.target for t in entry_targets(text, "web")] == ["http://127.0.0.1:8001/health",
                                                               "http://127.0.0.1:8002/health"]
    assert not [f for f in lint_app(paths, app) if f.rule == "health"]
    (app / "program.ini").write_text(text + "supz_health_window = later\n")
    found = [f for f in lint_app(paths, app) if f.rule == "health"]
    assert len(found) == 1 and "supz_health_window = 'later'" in found[0].message
    with pytest.raises(ConfigError, match="KEY one of"):
        parse_health(["colour=red"])
    with pytest.raises(ConfigError, match="must be HOST:PORT"):
        init_app(paths, app_layout(tmp_path / "apps" / "api"),
                 AppOptions(command="bin/run", health=parse_health(["tcp=nohost"])), AppSettings())
