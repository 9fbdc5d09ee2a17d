"""The syncer over its real transports: the standby in a network namespace, reached over ssh
(sshd in the namespace) or through an rsync daemon (in the namespace), the master in the test's
own namespace. Skipped, with the reason, where network namespaces cannot be made (not root).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from supz.registry import Registry, Who
from supz.sync import layout
from tests.conftest import SupzHost, sleep_program
from tests.netns import Daemon, Lab, NetnsHost, unavailable
from tests.synchelp import (
    configure_sync,
    content,
    converge,
    exercise_changes,
    listing,
    master_and_backup,
    peer_status,
    set_peers,
    sync_log,
)

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"network namespaces: {REASON}")

WHO = Who("tester", "tester", "test")


@dataclass
class Pair:
    master: SupzHost
    standby: SupzHost
    netns: NetnsHost
    receiver: Daemon


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as made:
        yield made


@pytest.fixture
def hosts() -> Iterator[tuple[SupzHost, SupzHost]]:
    with master_and_backup() as pair:
        yield pair


@pytest.fixture
def over_ssh(lab: Lab, hosts: tuple[SupzHost, SupzHost]) -> Pair:
    master, standby = hosts
    b = lab.add_host("b")
    keys = master.root / "ssh"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True)
    sshd = b.start_sshd(standby.root / "sshd", authorized_key=(keys / "id.pub").read_text())
    options = (f"-i {keys / 'id'} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
               "-o BatchMode=yes -o ConnectTimeout=3 -o ServerAliveInterval=1 -o ServerAliveCountMax=3")
    configure_sync(master, f"root@{b.address}:{standby.root}", ssh_options=options)
    master.wait_for(lambda: peer_status(master).get("state") == "in sync", what="the first full resync over ssh")
    return Pair(master, standby, b, sshd)


def test_every_kind_of_change_reaches_the_standby_over_ssh(over_ssh: Pair) -> None:
    exercise_changes(over_ssh.master, over_ssh.standby)
    assert over_ssh.standby.states() == {}
    status = peer_status(over_ssh.master)
    assert status["transport"] == "ssh" and status["peer_host"] == over_ssh.standby.root.name


def test_a_standby_that_was_down_catches_up(over_ssh: Pair) -> None:
    master, standby = over_ssh.master, over_ssh.standby
    # The receiving side goes away: sshd, the agent, every session.
    over_ssh.netns.kill_all()
    registry = Registry(master.paths, host=master.root.name)
    for i in range(100):
        registry.add(f"app{i % 30}", sleep_program(f"app{i % 30}", extra=f"; change {i}"), who=WHO, replace=True)
    master.wait_for(lambda: peer_status(master).get("state") == "unreachable", what="the syncer to notice")
    status = peer_status(master)
    assert status["pending"] == 30 and status["lag"] > 0 and "unreachable" in status["last_error"]
    assert content(standby)[0] == 0
    over_ssh.receiver.start()
    converge(master, standby, "the standby to catch up with 100 changes")
    master.wait_for(lambda: peer_status(master).get("state") == "in sync", what="in sync again")
    status = peer_status(master)
    assert status["last_full_reason"] == "peer answered again" and status["pending"] == 0
    assert master.supz("sync", "check").returncode == 0


def test_a_master_merges_a_newer_standby_over_ssh(over_ssh: Pair) -> None:
    master, standby = over_ssh.master, over_ssh.standby
    Registry(standby.paths, host=standby.root.name).add("newer", sleep_program("newer"), who=WHO)
    Registry(standby.paths, host=standby.root.name).add("newest", sleep_program("newest"), who=WHO)
    master.add("stale", sleep_program("stale"))
    converge(master, standby, "the merged registry on both sides")
    assert sorted(listing(standby)["active"]) == ["newer", "newest", "stale"]
    assert listing(standby)["generation"] == 3
    assert master.supz("sync", "check").returncode == 0
    assert "merged with" in sync_log(master)


@pytest.fixture
def over_rsyncd(lab: Lab, hosts: tuple[SupzHost, SupzHost]) -> Pair:
    master, standby = hosts
    b = lab.add_host("b")
    secrets = standby.paths.etc / "rsyncd.secrets"
    secrets.write_text("supz:right-password\n")
    os.chmod(secrets, 0o600)
    configure_sync(standby, "", rsyncd_address=b.address, rsyncd_secrets_file=secrets,
                   rsyncd_hosts_allow=f"{lab.gateway}")
    standby.supz("sync", "rsyncd-conf", "--write", check=True)
    rsyncd = b.start_daemon(["rsync", "--daemon", "--no-detach", f"--config={standby.paths.rsyncd_conf}"],
                            port=873, log=standby.paths.log / "rsyncd.out")
    return Pair(master, standby, b, rsyncd)


def write_password(master: SupzHost, password: str) -> Path:
    path = master.root / "rsync.password"
    path.write_text(password + "\n")
    os.chmod(path, 0o600)
    return path


def test_wrong_rsync_credentials_are_a_clear_error_and_write_nothing(over_rsyncd: Pair) -> None:
    master, standby = over_rsyncd.master, over_rsyncd.standby
    master.add("web", sleep_program("web"))
    password = write_password(master, "wrong-password")
    configure_sync(master, f"rsync://supz@{over_rsyncd.netns.address}/supz", password_file=password)
    master.wait_for(lambda: "credentials" in peer_status(master).get("last_error", ""), what="the auth error")
    status = peer_status(master)
    assert status["state"] == "error: auth" and "auth failed on module" in status["last_error"]
    shown = master.supz("sync", "status").stdout
    assert "the rsync daemon refused the credentials" in shown
    assert content(standby) == (0, {})
    assert os.listdir(layout.incoming_dir(standby.paths)) == []
    # With the right password the same syncer gets through (through the daemon's commit hook).
    write_password(master, "right-password")
    converge(master, standby, "the push through the rsync daemon")
    assert listing(standby)["active"] == ["web"]
    master.add("api", sleep_program("api"))
    converge(master, standby, "a second push through the rsync daemon")
    assert master.supz("sync", "check").returncode == 0


def test_an_unknown_module_is_a_clear_error(over_rsyncd: Pair) -> None:
    master = over_rsyncd.master
    configure_sync(master, f"rsync://supz@{over_rsyncd.netns.address}/nosuchmodule",
                   password_file=write_password(master, "right-password"))
    master.wait_for(lambda: "refused the request" in peer_status(master).get("last_error", ""),
                    what="the unknown-module error")
    set_peers(master, f"rsync://supz@{over_rsyncd.netns.address}/supz")
    master.add("web", sleep_program("web"))
    converge(master, over_rsyncd.standby, "the push once the module is right")
