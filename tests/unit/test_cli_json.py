"""`--json` forms give valid JSON and the same exit code as the text form."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit import test_cli
from tests.unit.test_cli import supz

root = test_cli.root  # the initialised-root fixture of test_cli, used here by name


def test_doctor_json_has_every_check_and_the_same_exit_code(root: Path) -> None:
    text = supz(root, "doctor")
    as_json = supz(root, "doctor", "--json")
    assert as_json.code == text.code == 1  # supervisord is not running here
    answer = json.loads(as_json.out)
    assert answer["ok"] is False and answer["problems"] == text.out.count("FAIL") >= 1
    assert [c["check"] for c in answer["checks"]] == [line[5:] for line in text.out.splitlines()]
    assert any("not running" in c["check"] and not c["ok"] for c in answer["checks"])


def test_doctor_json_on_a_broken_config(root: Path) -> None:
    (root / "etc" / "supz" / "supz.conf").write_text("[supz\n")
    as_json = supz(root, "doctor", "--json")
    assert as_json.code == supz(root, "doctor").code == 1
    assert json.loads(as_json.out)["ok"] is False


def test_role_json(root: Path) -> None:
    assert json.loads(supz(root, "role", "--json").out) == {"role": "unknown"}
    assert supz(root, "role", "set", "backup").code == 0
    shown = supz(root, "role", "--json")
    assert shown.code == supz(root, "role").code == 0 and json.loads(shown.out) == {"role": "BACKUP"}
