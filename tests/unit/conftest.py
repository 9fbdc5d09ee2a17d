from __future__ import annotations

from pathlib import Path

import pytest

from supz.paths import HostPaths


@pytest.fixture
def paths(tmp_path: Path) -> HostPaths:
    """A host layout with every folder created, no supervisord."""
    paths = HostPaths(tmp_path)
    for folder in paths.folders():
        folder.mkdir(parents=True, exist_ok=True)
    return paths
