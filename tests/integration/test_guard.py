"""The policy lives in the extension: every client (stock supervisorctl, raw XML-RPC, supzcli) is
identified by the socket's peer credentials and held to the same rules.

Each test runs a real supervisord with a socket group, a member of that group and clients run
as that member.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator

import pytest

from tests.conftest import SupzHost, destroy_host, make_host, needs_root, sleep_program

pytestmark = needs_root()


@pytest.fixture
def guarded(member: tuple[str, str]) -> Iterator[tuple[SupzHost, str]]:
    group, user = member
    host = make_host("--socket-group", group)
    try:
        host.add("web", sleep_program("web"))
        yield host, user
    finally:
        destroy_host(host)


def stock_ctl(host: SupzHost, user: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Stock supervisorctl, as `user`, on the host's socket."""
    return host.run("supervisorctl", "-s", f"unix://{host.paths.socket}", *args, user=user, input=input)


def claiming_sudo_user(host: SupzHost, who: str, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """supzcli with SUDO_USER set to `who`: a claim anyone can make."""
    host.extra_env["SUDO_USER"] = who
    try:
        return host.supzcli(*args, user=user)
    finally:
        del host.extra_env["SUDO_USER"]


def raw_call(host: SupzHost, user: str, method: str, *args: object) -> subprocess.CompletedProcess[str]:
    """A hand-written XML-RPC client, run as `user`: it claims whatever it likes."""
    script = textwrap.dedent(f"""
        import json, sys
        from supervisor.xmlrpc import SupervisorTransport
        import xmlrpc.client
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1",
                                          transport=SupervisorTransport(None, None, "unix://{host.paths.socket}"))
        namespace, name = {method!r}.split(".")
        try:
            print(json.dumps(getattr(getattr(proxy, namespace), name)(*json.loads(sys.argv[1]))))
        except xmlrpc.client.Fault as fault:
            print(fault.faultString)
            sys.exit(1)
    """)
    return host.run("python", "-c", script, json.dumps(list(args)), user=user)


def test_stock_shutdown_and_reload_are_refused_for_an_operator(guarded: tuple[SupzHost, str]) -> None:
    host, user = guarded
    for command in ("shutdown", "reload"):
        refused = stock_ctl(host, user, command, input="y\n")
        assert "refused" in (refused.stdout + refused.stderr), (command, refused.stdout, refused.stderr)
        assert host.call("supervisor", "getState")["statename"] == "RUNNING"  # type: ignore[index]
    assert host.states() == {"web:web": "RUNNING"}
    raw = raw_call(host, user, "supervisor.shutdown")
    assert raw.returncode == 1 and "refused" in raw.stdout
    assert host.call("supervisor", "getState")["statename"] == "RUNNING"  # type: ignore[index]


def test_the_audit_names_the_socket_peer_not_the_claim(guarded: tuple[SupzHost, str]) -> None:
    host, user = guarded
    lying = raw_call(host, user, "supz.park", ["web"], {"user": "root", "real_user": "root", "command": "stop"})
    assert lying.returncode == 0, lying.stdout + lying.stderr
    last = host.audit_lines()[-1]
    assert (last["user"], last["real_user"]) == (user, user)
    sudo_claim = host.run("supzcli", "start", "web", user=user)  # SUDO_USER below is only a claim
    assert sudo_claim.returncode == 0, sudo_claim.stdout + sudo_claim.stderr
    claimed = claiming_sudo_user(host, "someone", "stop", "web", user=user)
    assert claimed.returncode == 0, claimed.stdout + claimed.stderr
    assert host.audit_lines()[-1]["real_user"] == user


def test_root_keeps_its_sudo_user(host: SupzHost) -> None:
    host.add("web", sleep_program("web"))
    done = claiming_sudo_user(host, "alice", "stop", "web")
    assert done.returncode == 0, done.stdout + done.stderr
    last = host.audit_lines()[-1]
    assert (last["user"], last["real_user"]) == ("root", "alice")


def test_stock_stop_parks_and_stock_start_and_restart_bring_it_back(guarded: tuple[SupzHost, str]) -> None:
    host, user = guarded
    stopped = stock_ctl(host, user, "stop", "web")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert (host.paths.parked / "web.conf").exists() and not (host.paths.active / "web.conf").exists()
    assert "web:web" not in host.states()
    assert host.audit_lines()[-1]["user"] == user
    # Parked means it stays stopped when supervisord starts again.
    host.supz("down", check=True)
    host.supz("up", check=True)
    assert "web:web" not in host.states()
    started = stock_ctl(host, user, "start", "web")
    assert started.returncode == 0, started.stdout + started.stderr
    assert (host.paths.active / "web.conf").exists()
    assert host.states() == {"web:web": "RUNNING"}
    restarted = stock_ctl(host, user, "restart", "web")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert host.states() == {"web:web": "RUNNING"} and (host.paths.active / "web.conf").exists()


def test_mass_operations_need_the_confirmation_in_the_call(guarded: tuple[SupzHost, str]) -> None:
    host, user = guarded
    host.add("api", sleep_program("api"))
    stock = stock_ctl(host, user, "stop", "all")
    assert "refused" in stock.stdout + stock.stderr
    unconfirmed = raw_call(host, user, "supz.remove", ["api"], {"command": "remove"})
    assert unconfirmed.returncode == 1 and "confirm" in unconfirmed.stdout
    assert host.states() == {"api:api": "RUNNING", "web:web": "RUNNING"}
    confirmed = host.supzcli("stop", "all", "--yes", user=user)
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert host.states() == {}


def test_an_operator_reads_the_history_through_the_extension(guarded: tuple[SupzHost, str]) -> None:
    host, user = guarded
    assert host.supzcli("stop", "web", user=user).returncode == 0
    history = host.supz("registry", "history", user=user)
    assert history.returncode == 0, history.stderr
    assert f"{user}: stop web" in history.stdout


def test_the_web_ui_is_held_to_the_same_rules(guarded: tuple[SupzHost, str]) -> None:
    """supervisor's web UI calls the RPC interface directly, without XML-RPC: its stop parks too."""
    host, user = guarded
    script = textwrap.dedent(f"""
        import socket, time
        sock = socket.socket(socket.AF_UNIX)
        sock.connect("{host.paths.socket}")
        sock.sendall(b"GET /index.html?processname=web&action=stop HTTP/1.0\\r\\n\\r\\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        print(answer.split(b"\\r\\n", 1)[0].decode())
    """)
    done = host.run("python", "-c", script, user=user)
    assert done.returncode == 0 and " 30" in done.stdout, done.stdout + done.stderr  # a redirect to the status page
    host.wait_for(lambda: (host.paths.parked / "web.conf").exists(), what="web parked through the web UI")
    assert host.states() == {}
    assert host.audit_lines()[-1]["user"] == user
