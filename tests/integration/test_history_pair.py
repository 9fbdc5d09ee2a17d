"""One history on both hosts of a real pair (keepalived, supervisord, the syncer over ssh, in
network namespaces): a park's reason and the registry's history travel with the registry, survive
a failover, and merge without duplicates after a partition. Skipped, with the reason, where
namespaces cannot be made (not root) or keepalived or nft is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from supz.config import set_options
from tests.conftest import allow_changes_off_master, destroy_host, make_host, sleep_program
from tests.integration.test_keepalived import Node, configure, wait
from tests.integration.test_partition import cut, heal
from tests.netns import Lab, unavailable
from tests.synchelp import content, listing

REASON = unavailable() or next((f"{tool} is not installed" for tool in ("keepalived", "nft")
                                if shutil.which(tool) is None), None)
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"pair lab: {REASON}")

APPS = ("ha1", "ha2", "ha3")
WHY = "INC-42: payment timeouts"


@pytest.fixture
def pair() -> Iterator[tuple[Node, Node]]:
    """A (priority 150) MASTER running APPS, B (100) its BACKUP, in sync (subnets 10.214.N)."""
    with Lab(prefix="10.214", tag="s14") as lab:
        nodes: list[Node] = []
        try:
            for name in ("a", "b"):
                net = lab.add_host(name)
                nodes.append(Node(name, make_host("--ha", "--host", f"host-{name}", up=False, netns=net.netns), net))
            a, b = nodes
            keys = a.supz.root / "ssh"
            keys.mkdir()
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True)
            for node, other, priority in ((a, b, 150), (b, a, 100)):
                node.net.start_sshd(node.supz.root / "sshd", authorized_key=(keys / "id.pub").read_text())
                configure(node, other, f"{lab.prefix}.{lab.subnet}.100/24", priority, str(keys / "id"))
                set_options(node.supz.paths.config_file, "failover", {"flap_count": 50})
                node.supz.supz("role", "set", "BACKUP", check=True)
                node.supz.supz("up", check=True)
            allow_changes_off_master(a.supz)
            for name in APPS:
                a.supz.add(name, sleep_program(name))
            allow_changes_off_master(a.supz, False)
            a.start_keepalived()
            wait("A to be MASTER", lambda: a.role() == "MASTER" and running(a) == set(APPS))
            b.start_keepalived()
            wait("B to hold A's registry", lambda: b.role() == "BACKUP" and content(a.supz) == content(b.supz))
            yield a, b
        finally:
            for node in nodes:
                node.net.run(["nft", "delete", "table", "inet", "supzcut"])
                destroy_host(node.supz)


def running(node: Node) -> set[str]:
    try:
        return {spec.split(":")[0] for spec, state in node.supz.states().items() if state == "RUNNING"}
    except Exception:  # noqa: BLE001 - supervisord busy or down: nothing known to run
        return set()


def history(node: Node, *args: str) -> list[dict]:  # type: ignore[type-arg]
    done = node.supz.supz("registry", "history", "-n", "0", "--json", *args, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def in_sync(a: Node, b: Node) -> bool:
    try:
        return content(a.supz) == content(b.supz) and history(a) == history(b)
    except Exception:  # noqa: BLE001 - mid-swap
        return False


def test_a_reason_and_the_history_follow_the_registry_through_failover_and_partition(
        pair: tuple[Node, Node]) -> None:
    a, b = pair
    exported = a.supz.root / "start.supz.json.gz"
    a.supz.supz("registry", "export", "-o", str(exported), check=True)
    a.supz.supzcli("stop", "ha1", "-m", WHY, check=True)
    wait("B to hold the park", lambda: in_sync(a, b))

    # Fail over: B shows who parked ha1 and why, and the same history as A.
    a.stop_keepalived()
    wait("B to be MASTER", lambda: b.role() == "MASTER" and running(b) == {"ha2", "ha3"}, timeout=30)
    status = b.supz.supzcli("status", "ha1")
    assert status.returncode == 3 and "PARKED by " in " ".join(status.stdout.split()) and f"({WHY})" in status.stdout
    listed = [line for line in b.supz.supz("registry", "list").stdout.splitlines() if line.startswith("ha1 ")]
    assert listed and f"({WHY})" in listed[0]
    seen = history(a, "--app", "ha1")
    assert seen == history(b, "--app", "ha1") and [h["op"] for h in seen] == ["add", "park"]
    assert seen[-1]["reason"] == WHY

    # A comes back, then a partition: each side parks one application with its own reason.
    a.start_keepalived()
    wait("one MASTER, one registry", lambda: [a.role(), b.role()].count("MASTER") == 1 and in_sync(a, b), timeout=30)
    cut(a, b)
    wait("both hosts MASTER", lambda: a.role() == "MASTER" and b.role() == "MASTER", timeout=30)
    a.supz.supzcli("stop", "ha2", "-m", "on A", check=True)
    b.supz.supzcli("stop", "ha3", "-m", "on B", check=True)
    heal(a, b)
    wait("one MASTER and one merged registry", lambda: [a.role(), b.role()].count("MASTER") == 1 and in_sync(a, b),
         timeout=40)
    merged = history(a)
    ids = [line["id"] for line in merged]
    assert len(ids) == len(set(ids)), "no line twice"
    for app, why in (("ha2", "on A"), ("ha3", "on B")):
        lines = history(a, "--app", app)
        assert lines == history(b, "--app", app)
        assert [line.get("reason") for line in lines if line["op"] == "park"] == [why]
    assert any(line["op"] == "merge" for line in merged)
    for node in (a, b):
        listing = node.supz.supz("registry", "list").stdout
        assert "(on A)" in listing and "(on B)" in listing and f"({WHY})" in listing

    # An import is refused on the BACKUP, and on the MASTER it is one change that reaches the peer.
    master, standby = (a, b) if a.role() == "MASTER" else (b, a)
    before = content(standby.supz)
    refused = standby.supz.supz("registry", "import", str(exported))
    assert refused.returncode == 4 and "MASTER" in refused.stderr and content(standby.supz) == before
    dry = master.supz.supz("registry", "import", "--dry-run", str(exported), check=True)
    assert [line for line in dry.stdout.splitlines() if line.startswith("ha")] == [
        "ha1: unpark", "ha2: unpark", "ha3: unpark"]
    master.supz.supz("registry", "import", str(exported), check=True)
    assert running(master) == set(APPS)
    wait("the import to reach the standby", lambda: in_sync(a, b))
    assert history(standby)[-1]["command"] == "registry import"

    # Bulk admission on the MASTER: 1000 program files in one call, one generation, all RUNNING,
    # and the standby holds them (and the one history line) right after.
    folder = master.supz.root / "bulk"
    folder.mkdir()
    names = [f"bulk{n:04d}" for n in range(1000)]
    for name in names:
        (folder / f"{name}.conf").write_text(sleep_program(name), encoding="utf-8")
    generation = generation_of(master)
    added = master.supz.supz("registry", "add", str(folder), timeout=300)
    assert added.returncode == 0 and "1000 of 1000 loaded and RUNNING" in added.stdout, added.stdout + added.stderr
    assert generation_of(master) == generation + 1 and set(names) <= running(master)
    wait("the 1000 to reach the standby", lambda: in_sync(a, b), timeout=60)
    assert generation_of(standby) == generation + 1 and running(standby) == set()


def generation_of(node: Node) -> int:
    return int(listing(node.supz)["generation"])
