"""Twenty operators at once: the registry stays consistent and every command has one audit line."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor

from supz.registry import Registry, Who
from tests.conftest import SupzHost, sleep_program

APPS = ["app1", "app2", "app3", "app4"]


def test_twenty_concurrent_stop_start_commands_leave_a_consistent_registry(host: SupzHost) -> None:
    for name in APPS:
        host.add(name, sleep_program(name))
    audit_before = len(host.audit_lines())
    generation_before = json.loads(host.paths.manifest.read_text())["generation"]
    rng = random.Random(20)
    commands = [(rng.choice(["stop", "start"]), rng.choice(APPS)) for _ in range(20)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda c: host.supzcli(c[0], c[1]), commands))
    for (verb, name), result in zip(commands, results):
        assert result.returncode == 0, (verb, name, result.stdout, result.stderr)

    # Exactly one audit line per command, each naming its command.
    lines = host.audit_lines()[audit_before:]
    assert sorted((line["command"], tuple(line["args"])) for line in lines) == sorted(
        (verb, (name,)) for verb, name in commands
    )
    # Generations: each change took its own step, none was lost or taken twice.
    steps = [(line["generation_before"], line["generation_after"]) for line in lines
             if line["generation_after"] != line["generation_before"]]
    assert all(after == before + 1 for before, after in steps)
    afters = sorted(after for _, after in steps)
    assert afters == list(range(generation_before + 1, generation_before + 1 + len(steps)))
    manifest = json.loads(host.paths.manifest.read_text())
    assert manifest["generation"] == generation_before + len(steps)

    # Files, manifest and supervisord agree.
    registry = Registry(host.paths, host="check")
    assert registry.recover(who=Who()) is None  # nothing to reconcile
    active = set(registry.active_names())
    parked = set(registry.parked_names())
    assert active | parked == set(APPS) and not active & parked
    assert {n for n, e in manifest["entries"].items() if e["state"] == "active"} == active
    states = host.states()
    assert {spec.split(":")[0] for spec in states} == active
    assert all(state == "RUNNING" for state in states.values())
