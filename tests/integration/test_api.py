"""The Python API (`supz.api`) called the way a user's script calls it: against a real
supervisord, and from a script run by a socket-group user who is not root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from supz import api
from supz.errors import (
    EntryExists,
    OperationFailed,
    PolicyRefused,
    SupervisordDown,
    UnknownEntry,
)
from tests.conftest import SupzHost, destroy_host, make_host, needs_root, sleep_program


def test_a_deploy_script_adds_parks_with_a_reason_starts_restarts_and_reads(host: SupzHost) -> None:
    web = host.root / "web.conf"
    web.write_text(sleep_program("web"))
    h = api.Host(host.root)

    added = h.add(web)
    assert added.lines[0] == "web: active in the registry (generation 1)" and added.ok
    assert host.states() == {"web:web": "RUNNING"}
    with pytest.raises(EntryExists, match="--replace"):
        h.add(web)

    stopped = h.stop("web", reason="deploy 2.0")
    assert stopped.lines == ["web: stopped and parked"] and stopped.exit_code == 0
    assert host.states() == {} and (host.paths.parked / "web.conf").exists()
    last = host.audit_lines()[-1]
    assert (last["command"], last["args"], last["result"]) == ("api stop", ["web", "--reason", "deploy 2.0"], "ok")

    parked = h.status("web")
    assert not parked.ok and parked.exit_code == 3
    assert [(row.name, row.state) for row in parked.rows] == [("web", "PARKED")]

    assert h.start("web").lines == ["web: unparked and started"]
    assert host.states() == {"web:web": "RUNNING"} and h.status("web").ok
    pid = host.pid_of("web:web")
    assert h.restart("web").lines == ["web:web: restarted"]
    assert host.pid_of("web:web") != pid

    listing = h.entries()
    assert listing.active == ["web"] and listing.parked == [] and listing.generation == 3
    assert [r["command"] for r in h.history(4, local=True)] == ["api add", "api stop", "api start", "api restart"]
    changes = h.history(app="web")  # the registry's history: its changes, with the reason
    assert [(r["command"], r.get("reason")) for r in changes] == [
        ("api add", None), ("api stop", "deploy 2.0"), ("api start", None)]
    assert h.entries().notes == {}


def test_the_api_raises_the_cli_errors_with_their_exit_codes(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    h = api.Host(host.root)
    with pytest.raises(UnknownEntry) as unknown:
        h.stop("app1", "ghost")
    assert unknown.value.exit_code == 2 and "ghost: ERROR (no such process or application)" in str(unknown.value)
    assert host.states() == {"app1:app1": "RUNNING"}  # one unknown name changes nothing
    with pytest.raises(UnknownEntry):
        h.status("ghost")

    broken = sleep_program("broken", startsecs=1).replace("/bin/sleep 100000", "/bin/false")
    with pytest.raises(OperationFailed) as failed:
        h.register("broken", broken)
    assert failed.value.exit_code == 1
    assert failed.value.report.errors and failed.value.report.errors[0].startswith("broken: ERROR")  # type: ignore[attr-defined]

    config = host.paths.config_file
    config.write_text(config.read_text().replace("refuse = shutdown, reload", "refuse = shutdown, reload, restart"))
    with pytest.raises(PolicyRefused) as refused:
        api.Host(host.root).restart("app1")
    assert refused.value.exit_code == 4

    host.supz("down", check=True)
    with pytest.raises(SupervisordDown) as down:
        h.status()
    assert down.value.exit_code == 7


SCRIPT = """
import json, sys
from supz import api
from supz.errors import SupzError

host = api.Host(sys.argv[1])
out = {"stop": host.stop("app1", reason="maintenance").lines, "status": int(host.status("app1").exit_code)}
out["start"] = host.start("app1").lines
try:
    host.add(sys.argv[2])
except SupzError as exc:
    out["add"] = [type(exc).__name__, int(exc.exit_code), str(exc)]
print(json.dumps(out))
"""


@needs_root()
def test_a_socket_group_user_s_script_stops_and_starts_but_cannot_register(
        member: tuple[str, str]) -> None:
    group, user = member
    host = make_host("--socket-group", group)
    try:
        host.add("app1", sleep_program("app1"))
        script = host.root / "deploy.py"
        script.write_text(SCRIPT)
        other = host.root / "other.conf"
        other.write_text(sleep_program("other"))
        for path in (script, other):
            os.chmod(path, 0o644)
        ran = host.run("python", str(script), str(host.root), str(other), user=user)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        out = json.loads(ran.stdout)
        assert out["stop"] == ["app1: stopped and parked"] and out["status"] == 3
        assert out["start"] == ["app1: unparked and started"]
        assert out["add"][:2] == ["PolicyRefused", 4] and "needs write access to the registry" in out["add"][2]
        assert host.states() == {"app1:app1": "RUNNING"}
        lines = host.audit_lines()[-2:]
        assert [(line["user"], line["command"], line["args"]) for line in lines] == [
            (user, "api stop", ["app1", "--reason", "maintenance"]),
            (user, "api start", ["app1"]),
        ]
        assert not Path(host.paths.active / "other.conf").exists()
    finally:
        destroy_host(host)
