"""The Pacemaker pieces that need no cluster: meta-data, timing, the CIB snippet, the agent's
script, the [ha] manager setting, and pull-before-activate with several peers."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from supz.config import load_config, read_config
from supz.errors import ConfigError, PeerUnreachable
from supz.failover.settings import FailoverSettings
from supz.pacemaker import agent as ocf
from supz.pacemaker.cib import Snippet, render_cib
from supz.pacemaker.script import agent_script, install_agent
from supz.paths import HostPaths

DTD = Path("/usr/share/resource-agents/ra-api-1.dtd")


def test_timeouts_grow_with_the_program_count() -> None:
    small, large = ocf.agent_timing(FailoverSettings(), 0), ocf.agent_timing(FailoverSettings(), 2000)
    assert (small.start, small.stop, small.monitor) == (63, 60, 20)
    assert large.start > small.start and large.stop > small.stop and large.monitor > small.monitor


def test_meta_data_is_valid_ra_api_xml() -> None:
    text = ocf.meta_data(ocf.agent_timing(FailoverSettings(), 1000))
    root = ET.fromstring(text)
    assert root.get("name") == "registry"
    actions = {a.get("name"): a.get("timeout") for a in root.iter("action")}
    assert actions["start"] == "123s" and set(actions) >= {"start", "stop", "monitor", "validate-all", "meta-data"}
    assert [p.get("name") for p in root.iter("parameter")] == ["root", "supz"]
    if DTD.exists() and shutil.which("xmllint"):
        done = subprocess.run(["xmllint", "--noout", "--dtdvalid", str(DTD), "-"], input=text, text=True,
                              capture_output=True)
        assert done.returncode == 0, done.stderr


def test_the_cib_snippet_colocates_and_orders_the_vip_after_the_applications() -> None:
    snippet = Snippet("ga", "/srv/ga", "/usr/bin/supz", "10.0.0.100/24", "eth1", ocf.agent_timing(FailoverSettings(), 0))
    root = ET.fromstring(render_cib(snippet))
    apps, vip = root.findall("resources/primitive")
    assert (apps.get("provider"), apps.get("type"), vip.get("type")) == ("supz", "registry", "IPaddr2")
    params = {nv.get("name"): nv.get("value") for nv in vip.iter("nvpair")}
    assert params == {"ip": "10.0.0.100", "cidr_netmask": "24", "nic": "eth1"}
    assert {nv.get("name"): nv.get("value") for nv in apps.find("instance_attributes").iter("nvpair")} == {  # type: ignore[union-attr]
        "root": "/srv/ga", "supz": "/usr/bin/supz"}
    colocation = root.find("constraints/rsc_colocation")
    order = root.find("constraints/rsc_order")
    assert colocation is not None and (colocation.get("rsc"), colocation.get("with-rsc")) == ("ga-vip", "ga")
    assert order is not None and (order.get("first"), order.get("then")) == ("ga", "ga-vip")
    assert ET.fromstring(render_cib(snippet, "resources")).tag == "resources"
    with pytest.raises(ConfigError, match="not an address"):
        render_cib(Snippet("ga", "/", "/usr/bin/supz", "10.0.0.300/24", "", snippet.timing))
    with pytest.raises(ConfigError, match="invalid resource id"):
        render_cib(Snippet("g a", "/", "/usr/bin/supz", "", "", snippet.timing))


def test_the_agent_script_runs_the_named_supz(tmp_path: Path) -> None:
    fake = tmp_path / "my supz" / "supz"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "$@"\nexit 7\n')
    fake.chmod(0o755)
    target = install_agent(tmp_path / "ocf", str(fake))
    assert target.stat().st_mode & 0o777 == 0o755
    assert agent_script("/usr/bin/supz").startswith("#!/bin/sh\n")
    done = subprocess.run([str(target), "monitor"], capture_output=True, text=True, env={"OCF_RESKEY_root": "/srv/ga"})
    assert (done.returncode, done.stdout) == (7, "--root /srv/ga pacemaker agent monitor\n")
    done = subprocess.run([str(target)], capture_output=True, text=True, env={})
    assert done.stdout == "--root / pacemaker agent usage\n"
    done = subprocess.run([str(target), "monitor"], capture_output=True, text=True,
                          env={"OCF_RESKEY_supz": str(tmp_path / "none")})
    assert done.returncode == ocf.Ocf.ERR_INSTALLED and "is not installed" in done.stderr


def test_the_manager_setting(tmp_path: Path) -> None:
    conf = tmp_path / "supz.conf"
    conf.write_text("[ha]\nenabled = yes\nmanager = Pacemaker\n")
    assert load_config(read_config(conf)).manager == "pacemaker"
    conf.write_text("[ha]\nmanager = corosync\n")
    with pytest.raises(ConfigError, match=r"\[ha\] manager = corosync: expected one of keepalived, pacemaker"):
        load_config(read_config(conf))


def test_monitor_and_stop_on_a_root_without_supz(tmp_path: Path) -> None:
    paths = HostPaths(tmp_path / "nothing")
    assert ocf.monitor(paths).code is ocf.Ocf.ERR_INSTALLED
    assert ocf.start(paths).code is ocf.Ocf.ERR_INSTALLED
    assert ocf.stop(paths).code is ocf.Ocf.SUCCESS  # nothing of supz can run there


def test_pull_waits_for_a_silent_peer_that_may_be_newer_still(paths: HostPaths, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Three hosts: b answers newer at once, c is slow and newer still: c's registry is pulled."""
    from supz.failover import pull
    from supz.sync import peers
    from supz.sync.peers import PeerView, PullResult

    rounds = [[PeerView("b", True, 5), PeerView("c", False, error="timeout")],
              [PeerView("b", True, 5), PeerView("c", True, 9)]]
    monkeypatch.setattr(peers, "peer_generations", lambda _paths: rounds.pop(0))
    monkeypatch.setattr(peers, "pull_from", lambda _paths, peer: PullResult(peer, "pulled", 0, {"b": 5, "c": 9}[peer]))
    monkeypatch.setattr(pull, "RETRY_PAUSE", 0.01)
    monkeypatch.setattr(pull.Registry, "generation", property(lambda self: 0))
    assert pull.pull_if_newer(paths, budget=3.0).startswith("pulled generation 9 from c")

    # c stays silent past the budget: the newest that answered (b) is pulled.
    monkeypatch.setattr(peers, "peer_generations",
                        lambda _paths: [PeerView("b", True, 5), PeerView("c", False, error="timeout")])
    assert pull.pull_if_newer(paths, budget=0.05).startswith("pulled generation 5 from b")

    # the newest fails while pulled: the next newest is taken.
    def flaky(_paths, peer):  # type: ignore[no-untyped-def]
        if peer == "c":
            raise PeerUnreachable("c went away", thing="c")
        return PullResult(peer, "pulled", 0, 5)
    monkeypatch.setattr(peers, "peer_generations", lambda _paths: [PeerView("b", True, 5), PeerView("c", True, 9)])
    monkeypatch.setattr(peers, "pull_from", flaky)
    assert pull.pull_if_newer(paths, budget=0.05).startswith("pulled generation 5 from b")


@pytest.mark.parametrize("manager", ["keepalived", "pacemaker"])
def test_only_keepalived_transitions_feed_the_damping(paths: HostPaths, monkeypatch, manager: str) -> None:  # type: ignore[no-untyped-def]
    """Under Pacemaker, migration-threshold and failure-timeout damp; supz's hold-down and flapping
    freeze (made for keepalived's check) stay out of the way."""
    from supz.failover import transitions

    paths.config_file.write_text(f"[ha]\nenabled = yes\nmanager = {manager}\n")
    calls = []
    monkeypatch.setattr(transitions, "after_transition", lambda *args: calls.append(args) or transitions.read_damping(paths))
    transitions.apply(paths, "MASTER", "h")  # no supervisord here: the transition fails, then damping or not
    assert bool(calls) is (manager == "keepalived")
