"""The unit tests' `paths` fixture lays out a host the way `supz init` does, so what passes on
it passes on a real host (the registry a symlink to a version folder, not a plain folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from supz.host.layout import InitOptions, init_host
from supz.paths import HostPaths


def _shape(root: Path) -> set[tuple[str, str, int]]:
    """Every folder and symlink under root: (relative path, kind, mode), version names made equal."""
    found: set[tuple[str, str, int]] = set()
    for folder, dirs, _files in os.walk(root):
        for name in dirs:
            path = Path(folder) / name
            kind = "link" if path.is_symlink() else "dir"
            relative = re.sub(r"v-[0-9a-f]+-[0-9a-f]+", "v-X", str(path.relative_to(root)))
            found.add((relative, kind, path.lstat().st_mode & 0o777 if kind == "dir" else 0))
    return found


def test_the_paths_fixture_is_what_init_makes(paths: HostPaths, tmp_path: Path) -> None:
    made = HostPaths(tmp_path / "init")
    init_host(made, InitOptions(host="h"))
    assert paths.registry.is_symlink()
    assert _shape(paths.root) == _shape(made.root)
