"""Man pages and bash completion, generated from the CLI definitions (packaging/generate.py), driven
as bash drives them: `supz reg<TAB>` (click's COMP_WORDS/COMP_CWORD protocol) and a program name
after `supzcli stop ` (supz's script asking `supzcli status`)."""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import click
import pytest

from supz.cli.main import cli
from tests.conftest import BIN, REPO, SupzHost, sleep_program


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("supz_generate", REPO / "packaging" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    _generator().write(out)
    return out


def _complete(script: Path, words: list[str], env: dict[str, str]) -> list[str]:
    """Source a completion script and call its function for `words` (the last one being completed)."""
    function = "_supz_completion" if script.name == "supz" else "_supzcli"
    array = " ".join(f"'{word}'" for word in words)
    code = (f"source {script}; COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; "
            f"{function} {words[0]}; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    result = subprocess.run(["bash", "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60)
    return [line for line in result.stdout.splitlines() if line]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if command.hidden:
            continue
        full = f"{prefix} {name}".strip()
        found += _commands(command, full) if isinstance(command, click.Group) else [full]
    return found


def test_supz_man_page_names_every_command_and_exit_code(generated: Path) -> None:
    page = gzip.decompress((generated / "usr/share/man/man1/supz.1.gz").read_bytes()).decode()
    for command in _commands(cli):
        assert f".SS {command}\n" in page, command
    assert "\\fB5\\fR (NOT_INSTALLED)" in page
    cli_page = gzip.decompress((generated / "usr/share/man/man1/supzcli.1.gz").read_bytes()).decode()
    for command in ("stop", "start", "restart", "status", "update"):
        assert f"\\fB{command}\\fR" in cli_page
    assert "park" in cli_page
    if shutil.which("man"):
        for name in ("supz", "supzcli"):
            shown = subprocess.run(["man", "-l", str(generated / f"usr/share/man/man1/{name}.1.gz")],
                                   capture_output=True, text=True, env=dict(os.environ, MANWIDTH="100"), check=True)
            assert "EXIT STATUS" in shown.stdout and not shown.stderr.strip(), shown.stderr


def test_bash_completes_supz_commands_through_click(generated: Path) -> None:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    assert _complete(generated / "usr/share/bash-completion/completions/supz", ["supz", "reg"], env) == ["registry"]
    assert "add" in _complete(generated / "usr/share/bash-completion/completions/supz",
                              ["supz", "registry", ""], env)


def test_bash_completes_supzcli_commands_and_program_names(generated: Path, host: SupzHost) -> None:
    host.add("web", sleep_program("web"))
    host.add("worker", sleep_program("worker", numprocs=2))
    host.supzcli("stop", "worker:*", check=True)
    script = generated / "usr/share/bash-completion/completions/supzcli"
    env = dict(host.env, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    assert "stop" in _complete(script, ["supzcli", "st"], env)
    names = _complete(script, ["supzcli", "stop", ""], env)
    assert "web" in names and "all" in names
    assert "worker" in _complete(script, ["supzcli", "start", "wo"], env), "parked applications complete too"
    assert _complete(script, ["supzcli", "-c", "x.conf", "stop", "w"], env) == ["web", "worker"]
