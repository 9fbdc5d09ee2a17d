"""`supz` in-process for tests: `supz.cli.main.run` with its own streams and environment.

click 8.2 keeps stdout and stderr apart by itself; 8.1 (the newest for Python 3.9) only when
asked with `mix_stderr=False`, an argument 8.2 no longer takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from supz.cli.main import run


@dataclass
class Ran:
    code: int
    out: str
    err: str


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        return CliRunner()


def run_supz(args: list[str], env: dict[str, str] | None = None) -> Ran:
    """Run `supz ARGS`; its exit code and what it wrote on stdout and stderr."""
    with runner().isolation(env=env) as streams:
        code = run(args)
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Ran(code, out.decode(), err.decode())
