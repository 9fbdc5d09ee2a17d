"""The registry's memory on one real host: stop reasons, bulk admission, export and import,
automatic backups, restore and retention, damaged archives (real supervisord, real CLIs)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from supz.config import set_options
from tests.conftest import SupzHost, destroy_host, make_host, sleep_program
from tests.synchelp import content, listing

REASON = "INC-42: payment timeouts"


@pytest.fixture
def strict() -> Iterator[SupzHost]:
    """A standalone host whose policy requires a reason to stop, keeping 4 backups."""
    h = make_host(up=False)
    try:
        set_options(h.paths.config_file, "shell", {"require_reason": "yes"})
        set_options(h.paths.config_file, "backups", {"keep": 4})
        h.supz("up", check=True)
        yield h
    finally:
        destroy_host(h)


def programs(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.conf").write_text(sleep_program(name))
    return folder


def running(host: SupzHost) -> set[str]:
    return {spec.split(":")[0] for spec, state in host.states().items() if state == "RUNNING"}


def test_reasons_bulk_add_export_import_backups_restore(strict: SupzHost, tmp_path: Path) -> None:
    host = strict
    names = [f"m{n:02d}" for n in range(16)]
    folder = programs(tmp_path / "apps", names)

    # Bulk add, all or nothing: one invalid file refuses the whole call, naming it.
    (folder / "zbad.conf").write_text("[program:zbad]\ncommand = /bin/true\nnumprocs = two\n")
    refused = host.supz("registry", "add", str(folder))
    assert refused.returncode == 2 and "zbad.conf" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert listing(host)["generation"] == 0 and running(host) == set()
    (folder / "zbad.conf").unlink()
    added = host.supz("registry", "add", str(folder))
    assert added.returncode == 0, added.stdout + added.stderr
    assert listing(host)["generation"] == 1 and running(host) == set(names)

    # A stop needs a reason here, from supzcli and from stock supervisorctl alike.
    bare = host.supzcli("stop", "m00")
    assert bare.returncode == 4 and "reason is required" in bare.stdout
    stock = host.run("supervisorctl", "-c", str(host.paths.supervisord_conf), "stop", "m00")
    assert "reason is required" in stock.stdout + stock.stderr and "m00" in running(host)
    host.supzcli("stop", "m00", "-m", REASON, check=True)
    status = host.supzcli("status", "m00")
    assert status.returncode == 3 and "PARKED" in status.stdout and f"({REASON})" in status.stdout
    assert " by " in status.stdout, status.stdout
    shown = [line for line in host.supz("registry", "list").stdout.splitlines() if line.startswith("m00 ")]
    assert shown and "PARKED by " in shown[0] and f"({REASON})" in shown[0]
    show = host.supz("registry", "show", "m00")
    assert show.returncode == 0 and REASON in show.stdout and "stop m00 --reason" in show.stdout
    history = [json.loads(line) for line in host.supz("registry", "history", "--app", "m00", "--json").stdout.splitlines()]
    assert [h["op"] for h in history] == ["add", "park"] and history[-1]["reason"] == REASON
    assert all(h["id"] for h in history)

    # Export; break the registry (10 removed, 5 parked); the dry run lists the 15 changes.
    exported = tmp_path / "reg.supz.json.gz"
    host.supz("registry", "export", "-o", str(exported), check=True)
    before = content(host)
    host.supzcli("remove", *names[1:11], "--yes", check=True)
    host.supzcli("stop", *names[11:16], "-m", "breaking it", check=True)
    assert len(listing(host)["active"]) == 0
    dry = host.supz("registry", "import", "--dry-run", str(exported))
    changes = [line for line in dry.stdout.splitlines() if line.startswith("m")]
    assert dry.returncode == 0 and len(changes) == 15, dry.stdout
    assert content(host)[0] > before[0]
    imported = host.supz("registry", "import", str(exported))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    after = content(host)
    assert after[1] == before[1] and after[0] > before[0]
    assert running(host) == set(names) - {"m00"}
    assert "(breaking it)" not in host.supz("registry", "list").stdout  # the notes are the archive's

    # Backups: one before each change, the newest 4 kept; restore one from before the import.
    backups = json.loads(host.supz("registry", "backups", "--json", check=True).stdout)
    assert len(backups) == 4, backups
    broken = next(b for b in backups if b["generation"] == after[0] - 1)
    dry = host.supz("registry", "restore", "--dry-run", broken["id"])
    assert dry.returncode == 0 and content(host) == after
    host.supz("registry", "restore", broken["id"], check=True)
    assert len(listing(host)["active"]) == 0 and running(host) == set()
    assert [b["generation"] for b in json.loads(host.supz("registry", "backups", "--json").stdout)][-1] == after[0]

    # Damaged archives are refused with one line, and nothing changes.
    state = content(host)
    raw = gzip.decompress(exported.read_bytes())
    altered = tmp_path / "altered.supz.json.gz"
    altered.write_bytes(gzip.compress(raw.replace(b"/bin/sleep 100000", b"/bin/sleep 100001", 1)))
    truncated = tmp_path / "truncated.supz.json.gz"
    truncated.write_bytes(exported.read_bytes()[:-100])
    for bad, said in ((altered, "checksum mismatch"), (truncated, "truncated")):
        result = host.supz("registry", "import", str(bad))
        assert result.returncode == 2 and said in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert content(host) == state and running(host) == set()


def test_a_thousand_program_files_in_one_call(host: SupzHost, tmp_path: Path) -> None:
    names = [f"k{n:04d}" for n in range(1000)]
    folder = programs(tmp_path / "many", names)
    bad = folder / "k0500.conf"
    bad.write_text("[program:k0500]\ncommand = /bin/sleep 100000\nstartsecs = soon\n")
    refused = host.supz("registry", "add", str(folder))
    assert refused.returncode == 2 and str(bad) in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert listing(host)["generation"] == 0 and running(host) == set()
    bad.write_text(sleep_program("k0500"))
    added = host.supz("registry", "add", str(folder), timeout=300)
    assert added.returncode == 0 and "1000 of 1000 loaded and RUNNING" in added.stdout, added.stdout + added.stderr
    assert listing(host)["generation"] == 1 and running(host) == set(names)
