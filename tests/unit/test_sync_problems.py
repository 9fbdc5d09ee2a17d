"""What `supz doctor` and `supz status --cluster` report about the pair's registries, on fakes:
a blocked or lagging peer, and what was set aside until someone reviewed it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from supz.errors import UnknownEntry
from supz.paths import HostPaths
from supz.sync import aside, lineage
from supz.sync.problems import sync_problems
from supz.sync.state import PeerStatus, SyncStatus


def status(**peer: object) -> SyncStatus:
    return SyncStatus(host="a", pid=os.getpid(), role="MASTER", local_generation=7,
                      peers=[PeerStatus(peer="root@b", transport="ssh", **peer)])  # type: ignore[arg-type]


def test_a_quiet_pair_has_no_problem(paths: HostPaths) -> None:
    assert sync_problems(paths, status(state="in sync", reachable=True, peer_generation=7)) == []


def test_a_blocked_peer_is_named_with_its_cure(paths: HostPaths) -> None:
    found = sync_problems(paths, status(blocked="unrelated", reachable=True, peer_generation=0,
                                        last_error="b has no state in common: `supz sync resolve --take a`"))
    assert len(found) == 1 and "root@b" in found[0] and "supz sync resolve --take a" in found[0]


def test_a_lagging_peer_is_a_problem_only_past_the_tolerance(paths: HostPaths) -> None:
    now = time.time()
    lagging = status(reachable=True, peer_generation=5, behind_since=now - 60, state="error: storage")
    assert "generation 5, this host 7, for 60 s" in sync_problems(paths, lagging, now=now)[0]
    assert sync_problems(paths, status(reachable=True, peer_generation=5, behind_since=now - 1), now=now) == []
    # Unreachable is the cluster view's warning (exit 6), not this error.
    assert sync_problems(paths, status(reachable=False, peer_generation=5, behind_since=now - 60), now=now) == []


def test_a_backup_reports_nothing_of_its_idle_syncer(paths: HostPaths) -> None:
    idle = status(blocked="unrelated", reachable=True)
    idle.role = "BACKUP"
    assert sync_problems(paths, idle) == []


def test_a_set_aside_item_is_a_problem_until_reviewed(paths: HostPaths) -> None:
    item = aside.add(paths, "merge", ["web"], "edited on both: b's newer content kept, a's set aside", where="/x")
    found = sync_problems(paths, status(state="in sync", reachable=True, peer_generation=7))
    assert len(found) == 1 and "web" in found[0] and f"supz sync set-aside --reviewed {item.id}" in found[0]
    with pytest.raises(UnknownEntry):
        aside.mark_reviewed(paths, ["nope"])
    assert [i.id for i in aside.mark_reviewed(paths, [item.id])] == [item.id]
    assert sync_problems(paths, status(state="in sync", reachable=True, peer_generation=7)) == []
    assert aside.load(paths)[0].reviewed


def test_lineage_keeps_the_manifests_of_shared_states(paths: HostPaths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"generation": 3, "entries": {"web": {"state": "active", "sha256": "x"}}}')
    from supz.sync.manifests import read_manifest

    state = read_manifest(manifest).state
    lineage.record(paths, *state, manifest=manifest, peer="root@b")
    assert lineage.load(paths)[-1] == state and lineage.shared_with(paths, "root@b") == state
    kept = lineage.base(paths, state)
    assert kept is not None and kept.entries == {"web": {"state": "active", "sha256": "x"}}
    assert lineage.base(paths, (3, "other")) is None


def test_a_peer_whose_status_reports_drift_or_a_dead_supervisord_is_not_unreachable(tmp_path: Path) -> None:
    """`supz status --json` on a peer exits 1 on drift (an application FATAL there) and 7 with its
    supervisord down, its view on stdout: `status --cluster` and a switchover asked on the standby
    read that view; only another exit (ssh's 255) is an unreachable peer."""
    import json as _json
    import sys

    from supz.cluster import peer_status
    from supz.sync.settings import SyncSettings, parse_peer

    fake = tmp_path / "ssh"
    view = {"host": "host-b", "role": "MASTER", "drift": [{"name": "boom", "state": "FATAL", "why": "exited"}]}
    for code, want in ((0, view), (1, view), (7, view), (255, None)):
        fake.write_text(f"#!{sys.executable}\nimport sys\nprint({_json.dumps(_json.dumps(view))})\n"
                        f"print('ssh: connect refused', file=sys.stderr)\nsys.exit({code})\n")
        fake.chmod(0o755)
        got = peer_status(parse_peer("root@10.0.0.2:/srv/b"), SyncSettings(ssh=str(fake)))
        if want is None:
            assert got == {"host": "root@10.0.0.2:/srv/b", "error": "ssh: connect refused"}, got
        else:
            assert got == want, (code, got)
