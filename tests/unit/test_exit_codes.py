"""The exit-code contract: one enum, and the README's table generated from it."""

from __future__ import annotations

import re

from supz.errors import MEANINGS, ExitCode, exit_code_table
from tests.conftest import REPO


def test_every_code_has_a_meaning() -> None:
    assert set(MEANINGS) == set(ExitCode)


def test_codes_are_lsb_where_lsb_speaks() -> None:
    # supervisorctl's init-script statuses and LSB status's "not running".
    from supervisor.supervisorctl import LSBInitExitStatuses, LSBStatusExitStatuses

    assert ExitCode.USAGE == LSBInitExitStatuses.INVALID_ARGS
    assert ExitCode.REFUSED == LSBInitExitStatuses.INSUFFICIENT_PRIVILEGES
    assert ExitCode.NOT_INSTALLED == LSBInitExitStatuses.NOT_INSTALLED
    assert ExitCode.DOWN == LSBInitExitStatuses.NOT_RUNNING
    assert ExitCode.NOT_RUNNING == LSBStatusExitStatuses.NOT_RUNNING


def test_readme_table_is_the_enum() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- exit-codes:begin -->\n(.*?)\n<!-- exit-codes:end -->", readme, re.S)
    assert found, "README.md has no exit-code table between the markers"
    assert found.group(1) == exit_code_table()
