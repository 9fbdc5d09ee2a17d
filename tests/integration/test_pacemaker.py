"""ocf:supz:registry under real Pacemaker: ocf-tester on a real supz host, then one 3-node Corosync +
Pacemaker cluster (tests/integration/pacemaker_lab.py) with two groups active-active, each a supz
root with its IPaddr2 VIP: kill -9 of a node, a rejoin and `crm_resource --move`, a partitioned
node. Copies of applications are counted from /proc, node by node. The tests of the cluster run in
order on the one cluster the module brings up. Times are printed (run with -s to see them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from supz.config import set_options
from supz.role import read_role
from tests.conftest import destroy_host, make_host, short_tempdir, sleep_program
from tests.integration.pacemaker_lab import NODES, PacemakerLab, unavailable

REASON = unavailable()
needs_lab = pytest.mark.skipif(REASON is not None, reason=f"Pacemaker lab: {REASON}")

GROUPS = {"ga": ("ga1", "ga2"), "gb": ("gb1",)}
HOME = {"ga": 1, "gb": 2}  # where each group prefers to run first: active-active


def say(line: str) -> None:
    print(f"[pacemaker] {line}", flush=True)


def test_a_supervisord_starting_under_pacemaker_runs_nothing_until_the_agent_starts() -> None:
    """A MASTER role left by a crash is no claim under Pacemaker: the cluster may run the group
    elsewhere now. supervisord starts with none; the agent's start brings them back."""
    host = make_host("--ha", up=False)
    try:
        host.supz("role", "set", "MASTER", check=True)
        host.supz("up", check=True)
        host.add("app1", sleep_program("app1"))
        assert host.states() == {"app1:app1": "RUNNING"}
        host.supz("down", check=True)
        set_options(host.paths.config_file, "ha", {"manager": "pacemaker"})
        host.supz("up", check=True)
        assert host.states() == {} and read_role(host.paths) == "STOP"
        monitor = host.supz("pacemaker", "agent", "monitor")
        assert monitor.returncode == 7, monitor.stderr
        start = host.supz("pacemaker", "agent", "start")
        assert start.returncode == 0 and "STOP -> MASTER" in start.stderr, start.stderr
        assert host.states() == {"app1:app1": "RUNNING"}
    finally:
        destroy_host(host)


@needs_lab
def test_ocf_tester_passes_on_a_real_supz_host(traversable_venv: None) -> None:
    host = make_host("--ha", up=False)
    folder = short_tempdir("s17-ocf-")  # ocf-tester runs meta-data as nobody: a folder others may enter
    try:
        set_options(host.paths.config_file, "ha", {"manager": "pacemaker"})
        set_options(host.paths.config_file, "failover", {"changes_off_master": "yes"})
        host.supz("up", check=True)
        host.add("app1", sleep_program("app1"))
        host.add("app2", sleep_program("app2", numprocs=2))
        host.supz("pacemaker", "install-agent", "--dir", str(folder), check=True)
        started = time.monotonic()
        done = subprocess.run(["ocf-tester", "-n", "s17-tester", "-o", f"root={host.root}", str(folder / "registry")],
                              capture_output=True, text=True, timeout=180)
        say(f"ocf-tester: {time.monotonic() - started:.2f} s")
        assert done.returncode == 0 and "failed" not in done.stdout, done.stdout + done.stderr
        assert host.states() == {}  # ocf-tester ends with a stop: nothing of the registry runs
    finally:
        destroy_host(host)
        shutil.rmtree(folder, ignore_errors=True)


# ---- the cluster -------------------------------------------------------------------------


def copies(lab: PacemakerLab, group: str, nodes: tuple[int, ...] = NODES) -> dict[int, dict[str, int]]:
    """node -> {application: live copies} of one group, from /proc (nodes that are down count none)."""
    return {n: dict(lab.programs(n, group)) for n in nodes}


def once_on(lab: PacemakerLab, group: str) -> int | None:
    """The node where every application of `group` runs exactly once, none running anywhere else."""
    seen = copies(lab, group)
    holders = [n for n, counts in seen.items() if counts]
    if len(holders) == 1 and seen[holders[0]] == {name: 1 for name in GROUPS[group]}:
        return holders[0]
    return None


def status(lab: PacemakerLab, n: int, group: str) -> dict:  # type: ignore[type-arg]
    return dict(json.loads(lab.supz(n, group, "status", "--json", check=False).stdout))


def generation(lab: PacemakerLab, n: int, group: str) -> int:
    return int(status(lab, n, group)["generation"])


def add_app(lab: PacemakerLab, n: int, group: str, name: str) -> None:
    program = lab.workdir / "apps" / f"{name}.conf"
    program.parent.mkdir(exist_ok=True)
    program.write_text(sleep_program(name))
    lab.supz(n, group, "registry", "add", str(program))


@pytest.fixture(scope="module")
def lab() -> Iterator[PacemakerLab]:
    started = time.monotonic()
    with PacemakerLab(groups=tuple(GROUPS)) as lab:
        for index, group in enumerate(GROUPS):
            for n in NODES:
                set_options(lab.root(n, group) / "etc/supz/supz.conf", "failover",
                            {"vip": f"{lab.vip(index)}/24", "interface": "eth0"})
        for n in NODES:
            lab.start(n)
        members = lab.wait_members(NODES)
        say(f"3 nodes online with quorum {members:.1f} s after their start")
        for group in GROUPS:
            for part in ("resources", "constraints"):
                snippet = lab.supz(1, group, "pacemaker", "render", "--id", group, "--part", part).stdout
                lab.x(1, ["cibadmin", "--modify", "--allow-create", "--scope", part, "--xml-pipe"], input=snippet,
                      check=True)
            lab.x(1, ["cibadmin", "--create", "--scope", "constraints", "--xml-text",
                      f'<rsc_location id="{group}-home" rsc="{group}" node="n{HOME[group]}" score="50"/>'], check=True)
        for group in GROUPS:
            lab.wait(f"{group} running on n{HOME[group]}", lambda g=group: lab.where(1, g) == [f"n{HOME[g]}"]
                     and status(lab, HOME[g], g)["role"] == "MASTER", 60)
            for name in GROUPS[group][:-1]:
                add_app(lab, HOME[group], group, name)
        say(f"cluster, resources and applications ready in {time.monotonic() - started:.1f} s")
        yield lab


@needs_lab
def test_two_groups_run_active_active_on_two_nodes(lab: PacemakerLab) -> None:
    for group, home in HOME.items():
        last = GROUPS[group][-1]
        add_app(lab, home, group, last)  # the last change: every peer must get it
        want = generation(lab, home, group)
        lab.wait(f"{group}'s registry on every node", lambda g=group, w=want: all(
            generation(lab, n, g) == w for n in NODES), 20)
        assert once_on(lab, group) == home
        assert lab.holds(home, lab.vip(list(GROUPS).index(group)))
    view = json.loads(lab.supz(1, "ga", "status", "--cluster", "--json", check=False).stdout)
    resources = {item["id"]: item for item in view["pacemaker"]["resources"]}
    assert resources["ga"]["nodes"] == ["n1"] and resources["ga"]["ours"] and resources["ga"]["root"] == "/srv/ga"
    assert resources["gb"]["nodes"] == ["n2"] and not resources["gb"]["ours"]
    assert view["pacemaker"]["quorum"] and not view["problems"], view["problems"]
    text = lab.supz(1, "ga", "status", "--cluster", check=False).stdout
    assert "pacemaker: quorum yes" in text and "(this root)" in text


@needs_lab
def test_kill_9_of_the_node_running_a_group_moves_it_alone(lab: PacemakerLab) -> None:
    """n1 (ga) powered off: ga runs on another node exactly once, with the newest registry; gb, on
    n2, is not touched (the same processes)."""
    newest = generation(lab, 1, "ga")
    gb_before = sorted(lab.program_pids(2, "gb"))
    started = time.monotonic()
    lab.kill(1)
    took = lab.wait("ga exactly once on n2 or n3", lambda: once_on(lab, "ga") in (2, 3), 60)
    owner = once_on(lab, "ga")
    assert owner is not None
    vip = lab.wait("ga's VIP on the new owner", lambda: lab.holds(owner, lab.vip(0)), 30)
    say(f"kill -9 of n1: ga running exactly once on n{owner} after {took:.1f} s, VIP after "
        f"{time.monotonic() - started:.1f} s (gen {newest}, VIP wait {vip:.1f} s)")
    assert generation(lab, owner, "ga") == newest
    assert sorted(lab.program_pids(2, "gb")) == gb_before
    for _ in range(10):  # and it stays so
        assert once_on(lab, "ga") == owner and once_on(lab, "gb") == 2
        time.sleep(0.2)


@needs_lab
def test_a_node_that_rejoins_activates_only_the_newest_registry_and_move(lab: PacemakerLab) -> None:
    """While n1 is down ga's registry changes; n1 comes back, runs nothing, and when ga is moved
    to it (`crm_resource --move`) it runs the newest registry, exactly once."""
    owner = once_on(lab, "ga")
    assert owner in (2, 3)
    add_app(lab, owner, "ga", "ga3")
    GROUPS["ga"] = (*GROUPS["ga"], "ga3")
    newest = generation(lab, owner, "ga")
    started = time.monotonic()
    lab.start(1)
    lab.wait_members(NODES)
    say(f"n1 rejoined in {time.monotonic() - started:.1f} s")
    assert copies(lab, "ga", (1,)) == {1: {}} and once_on(lab, "ga") == owner
    assert status(lab, 1, "ga")["role"] != "MASTER"
    started = time.monotonic()
    lab.x(owner, ["crm_resource", "--move", "--resource", "ga", "--node", "n1"], check=True)
    try:
        took = lab.wait("ga exactly once on n1", lambda: once_on(lab, "ga") == 1, 60)
        lab.wait("ga's VIP on n1", lambda: lab.holds(1, lab.vip(0)) and not lab.holds(owner, lab.vip(0)), 30)
        say(f"crm_resource --move ga to n1: running there exactly once after {took:.1f} s, "
            f"VIP after {time.monotonic() - started:.1f} s")
        assert generation(lab, 1, "ga") == newest
        assert status(lab, owner, "ga")["role"] == "BACKUP"
    finally:
        lab.x(1, ["crm_resource", "--clear", "--resource", "ga"], check=True)


@needs_lab
def test_a_partitioned_node_stops_its_applications(lab: PacemakerLab) -> None:
    """n2 (gb) cut off: without quorum it stops gb; the majority starts it; ga (n1) is untouched."""
    assert once_on(lab, "gb") == 2
    ga_before = sorted(lab.program_pids(1, "ga"))
    started = time.monotonic()
    lab.isolate(2)
    try:
        stopped = lab.wait("gb stopped on the partitioned n2", lambda: not copies(lab, "gb", (2,))[2], 60)
        lab.wait("gb exactly once on n1 or n3", lambda: once_on(lab, "gb") in (1, 3), 60)
        say(f"partition of n2: gb stopped there after {stopped:.1f} s, running exactly once on "
            f"n{once_on(lab, 'gb')} after {time.monotonic() - started:.1f} s")
        assert not lab.holds(2, lab.vip(1))
        assert sorted(lab.program_pids(1, "ga")) == ga_before
    finally:
        lab.isolate(2, cut=False)
    healed = lab.wait_members(NODES)
    say(f"partition healed: 3 nodes online with quorum after {healed:.1f} s")
    assert once_on(lab, "gb") in (1, 3) and once_on(lab, "ga") == 1

