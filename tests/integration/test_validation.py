"""One bad file or one careless stop must not take a host (or the pair) down.

Malformed files dropped by hand into the registry are quarantined, never adopted, loaded or
pushed; supervisord starts whatever lies in the registry's folders; a registry program's
children stop with it. Processes are counted from /proc, not asked of supervisord.
"""

from __future__ import annotations

import itertools
import os

from tests.conftest import SupzHost, _processes, destroy_host, make_host
from tests.synchelp import configure_sync, content, in_sync, master_and_backup

MALFORMED = {
    "broken.conf": "[program:broken\ncommand = /bin/sleep 1000\n",
    "empty.conf": "",
    "named.conf": "[program:other]\ncommand = /bin/sleep 1000\n",
    "keyfirst.conf": "command = /bin/true\n[program:keyfirst]\ncommand = /bin/sleep 1000\n",
}
_marks = itertools.count(int.from_bytes(os.urandom(2), "big") * 10)


def program(name: str, command: str, extra: str = "") -> str:
    return f"[program:{name}]\ncommand = {command}\nstartsecs = 0\nstopwaitsecs = 5\n{extra}"


def copies(argv_text: str) -> int:
    """How many processes on this machine run exactly this command line (from /proc)."""
    return sum(1 for _pid, _ppid, cmd in _processes() if cmd.strip() == argv_text)


def unique_sleep() -> str:
    return f"/bin/sleep {700000 + next(_marks)}"


def quarantine_lines(text: str, filename: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("FAIL quarantined") and filename in line]


def test_malformed_files_never_take_the_pair_down() -> None:
    with master_and_backup() as (a, b):
        configure_sync(a, str(b.root))
        configure_sync(b, str(a.root))
        commands = {name: unique_sleep() for name in ("app1", "app2")}
        for name, command in commands.items():
            a.add(name, program(name, command))
        a.wait_for(lambda: in_sync(a, b), timeout=30, what="the standby in sync")
        generation = content(a)[0]

        for filename, text in MALFORMED.items():
            (a.paths.active / filename).write_text(text)
        doctor = a.supz("doctor")
        assert doctor.returncode == 1, doctor.stdout
        for filename in MALFORMED:
            assert len(quarantine_lines(doctor.stdout, filename)) == 1, (filename, doctor.stdout)
            assert not (a.paths.active / filename).exists()
        assert content(a)[0] == generation, "nothing adopted: the generation did not move"
        assert len([p for p in a.paths.quarantine.iterdir() if p.name.endswith(".why")]) == len(MALFORMED)
        assert {line["command"] for line in a.audit_lines()[-len(MALFORMED):]} == {"quarantine"}

        # supervisord starts again and runs every valid application, once.
        a.supz("down", check=True)
        a.supz("up", check=True)
        a.wait_for(lambda: all(copies(c) == 1 for c in commands.values()), what="the valid applications")

        # A failover: the new MASTER runs them, the old one none; the standby never saw a bad file.
        a.wait_for(lambda: in_sync(a, b), timeout=30, what="the standby in sync")
        a.supz("failover", "notify", "INSTANCE", "supz", "BACKUP", "100", "--wait", check=True)
        b.supz("failover", "notify", "INSTANCE", "supz", "MASTER", "100", "--wait", check=True)
        assert all(copies(c) == 1 for c in commands.values())
        assert set(b.states()) == {"app1:app1", "app2:app2"} and a.states() == {}
        for filename in MALFORMED:
            assert not (b.paths.active / filename).exists(), f"{filename} reached the standby"
        b.supz("down", check=True)
        restarted = b.supz("up")
        assert restarted.returncode == 0, restarted.stderr
        b.wait_for(lambda: all(copies(c) == 1 for c in commands.values()), what="the applications on b again")


def test_a_file_dropped_in_while_running_is_quarantined_by_update(host: SupzHost) -> None:
    command = unique_sleep()
    host.add("good", program("good", command))
    (host.paths.active / "broken.conf").write_text(MALFORMED["broken.conf"])
    update = host.supzcli("update")
    assert update.returncode == 0, update.stdout
    assert not (host.paths.active / "broken.conf").exists()
    assert host.audit_lines()[-1]["command"] == "quarantine" or any(
        line["command"] == "quarantine" for line in host.audit_lines())
    host.supz("down", check=True)
    host.supz("up", check=True)
    host.wait_for(lambda: copies(command) == 1, what="good running again")


def test_a_valid_hand_edit_is_adopted_and_an_invalid_one_is_not(host: SupzHost) -> None:
    first, second = unique_sleep(), unique_sleep()
    host.add("app", program("app", first))
    generation = content(host)[0]
    (host.paths.active / "app.conf").write_text("[program:app]\ncommand = /bin/sleep 1\nstartsecs = soon\n")
    doctor = host.supz("doctor")
    assert doctor.returncode == 1 and "app.conf: line 3" in doctor.stdout
    assert content(host)[0] == generation, "an invalid edit is not adopted"
    assert copies(first) == 1, "the running version keeps running"
    (host.paths.active / "app.conf").write_text(program("app", second))
    assert host.supz("doctor").returncode == 0
    assert content(host)[0] == generation + 1


def test_up_shows_supervisords_own_error() -> None:
    host = make_host(up=False)
    try:
        (host.paths.host_programs / "bad.conf").write_text("[program:bad\n")
        failed = host.supz("up")
        assert failed.returncode != 0
        assert "supervisord did not start: Error:" in failed.stderr and "For help" not in failed.stderr
    finally:
        destroy_host(host)


def test_a_stop_leaves_no_child_behind(host: SupzHost) -> None:
    child = unique_sleep()
    host.add("wrapper", program("wrapper", f"/bin/sh -c '{child} & wait'"))
    host.wait_for(lambda: copies(child) == 1, what="the wrapped child")
    host.supzcli("stop", "wrapper", check=True)
    host.wait_for(lambda: copies(child) == 0, what="the child gone with its wrapper")


def test_a_file_that_says_otherwise_keeps_supervisors_default(host: SupzHost) -> None:
    child = unique_sleep()
    host.add("plain", program("plain", f"/bin/sh -c '{child} & wait'", extra="stopasgroup = false\n"))
    host.wait_for(lambda: copies(child) == 1, what="the wrapped child")
    host.supzcli("stop", "plain", check=True)
    assert copies(child) == 1, "stopasgroup = false: only the wrapper is signalled"
    for pid, _ppid, cmd in list(_processes()):
        if cmd.strip() == child:
            os.kill(pid, 9)


def test_a_program_killed_by_hand_is_drift(host: SupzHost) -> None:
    command = unique_sleep()
    host.add("once", program("once", command, extra="autorestart = false\n"))
    host.wait_for(lambda: copies(command) == 1, what="the application")
    assert host.supz("doctor").returncode == 0
    for pid, _ppid, cmd in list(_processes()):
        if cmd.strip() == command:
            os.kill(pid, 9)
    host.wait_for(lambda: host.states().get("once:once") == "EXITED", what="supervisord to see it exit")
    doctor = host.supz("doctor")
    assert doctor.returncode == 1 and "FAIL drift once: EXITED" in doctor.stdout
    status = host.supz("status")
    assert status.returncode == 1 and "drift: once EXITED" in status.stderr
    assert host.supzcli("status").returncode == 3


def test_a_stock_stop_stays_stopped_across_a_failover() -> None:
    host = make_host("--ha")
    try:
        host.supz("failover", "notify", "INSTANCE", "supz", "MASTER", "100", "--wait", check=True)
        command = unique_sleep()
        host.add("web", program("web", command))
        host.wait_for(lambda: copies(command) == 1, what="web")
        stock = host.run("supervisorctl", "-c", str(host.paths.supervisord_conf), "stop", "web")
        assert stock.returncode == 0, stock.stdout + stock.stderr
        assert (host.paths.parked / "web.conf").exists()
        for state in ("BACKUP", "MASTER"):
            host.supz("failover", "notify", "INSTANCE", "supz", state, "100", "--wait", check=True)
        assert copies(command) == 0 and host.supz("doctor").returncode == 0
    finally:
        destroy_host(host)


def test_a_program_that_cannot_start_is_an_error_with_its_reason(host: SupzHost) -> None:
    path = host.root / "ghost.conf"
    path.write_text(program("ghost", "/nonexistent/bin/ghost", extra="startretries = 0\n"))
    added = host.supz("registry", "add", str(path))
    assert added.returncode != 0, added.stdout + added.stderr
    assert "ghost" in added.stdout + added.stderr and "/nonexistent/bin/ghost" in added.stdout + added.stderr
    host.supzcli("stop", "ghost")
    started = host.supzcli("start", "ghost")
    assert started.returncode != 0 and "ERROR" in started.stdout, started.stdout


LISTENER = """\
import sys
while True:
    sys.stdout.write("READY\\n"); sys.stdout.flush()
    header = dict(part.split(":") for part in sys.stdin.readline().split())
    sys.stdin.read(int(header["len"]))
    with open(sys.argv[1], "a") as seen:
        seen.write(header["eventname"] + "\\n")
    sys.stdout.write("RESULT 2\\nOK"); sys.stdout.flush()
"""


def test_event_listeners_are_host_local_and_groups_are_refused_with_advice(host: SupzHost) -> None:
    import sys

    script, seen = host.root / "listener.py", host.root / "events.txt"
    script.write_text(LISTENER)
    (host.paths.host_programs / "crashwatch.conf").write_text(
        f"[eventlistener:crashwatch]\ncommand = {sys.executable} {script} {seen}\nevents = PROCESS_STATE_EXITED\n")
    assert "crashwatch: added process group" in host.supzcli("update").stdout
    command = unique_sleep()
    host.add("app", program("app", command, extra="autorestart = false\n"))
    for pid, _ppid, cmd in list(_processes()):
        if cmd.strip() == command:
            os.kill(pid, 9)
    host.wait_for(lambda: seen.exists() and "PROCESS_STATE_EXITED" in seen.read_text(), what="the listener's event")
    for section, advice in (("eventlistener:crashwatch", "host.d"), ("group:apps", "one application per file")):
        path = host.root / "crashwatch.conf"
        path.write_text(f"[{section}]\ncommand = /bin/true\nprograms = app\n")
        refused = host.supz("registry", "add", str(path))
        assert refused.returncode == 2 and advice in refused.stderr, refused.stderr


def test_init_again_stops_an_older_install_including_the_registry() -> None:
    host = make_host(up=False)
    try:
        conf = host.paths.supervisord_conf
        old = f"{host.paths.active}/*.conf"
        conf.write_text(conf.read_text().replace(f"files = {host.paths.host_programs}/*.conf",
                                                 f"files = {host.paths.host_programs}/*.conf {old}"))
        doctor = host.supz("doctor")
        assert doctor.returncode == 1 and f"includes {old}" in doctor.stdout
        again = host.supz("init")
        assert again.returncode == 0 and f"no longer includes {old}" in again.stdout
        assert old not in conf.read_text()
        assert "does not include the registry folder" in host.supz("doctor").stdout
    finally:
        destroy_host(host)
