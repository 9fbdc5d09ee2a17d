from __future__ import annotations

from pathlib import Path

import pytest

from supz.host.layout import InitReport, make_folders
from supz.paths import HostPaths


@pytest.fixture
def paths(tmp_path: Path) -> HostPaths:
    """A host layout (its root a folder of tmp_path) with every folder `supz init` makes, the
    registry a symlink to a version folder; no config file, no supervisord."""
    paths = HostPaths(tmp_path / "root")
    make_folders(paths, InitReport())
    return paths
