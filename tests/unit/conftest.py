from __future__ import annotations

from pathlib import Path

import pytest

from supz.paths import HostPaths


@pytest.fixture
def paths(tmp_path: Path) -> HostPaths:
    """A host layout (its root a folder of tmp_path) with every folder created, no supervisord."""
    paths = HostPaths(tmp_path / "root")
    for folder in paths.folders():
        folder.mkdir(parents=True, exist_ok=True)
    return paths
