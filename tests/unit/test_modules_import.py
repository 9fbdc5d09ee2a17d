"""Every supz module imports on the Python running the tests: bin/test runs the unit tests on
each supported Python, so a 3.10+ construct in a module no unit test reaches (a runtime
`X | Y`, `match`, a new stdlib argument at import) still fails there."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import supz

MODULES = sorted(m.name for m in pkgutil.walk_packages(supz.__path__, "supz."))


def test_the_walk_finds_the_package() -> None:
    assert {"supz.registry", "supz.cli.main", "supz.sync.daemon", "supz.supervisord.rpc"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)
