"""SpecCache: a program file is parsed once while its text stays the same, and every load gets its own copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from supz.errors import InvalidProgramFile
from supz.programfile import new_server_options
from supz.supervisord.specs import SpecCache


def _write(path: Path, command: str) -> Path:
    path.write_text(f"[program:{path.stem}]\ncommand = {command}\nstartsecs = 1\n")
    return path


def test_unchanged_text_reuses_the_parse_in_fresh_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from supz.supervisord import specs as module

    calls = []
    real = module.parse_program_text
    monkeypatch.setattr(module, "parse_program_text", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    cache = SpecCache(new_server_options(), {"SUPZ_ROOT": "/r"})
    path = _write(tmp_path / "web.conf", "/bin/sleep 10")
    first = cache.spec("web", path)
    second = cache.spec("web", path)
    assert calls == ["web"]
    assert first.group_config == second.group_config
    assert first.group_config is not second.group_config
    one, two = first.group_config.process_configs[0], second.group_config.process_configs[0]
    assert one is not two
    one.stdout_logfile = "/var/log/web-stdout.log"  # what supervisor does when it loads a group
    assert cache.spec("web", path).group_config.process_configs[0].stdout_logfile is not one.stdout_logfile
    assert two.environment["SUPZ_ROOT"] == "/r"

    _write(path, "/bin/sleep 20")
    assert cache.spec("web", path).group_config.process_configs[0].command == "/bin/sleep 20"
    assert calls == ["web", "web"]


def test_warm_reports_bad_files_and_a_bad_file_is_never_served_from_the_cache(tmp_path: Path) -> None:
    cache = SpecCache(new_server_options(), None)
    good = _write(tmp_path / "good.conf", "/bin/true")
    bad = _write(tmp_path / "bad.conf", "/bin/true")
    assert cache.warm([("good", good), ("bad", bad)]) == []
    bad.write_text("[program:other]\ncommand = /bin/true\n")
    problems = cache.warm([("good", good), ("bad", bad)])
    assert len(problems) == 1 and "bad" in str(problems[0])
    with pytest.raises(InvalidProgramFile):
        cache.spec("bad", bad)
    cache.forget(["bad"])
    (tmp_path / "good.conf").unlink()
    with pytest.raises(InvalidProgramFile, match="cannot read"):
        cache.spec("good", good)
