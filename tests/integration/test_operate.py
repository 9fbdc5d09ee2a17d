"""Operating the pair with real keepalived in network namespaces: maintenance mode (freeze),
switchover and standby readiness, alerts delivered by the hosts' own supz-alerts.

Copies of applications are counted from /proc (tests/integration/procs.py) and sampled while
keepalived moves the VIP, never asked of a supervisord.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from supz.config import set_options
from tests.conftest import short_tempdir, sleep_program
from tests.integration import test_keepalived
from tests.integration.procs import program_pids
from tests.integration.test_failover_chaos import DETECTION, copies, exactly_once_on, start_pair
from tests.integration.test_keepalived import REASON, Node, wait
from tests.webhooks import recording_handler

pair = test_keepalived.pair  # the keepalived pair fixture, used here by name

pytestmark = pytest.mark.skipif(REASON is not None, reason=f"failover lab: {REASON}")


def story(*nodes: Node) -> str:
    """What a failed assertion shows of each host: its transitions and the end of keepalived's log
    (on a loaded machine a late check can send a host to FAULT)."""
    parts = []
    for node in nodes:
        for path in (node.supz.paths.failover_log, node.supz.paths.log / "keepalived.log"):
            text = path.read_text(errors="replace")[-2000:] if path.exists() else "(none)"
            parts.append(f"\n--- {node.name}: {path.name}\n{text}")
    return "".join(parts)


def pids(node: Node) -> dict[str, int]:
    with node.supz.client() as client:
        infos = client.call("supervisor", "getAllProcessInfo")
    return {i["name"]: i["pid"] for i in infos if i["pid"]}  # type: ignore[union-attr]


def test_a_frozen_pair_moves_the_vip_but_no_application(pair: tuple[Node, Node, str]) -> None:
    """freeze --pair, kill -9 of A's keepalived: the VIP moves to B, no application starts or
    stops on either host; unfreeze B: B runs the set; unfreeze A: A runs none."""
    a, b, vip = pair
    names = [f"app{i:02d}" for i in range(12)]
    start_pair(a, b, names)
    before = pids(a)

    frozen = a.supz.supz("failover", "freeze", "--pair", "--reason", "kernel update", check=True)
    assert "host-a: failover frozen" in frozen.stdout and "host-b: failover frozen" in frozen.stdout, frozen.stdout
    shown = a.supz.supz("status", "--cluster")
    assert "FROZEN" in shown.stdout and "FROZEN for maintenance" in shown.stderr and "kernel update" in shown.stderr
    assert shown.returncode == 0, shown.stderr

    a.kill_keepalived()
    wait("the VIP to move to B", lambda: b.holds_vip(vip), timeout=DETECTION + 10)
    wait("B's keepalived to announce MASTER",
         lambda: json.loads(b.supz.paths.failover_wanted.read_text())["state"] == "MASTER", timeout=10)
    quiet_until = time.monotonic() + 6  # past the watchdog's silence limit on A
    while time.monotonic() < quiet_until:
        assert copies(a, b) == {n: [1, 0] for n in names}
        time.sleep(0.2)
    assert pids(a) == before, "an application was restarted on the frozen MASTER"
    assert a.role() == "MASTER" and b.role() == "BACKUP"
    view = json.loads(b.supz.supz("status", "--json").stdout)
    assert view["failover"]["keepalived"] == "MASTER" and view["failover"]["maintenance"]["reason"] == "kernel update"

    thawed = b.supz.supz("failover", "unfreeze", check=True)
    assert "BACKUP -> MASTER" in thawed.stdout, thawed.stdout
    assert b.role() == "MASTER"
    a.supz.supz("failover", "unfreeze", check=True)
    took = exactly_once_on(b, a, names, limit=30)
    print(f"\nunfreeze: every application exactly once, on B, after {took:.2f}s")
    assert a.role() == "FAULT"
    audit = [json.loads(line)["command"] for line in a.supz.paths.audit_log.read_text().splitlines()]
    assert "failover-freeze" in audit and "failover-unfreeze" in audit


def release_app(base: Path) -> tuple[Path, str]:
    """The application `web` deployed the usual way: releases/1 and a `current` link to it."""
    app = base / "web"
    run_script = app / "releases" / "1" / "bin" / "run"
    run_script.parent.mkdir(parents=True)
    run_script.write_text("#!/bin/sh\nexec sleep 100000\n")
    run_script.chmod(0o755)
    (app / "current").symlink_to("releases/1")
    return app, (f"[program:web]\ncommand = {app}/current/bin/run\ndirectory = {app}/current\n"
                 "startsecs = 0\nstopwaitsecs = 5\n")


def give_b_its_own_releases(b: Node, app: Path, own: Path) -> None:
    """B's sshd (what the readiness round trip reaches) again, in a mount namespace where `app`'s
    releases/ is `own`, a folder of B's alone: the lab's hosts share one file system, B's copy of
    the application need not be A's."""
    shutil.copytree(app / "releases", own)
    sshd = next(d for d in b.net.daemons if d.running and any("sshd" in word for word in d.argv))
    sshd.stop()
    workdir = b.supz.root / "sshd"
    b.net.start_sshd(workdir, authorized_key=(workdir / "authorized_keys").read_text(),
                     binds=[(own, app / "releases")])


def test_switchover_there_and_back_and_refused_to_a_standby_missing_a_release(pair: tuple[Node, Node, str]) -> None:
    """A -> B with 200 entries (SUPZ_SWITCHOVER_PROGRAMS, one of them `web`, a release-deployed
    application), B -> A asked on the standby; then web's release deleted on B alone (B sees its
    own releases/ folder): the switchover is refused with the reason naming host-b, web and the
    fix, exit 4, nothing moved (the same pids in /proc)."""
    a, b, vip = pair
    count = int(os.environ.get("SUPZ_SWITCHOVER_PROGRAMS", "200"))
    base = short_tempdir("supz-rel-")
    try:
        app, web = release_app(base)
        give_b_its_own_releases(b, app, base / "b-releases")
        names = [f"sw{i:03d}" for i in range(count - 1)] + ["web"]
        start_pair(a, b, names, text=lambda name: web if name == "web" else sleep_program(name))
        wait("B's keepalived to run its check", lambda: b.supz.paths.check_heartbeat.exists(), timeout=10)

        ready = a.supz.supz("failover", "ready")
        assert ready.returncode == 0 and f"host-b: ready ({count} entries" in ready.stdout, ready.stdout + ready.stderr

        moved = a.supz.supz("failover", "switchover", "--yes", timeout=400)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        print(f"\nswitchover A -> B, {count} entries:\n{moved.stdout}")
        downtime = float(re.search(r"applications down ([0-9.]+)s", moved.stdout).group(1))  # type: ignore[union-attr]
        assert [line.split()[0] for line in moved.stdout.splitlines()[:5]] == ["target", "push", "ready", "handover",
                                                                             "back"]
        assert b.role() == "MASTER" and a.role() == "BACKUP" and b.holds_vip(vip) and not a.holds_vip(vip)
        exactly_once_on(b, a, names, limit=10)
        assert set(b.supz.states().values()) == {"RUNNING"} and len(b.supz.states()) == count
        assert 0 < downtime < 120

        back = a.supz.supz("failover", "switchover", "--yes", timeout=400)  # asked on the standby
        assert back.returncode == 0, back.stdout + back.stderr
        print(f"switchover B -> A, asked on A:\n{back.stdout}")
        assert a.role() == "MASTER" and b.role() == "BACKUP" and a.holds_vip(vip)
        exactly_once_on(a, b, names, limit=10)

        shutil.rmtree(base / "b-releases" / "1")  # web's release, deleted on B alone
        assert (app / "current" / "bin" / "run").exists()  # A still has it
        before = program_pids([a.supz.root, b.supz.root])
        refused = a.supz.supz("failover", "switchover", "--yes", timeout=400)
        assert refused.returncode == 4, refused.stdout + refused.stderr
        print(f"switchover to a B missing web's release, refused:\n{refused.stderr}")
        reason = refused.stderr
        assert "host-b is not ready: host-b: web: command: release link" in reason, reason
        assert f"{app}/current -> releases/1 does not resolve" in reason, reason
        assert f"(fix: deploy {app}/current/bin/run on host-b)" in reason, reason
        assert a.role() == "MASTER" and b.role() == "BACKUP" and a.holds_vip(vip)
        assert not a.supz.paths.failover_handover.exists()
        assert program_pids([a.supz.root, b.supz.root]) == before  # nothing started, stopped or restarted
        assert copies(a, b) == {n: [1, 0] for n in names}
        shown = a.supz.supz("status", "--cluster")
        assert "NOT READY (2): host-b: web: command: release link" in shown.stdout, shown.stdout
        assert "last failover BACKUP -> MASTER" in shown.stdout and "last failover FAULT -> BACKUP" in shown.stdout, (
            shown.stdout + story(a, b))
        unready = a.supz.supz("failover", "ready")
        assert unready.returncode == 1 and "host-b: web: directory: release link" in unready.stdout, unready.stdout
        audit = [json.loads(line) for line in a.supz.paths.audit_log.read_text().splitlines()]
        assert [r["result"].split(":")[0] for r in audit if r["command"] == "failover-switchover"] == ["ok", "refused"]
    finally:
        shutil.rmtree(base, ignore_errors=True)


class LoopbackReceivers:
    """A webhook receiver on 127.0.0.1:PORT inside each host's network namespace (each host's own
    loopback, where its supz-alerts posts), all arrivals in one list; down: nothing listens."""

    PORT = 8765

    def __init__(self, namespaces: list[str]) -> None:
        self.namespaces = namespaces
        self.got: list[dict[str, Any]] = []
        self.servers: list[ThreadingHTTPServer] = []

    def _server_in(self, netns: str) -> ThreadingHTTPServer:
        """Made by a thread that joined `netns` (setns moves only the calling thread): the socket
        stays there, served from any thread."""
        handler = recording_handler(self.got)
        made: list[ThreadingHTTPServer | BaseException] = []

        def make() -> None:
            try:
                fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
                try:
                    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {netns}")
                finally:
                    os.close(fd)
                made.append(ThreadingHTTPServer(("127.0.0.1", self.PORT), handler))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                made.append(exc)

        maker = threading.Thread(target=make)
        maker.start()
        maker.join()
        if isinstance(made[0], BaseException):
            raise made[0]
        return made[0]

    def up(self) -> None:
        for netns in self.namespaces:
            server = self._server_in(netns)
            self.servers.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def down(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.servers = []


CLONE_NEWNET = 0x40000000


def events_of(receivers: LoopbackReceivers, host: str) -> list[tuple[str, str]]:
    return [(e["kind"], e.get("to") if e["kind"] == "failover" else e.get("state") or e.get("result", ""))
            for e in list(receivers.got) if e["host"] == host]


def in_order(wanted: list[tuple[str, str]], seen: list[tuple[str, str]]) -> bool:
    """`wanted` is a subsequence of `seen`."""
    rest = iter(seen)
    return all(item in rest for item in wanted)


def crash(node: Node) -> None:
    """Make boom go FATAL on `node`: its flag makes every start fail, and its process is killed."""
    (node.supz.root / "boom.flag").touch()
    os.kill(node.supz.pid_of("boom:boom"), 9)


BOOM = ("[program:boom]\ncommand = /bin/sh -c 'test -e \"$SUPZ_ROOT/boom.flag\" && exit 3; exec sleep 100000'\n"
        "startsecs = 1\nstartretries = 0\nautorestart = unexpected\nstopwaitsecs = 5\n")


def test_alerts_reach_a_loopback_receiver_and_those_raised_while_it_was_down_30s_arrive_in_order(
        pair: tuple[Node, Node, str]) -> None:
    """Each host's own supz-alerts and event listener (written by `supz init --ha`) with a webhook
    on its loopback. An application FATAL on the MASTER A reaches the receiver. Then the receiver
    is down for 30 s of wall time while A crashes (kill -9 of keepalived: B takes over, A goes
    FAULT), boom goes FATAL on the new MASTER B and A comes back, and a switchover moves the
    applications back to A. Back up, it receives every event, in each host's order, each id once."""
    a, b, _ = pair
    receivers = LoopbackReceivers([a.net.netns, b.net.netns])
    receivers.up()
    try:
        for node in (a, b):
            set_options(node.supz.paths.config_file, "alerts",
                        {"target.hook": f"webhook http://127.0.0.1:{receivers.PORT}/supz", "timeout": 2,
                         "retry_max": 2})
        for node in (a, b):  # the running deliverer follows the config by itself
            wait(f"{node.name}'s supz-alerts to take the target",
                 lambda node=node: "delivering to hook" in (node.supz.paths.log / "alerts.log").read_text(), timeout=10)
        names = [f"al{i}" for i in range(4)] + ["boom"]
        start_pair(a, b, names, text=lambda name: BOOM if name == "boom" else sleep_program(name))
        crash(a)
        wait("A's FATAL to reach the receiver", lambda: ("application", "FATAL") in events_of(receivers, "host-a"))
        (a.supz.root / "boom.flag").unlink()  # A could run it again
        assert in_order([("failover", "MASTER"), ("application", "EXITED unexpectedly"), ("application", "FATAL")],
                        events_of(receivers, "host-a")), events_of(receivers, "host-a")

        receivers.down()
        went_down = time.monotonic()
        arrived = len(receivers.got)
        arrived_a = len(events_of(receivers, "host-a"))
        a.kill_keepalived()
        exactly_once_on(b, a, names, limit=DETECTION + 10)
        crash(b)
        wait("boom FATAL on B", lambda: b.supz.states().get("boom:boom") == "FATAL")
        wait("A to leave MASTER", lambda: a.role() == "FAULT", timeout=20)
        a.start_keepalived()
        wait("A back as BACKUP after its hold-down", lambda: a.role() == "BACKUP", timeout=60)
        wait("A's keepalived to run its check", lambda: a.supz.paths.check_heartbeat.exists(), timeout=10)
        moved = a.supz.supz("failover", "switchover", "--yes", timeout=300)
        assert moved.returncode == 0, moved.stdout + moved.stderr + story(a, b)
        exactly_once_on(a, b, names, limit=10)
        time.sleep(max(0.0, 30 - (time.monotonic() - went_down)))
        print(f"\nreceiver down for {time.monotonic() - went_down:.1f}s")
        assert len(receivers.got) == arrived

        receivers.up()
        wanted_a = [("failover", "FAULT"), ("failover", "BACKUP"), ("failover", "MASTER")]
        wanted_b = [("failover", "MASTER"), ("application", "EXITED unexpectedly"), ("application", "FATAL"),
                    ("failover", "FAULT"), ("failover", "BACKUP"), ("switchover", "ok")]
        took = wait("every event to arrive", lambda: in_order(wanted_b, events_of(receivers, "host-b"))
                    and in_order(wanted_a, events_of(receivers, "host-a")[arrived_a:]), timeout=30)
        print(f"delivered {len(receivers.got) - arrived} events {took:.1f}s after the receiver came back")
        time.sleep(3)  # a round or two more: nothing may come twice
    finally:
        receivers.down()
    got = list(receivers.got)
    assert len({e["id"] for e in got}) == len(got), "an event arrived twice"
    for host in ("host-a", "host-b"):
        seqs = [e["seq"] for e in got if e["host"] == host]
        assert seqs == sorted(seqs), (host, seqs)
    assert in_order(wanted_b, events_of(receivers, "host-b")), events_of(receivers, "host-b")
    assert in_order(wanted_a, events_of(receivers, "host-a")[arrived_a:]), events_of(receivers, "host-a")
