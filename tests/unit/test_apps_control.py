"""sup_run.sh's actions decided on fakes: when the registry must be written (root), when the
socket is enough, whose entry it is, what the policy says, and the status exit codes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from supz.apps import control
from supz.apps.conventions import AppLayout, app_layout
from supz.apps.releases import switch
from supz.apps.scaffold import AppOptions, init_app
from supz.apps.settings import AppSettings
from supz.audit import Who
from supz.config import ShellPolicy, SupzConfig
from supz.errors import PolicyRefused, SupervisordDown, UnknownEntry
from supz.ops.env import OpsEnv
from supz.paths import HostPaths
from supz.programfile import sha256_text


class FakeClient:
    """Answers the extension calls an action makes, and remembers them."""

    def __init__(self, entry: dict[str, str], status: str = "") -> None:
        self.entry = entry
        self.status_text = status
        self.calls: list[str] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def supz(self, method: str, *args: Any) -> Any:
        self.calls.append(method)
        self.last_args = args
        if method == "getEntries":
            return {args[0][0]: self.entry}
        if method == "status":
            return self.status_text
        if method in ("unpark", "park", "update"):
            return {"results": [{"name": args[0][0], "ok": True, "status": {"unpark": "unparked", "park": "parked",
                                                                             "update": "updated"}[method],
                                 "message": ""}]}
        raise AssertionError(f"unexpected call supz.{method}")



@pytest.fixture
def app(paths: HostPaths, tmp_path: Path) -> AppLayout:
    layout = app_layout(tmp_path / "apps" / "web")
    init_app(paths, layout, AppOptions(command="bin/run"), AppSettings(startsecs=1))
    layout.release("1.0").mkdir()
    switch(layout, "1.0")
    return layout


def env_with(paths: HostPaths, client: FakeClient, monkeypatch: pytest.MonkeyPatch,
             policy: ShellPolicy | None = None) -> OpsEnv:
    return OpsEnv(paths, SupzConfig(host="h", policy=policy or ShellPolicy()), Who("op", "op", "h"), lambda: client)


def registered(app: AppLayout, state: str = "parked", text: str | None = None) -> dict[str, str]:
    text = app.program_ini.read_text() if text is None else text
    return {"state": state, "sha256": sha256_text(text), "directory": str(app.current)}


def no_write_access(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)


def test_starting_a_registered_program_needs_only_the_socket(paths: HostPaths, app: AppLayout,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(registered(app))
    no_write_access(monkeypatch)
    report = control.start(env_with(paths, client, monkeypatch), app)
    assert client.calls == ["getEntries", "unpark"]
    assert report.lines == ["web: unparked and started"] and report.exit_code == 0


@pytest.mark.parametrize("entry", [{"state": "", "sha256": "", "directory": ""}, "edited"])
def test_registering_new_content_without_root_is_one_clear_error(
        paths: HostPaths, app: AppLayout, monkeypatch: pytest.MonkeyPatch, entry: Any) -> None:
    if entry == "edited":
        entry = registered(app, "active", text="[program:web]\ncommand = /bin/old\n")
        entry["directory"] = str(app.current)
    client = FakeClient(entry)
    no_write_access(monkeypatch)
    for action in (control.start, control.update):
        if action is control.update and not entry["state"]:
            continue
        with pytest.raises(PolicyRefused, match=r"needs write access to the registry .* \(run as root\)"):
            action(env_with(paths, client, monkeypatch), app)
    assert "unpark" not in client.calls and "update" not in client.calls
    assert list(paths.active.iterdir()) == []


@pytest.mark.parametrize("action", [control.start, control.stop, control.restart, control.update])
def test_an_entry_made_from_another_directory_is_not_touched(
        paths: HostPaths, app: AppLayout, monkeypatch: pytest.MonkeyPatch, action: Any) -> None:
    entry = registered(app, "active")
    entry["directory"] = "/srv/other/web/current"
    client = FakeClient(entry)
    with pytest.raises(PolicyRefused, match="runs from /srv/other/web/current"):
        action(env_with(paths, client, monkeypatch), app)
    assert client.calls == ["getEntries"]


def test_the_policy_is_asked_first(paths: HostPaths, app: AppLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(registered(app, "active"))
    env = env_with(paths, client, monkeypatch, ShellPolicy(refuse=("stop",), confirm=("restart",)))
    with pytest.raises(PolicyRefused, match="'stop' is disabled"):
        control.stop(env, app)
    with pytest.raises(PolicyRefused, match="needs a confirmation: add --yes"):
        control.restart(env, app)
    assert client.calls == []


def test_stopping_an_unknown_application(paths: HostPaths, app: AppLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient({"state": "", "sha256": "", "directory": ""})
    with pytest.raises(UnknownEntry, match="not in the registry"):
        control.stop(env_with(paths, client, monkeypatch), app)


@pytest.mark.parametrize(
    ("rows", "code"),
    [
        (["web:web_01\tRUNNING\tpid 1", "web:web_02\tRUNNING\tpid 2"], 0),
        (["web:web_01\tRUNNING\tpid 1", "web:web_02\tBACKOFF\tExited too quickly"], 3),
        (["web\tPARKED\tstopped on purpose"], 3),
        (["web\tINACTIVE\tnot loaded: this host is not MASTER"], 3),
        (["web:web_01\tUNKNOWN\t"], 3),
        (["webshop\tRUNNING\tpid 3"], 3),  # not registered: not running (decided in issue 9; was 4)
    ],
)
def test_status_exit_codes(paths: HostPaths, app: AppLayout, monkeypatch: pytest.MonkeyPatch,
                           rows: list[str], code: int) -> None:
    client = FakeClient({}, status="\n".join(rows + ["other\tRUNNING\tpid 9"]))
    report = control.status(env_with(paths, client, monkeypatch), app)
    assert report.exit_code == code
    assert not any(line.startswith(("other", "webshop")) for line in report.lines)


def test_status_when_supervisord_is_down_is_7(paths: HostPaths, app: AppLayout,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    class Down(FakeClient):
        def supz(self, method: str, *args: Any) -> Any:
            raise SupervisordDown("supervisord is not running (unix:///x)")

    with pytest.raises(SupervisordDown) as raised:
        control.status(env_with(paths, Down({}), monkeypatch), app)
    assert raised.value.exit_code == 7


def test_sup_run_stop_gives_its_reason_to_the_park(paths: HostPaths, app: AppLayout,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(registered(app, "active"))
    control.stop(env_with(paths, client, monkeypatch), app, reason="INC-42: payment timeouts")
    assert client.calls[-1] == "park"
    context = client.last_args[1]
    assert context["reason"] == "INC-42: payment timeouts" and context["args"][-2:] == [
        "--reason", "INC-42: payment timeouts"]
