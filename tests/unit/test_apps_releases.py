"""Releases and the current/previous links: atomic switches, refusals that change nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supz.apps.conventions import AppLayout, app_layout
from supz.apps.releases import Links, list_releases, read_links, restore, switch
from supz.errors import ConfigError, InvalidName, UnknownEntry


@pytest.fixture
def app(tmp_path: Path) -> AppLayout:
    layout = app_layout(tmp_path / "my app dir" / "web")
    for version in ("1.9", "1.10", "1.2", "2024-01-02_rc1"):
        layout.release(version).mkdir(parents=True)
    (layout.releases / "notes.txt").write_text("not a release")
    return layout


def test_releases_are_listed_in_natural_order(app: AppLayout) -> None:
    assert list_releases(app) == ["1.2", "1.9", "1.10", "2024-01-02_rc1"]


def test_switch_moves_current_and_remembers_previous(app: AppLayout) -> None:
    assert switch(app, "1.9") == Links(None, None)
    assert read_links(app) == Links("1.9", None)
    assert switch(app, "1.10") == Links("1.9", None)
    assert read_links(app) == Links("1.10", "1.9")
    # relative links: the folder can move (or be copied to another host at another path)
    assert os.readlink(app.current) == "releases/1.10"
    assert (app.current / ".").resolve() == app.release("1.10").resolve()
    assert not [p for p in app.path.iterdir() if p.name.startswith(".current")]


def test_restore_puts_both_links_back(app: AppLayout) -> None:
    switch(app, "1.2")
    switch(app, "1.9")
    before = switch(app, "1.10")
    restore(app, before)
    assert read_links(app) == Links("1.9", "1.2")


def test_switching_to_the_current_release_changes_nothing(app: AppLayout) -> None:
    switch(app, "1.2")
    switch(app, "1.9")
    assert switch(app, "1.9") == Links("1.9", "1.2")
    assert read_links(app) == Links("1.9", "1.2")


@pytest.mark.parametrize("version", ["9.9", "notes.txt"])
def test_a_missing_release_changes_nothing(app: AppLayout, version: str) -> None:
    switch(app, "1.2")
    with pytest.raises(UnknownEntry, match="no release"):
        switch(app, version)
    assert read_links(app) == Links("1.2", None)


@pytest.mark.parametrize("version", ["../1.2", "1.2/..", "..", "-rf", "a b", ""])
def test_versions_that_are_not_names_are_refused(app: AppLayout, version: str) -> None:
    with pytest.raises(InvalidName):
        switch(app, version)
    assert read_links(app) == Links(None, None)


def test_a_current_that_is_a_folder_is_refused(app: AppLayout) -> None:
    app.current.mkdir()
    with pytest.raises(ConfigError, match="not a symlink"):
        switch(app, "1.2")
    assert app.current.is_dir() and not app.current.is_symlink()


def test_a_current_pointing_elsewhere_is_refused(app: AppLayout, tmp_path: Path) -> None:
    os.symlink(tmp_path, app.current)
    with pytest.raises(ConfigError, match="not at releases/VERSION"):
        read_links(app)
