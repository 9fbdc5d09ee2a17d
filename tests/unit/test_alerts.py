"""Alerts: events spooled on disk and delivered in order, at least once with ids, to a webhook
receiver on loopback and to a command, including those raised while the receiver was down."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from supz.alerts.deliver import deliver_once
from supz.alerts.settings import load_alert_settings
from supz.alerts.spool import emit, spooled
from supz.cli.main import run
from supz.config import read_config
from supz.errors import ConfigError
from supz.failover.operator import freeze
from supz.failover.transitions import Announcement, announce, reconcile
from supz.paths import HostPaths
from supz.role import write_role
from tests.webhooks import recording_handler


class Receiver:
    """A webhook receiver on 127.0.0.1 that can be down (nothing listening) and come back."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.got: list[dict[str, Any]] = []
        self.server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), recording_handler(self.got))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.down()


def configure(paths: HostPaths, receiver: Receiver, tmp_path: Path, spool_max: int = 100) -> Path:
    out = tmp_path / "command-got.jsonl"
    script = tmp_path / "take.py"
    script.write_text(f"import sys\nopen({str(out)!r}, 'a').write(sys.stdin.read() + '\\n')\n")
    paths.config_file.write_text(
        "[supz]\nhost = host-a\n[alerts]\n"
        f"target.hook = webhook http://127.0.0.1:{receiver.port}/supz\n"
        f"target.log = command {sys.executable} {script}\n"
        f"spool_max = {spool_max}\ntimeout = 2\n")
    return out


def test_events_raised_while_the_receiver_is_down_arrive_in_order_once_it_is_back(
        paths: HostPaths, receiver: Receiver, tmp_path: Path) -> None:
    took = configure(paths, receiver, tmp_path)
    settings = load_alert_settings(read_config(paths.config_file))
    write_role(paths, "MASTER")
    announce(paths, Announcement("BACKUP", (5, 1)))
    [moved] = reconcile(paths, "host-a")  # no supervisord here: a failover transition all the same
    emit(paths, "host-a", "application", name="web", state="FATAL")
    freeze(paths, "host-a", reason="kernel update")

    first = deliver_once(paths, settings)  # the receiver is down: nothing to it, all to the command
    assert "hook" in first.failed and first.sent == {"log": 3}
    assert len(spooled(paths)) == 3
    receiver.up()
    second = deliver_once(paths, settings)
    assert second.sent == {"hook": 3} and not second.failed
    assert deliver_once(paths, settings).sent == {}  # nothing twice
    kinds = [(e["kind"], e["seq"]) for e in receiver.got]
    assert kinds == [("failover", 1), ("application", 2), ("freeze", 3)]
    assert receiver.got[0]["from"] == "MASTER" and receiver.got[0]["to"] == "BACKUP" and moved.to == "BACKUP"
    assert len({e["id"] for e in receiver.got}) == 3
    assert [json.loads(line)["kind"] for line in took.read_text().splitlines()] == ["failover", "application", "freeze"]
    assert spooled(paths) == []  # every target took them


def test_a_full_spool_drops_the_oldest_and_says_how_many(paths: HostPaths, receiver: Receiver,
                                                           tmp_path: Path) -> None:
    configure(paths, receiver, tmp_path, spool_max=3)
    for n in range(5):
        emit(paths, "host-a", "application", name=f"app{n}", state="FATAL")
    receiver.up()
    deliver_once(paths, load_alert_settings(read_config(paths.config_file)))
    assert [e["name"] for e in receiver.got] == ["app2", "app3", "app4"]
    assert receiver.got[1].get("dropped") == 1 and receiver.got[2].get("dropped") == 1


def test_supz_alerts_test_sends_a_sample(paths: HostPaths, receiver: Receiver, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    configure(paths, receiver, tmp_path)
    assert run(["--root", str(paths.root), "alerts", "test"]) == 1  # down: spooled, exit 1
    receiver.up()
    assert run(["--root", str(paths.root), "alerts", "test"]) == 0
    assert [e["kind"] for e in receiver.got] == ["test", "test"]
    assert "hook: took event" in capsys.readouterr().out


def test_a_bad_target_is_a_config_error_naming_it(paths: HostPaths) -> None:
    paths.config_file.write_text("[alerts]\ntarget.x = carrier-pigeon now\n")
    with pytest.raises(ConfigError, match="target.x"):
        load_alert_settings(read_config(paths.config_file))


def test_the_event_listener_alerts_for_a_fatal_application_on_the_master_only(
        paths: HostPaths, receiver: Receiver, tmp_path: Path) -> None:
    import io

    from supz.alerts.listener import listen

    configure(paths, receiver, tmp_path)

    def event(name: str, payload: str) -> str:
        return f"ver:3.0 server:supervisor serial:1 pool:supz-alerts-events poolserial:1 eventname:{name} " \
               f"len:{len(payload)}\n{payload}"

    fatal = event("PROCESS_STATE_FATAL", "processname:web groupname:web from_state:BACKOFF")
    exited = event("PROCESS_STATE_EXITED", "processname:db groupname:db from_state:RUNNING expected:0 pid:42")
    fine = event("PROCESS_STATE_EXITED", "processname:db groupname:db from_state:RUNNING expected:1 pid:43")
    own = event("PROCESS_STATE_FATAL", "processname:supz-sync groupname:supz-sync from_state:BACKOFF")
    out = io.StringIO()
    write_role(paths, "BACKUP")
    listen(paths, "host-a", lambda: ["web", "db"], io.StringIO(fatal), out)
    write_role(paths, "MASTER")
    listen(paths, "host-a", lambda: ["web", "db"], io.StringIO(fatal + exited + fine + own), out)
    assert out.getvalue().count("RESULT 2\nOK") == 5
    receiver.up()
    deliver_once(paths, load_alert_settings(read_config(paths.config_file)))
    assert [(e["name"], e["state"]) for e in receiver.got] == [("web", "FATAL"), ("db", "EXITED unexpectedly")]


def test_peer_conditions_raise_once_past_the_threshold_and_once_when_they_end(
        paths: HostPaths, receiver: Receiver, tmp_path: Path) -> None:
    from supz.alerts.watch import PeerWatch, look
    from supz.sync.peers import PeerView

    configure(paths, receiver, tmp_path)
    write_role(paths, "MASTER")
    watch = PeerWatch(threshold=30)
    down = PeerView("b", False, error="ssh: connection refused")
    assert look(paths, "host-a", watch, [down], now=100) == []
    assert look(paths, "host-a", watch, [down], now=120) == []
    [raised] = look(paths, "host-a", watch, [down], now=131)
    assert (raised["kind"], raised["condition"], raised["error"]) == ("peer", "unreachable", "ssh: connection refused")
    assert look(paths, "host-a", watch, [down], now=200) == []  # once
    [back] = look(paths, "host-a", watch, [PeerView("b", True, 0, "", "host-b", "BACKUP")], now=201)
    assert back["condition"] == "ok" and back["was"] == "unreachable"
    both = PeerView("b", True, 0, "", "host-b", "MASTER")
    assert look(paths, "host-a", watch, [both], now=202) == []
    [split] = look(paths, "host-a", watch, [both], now=240)
    assert (split["kind"], split["condition"]) == ("split-brain", "split brain")


def test_webhooks_use_the_health_probes_http_client(paths: HostPaths, tmp_path: Path) -> None:
    """One HTTP client in supz: webhooks go through aiohttp, as the health probes do (httpx cost
    ten times its CPU per probe: see docs/architecture.md). Taken on 2xx, with the event's id in
    X-Supz-Event; a 500 or a closed port is a failure naming the URL; a hung receiver times out."""
    import subprocess

    from supz.alerts.deliver import send
    from supz.alerts.settings import Target

    assert "httpx" not in (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    probe = subprocess.run([sys.executable, "-c", "import sys, supz.alerts.deliver; print('httpx' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "False"
    seen: list[tuple[str, str | None, dict[str, Any]]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("X-Supz-Event"), body))
            if self.path == "/hang":
                threading.Event().wait(3)
            self.send_response(500 if self.path == "/broken" else 202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}/x"
    event = {"id": "e-1", "seq": 1, "kind": "test"}
    try:
        assert send(Target("ok", "webhook", url=f"{base}/ok"), event, 2) is None
        assert send(Target("b", "webhook", url=f"{base}/broken"), event, 2) == f"{base}/broken: HTTP 500"
        hung = send(Target("h", "webhook", url=f"{base}/hang"), event, 0.5)
        assert hung is not None and hung.startswith(f"{base}/hang: ") and "timed out after 0.5 s" in hung, hung
        refused = send(Target("n", "webhook", url=nowhere), event, 2)
        assert refused is not None and refused.startswith(f"{nowhere}: ") and "refused" in refused.lower(), refused
    finally:
        server.shutdown()
        server.server_close()
    assert seen[0] == ("/ok", "e-1", event)
