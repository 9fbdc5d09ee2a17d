"""One function finds supz's programs, for sup_run.sh, keepalived.conf, the syncer and the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from supz.executables import supz_executable


def _script(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_program_beside_the_interpreter_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    beside = _script(tmp_path / "venv" / "bin" / "supzcli")
    _script(tmp_path / "elsewhere" / "supzcli")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert supz_executable("supzcli") == beside
    assert supz_executable().parent == beside.parent


def test_then_the_one_on_path_then_where_it_would_be(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert supz_executable() == tmp_path / "venv" / "bin" / "supz"
    on_path = _script(tmp_path / "elsewhere" / "supz")
    assert supz_executable() == on_path
