"""pyinotify on the registry, the role file and the config: what woke the syncer up.

The registry's commit point is its manifest (every transaction ends by renaming a new
manifest.json into place), so the current version folder is watched for that alone: a
transaction of a thousand entries is one wake-up, never a half-done one. The folder holding the
`registry` symlink is watched too (a pull or a received push points it elsewhere: the watches
move and a full resync follows), and so are the role file and the supz config.

`wait()` blocks in poll(2) on the inotify descriptor; the only timeout is the caller's (the
next periodic resync), so an idle syncer does not run at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pyinotify

from supz.paths import HostPaths
from supz.sync import layout
from supz.sync.manifests import MANIFEST

# pyinotify logs an overflow on its own logger; the syncer reports it itself.
logging.getLogger("pyinotify").setLevel(logging.ERROR)

_FILE_DONE = pyinotify.IN_MOVED_TO | pyinotify.IN_CLOSE_WRITE
_GONE = pyinotify.IN_DELETE_SELF | pyinotify.IN_MOVE_SELF


@dataclass
class Wake:
    """Why `wait()` returned; several reasons can come together."""

    registry: bool = False
    overflow: bool = False
    relinked: bool = False
    role: bool = False
    config: bool = False

    def __bool__(self) -> bool:
        return self.registry or self.overflow or self.relinked or self.role or self.config


class Watcher:
    def __init__(self, paths: HostPaths) -> None:
        self.paths = paths
        self.wm = pyinotify.WatchManager()
        self.notifier = pyinotify.Notifier(self.wm, default_proc_fun=self._on_event)
        self._wake = Wake()
        self._registry_wd: dict[str, int] = {}
        self.version: Path | None = None
        quiet = {"quiet": True}
        for folder in (paths.lib, paths.state, paths.etc):
            folder.mkdir(parents=True, exist_ok=True)
        self.wm.add_watch(str(paths.lib), pyinotify.IN_MOVED_TO | pyinotify.IN_CREATE | pyinotify.IN_DELETE, **quiet)
        self.wm.add_watch(str(paths.state), _FILE_DONE, **quiet)
        self.wm.add_watch(str(paths.etc), _FILE_DONE, **quiet)
        self.watch_registry()

    def watch_registry(self) -> None:
        """(Re)watch the folder `registry` points to now."""
        for wd in self._registry_wd.values():
            self.wm.rm_watch(wd, quiet=True)
        self._registry_wd = {}
        try:
            self.version = layout.current_version(self.paths)
        except Exception:  # noqa: BLE001 - no registry yet: the lib watch says when one appears
            self.version = None
            return
        added = self.wm.add_watch(str(self.version), _FILE_DONE | _GONE, quiet=True)
        self._registry_wd = {k: v for k, v in added.items() if v > 0}

    def _on_event(self, event: pyinotify.Event) -> None:
        if event.mask & pyinotify.IN_Q_OVERFLOW:
            self._wake.overflow = True
            return
        folder = Path(event.path)
        name = getattr(event, "name", "") or ""
        if folder == self.version:
            if event.mask & (_GONE | pyinotify.IN_IGNORED):
                self._wake.relinked = True
            elif name == MANIFEST:
                self._wake.registry = True
        elif folder == self.paths.lib and name == self.paths.registry.name:
            self._wake.relinked = True
        elif folder == self.paths.state and name == self.paths.role_file.name:
            self._wake.role = True
        elif folder == self.paths.etc and name == self.paths.config_file.name:
            self._wake.config = True

    def fileno(self) -> int:
        fd: int = self.wm.get_fd()
        return fd

    def wait(self, timeout: float | None) -> Wake:
        """Block until something happens or `timeout` seconds pass; return what happened."""
        millis = None if timeout is None else max(0, int(timeout * 1000))
        if self.notifier.check_events(timeout=millis):
            self.notifier.read_events()
            self.notifier.process_events()
        wake, self._wake = self._wake, Wake()
        if wake.relinked:
            self.watch_registry()
        return wake

    def close(self) -> None:
        self.notifier.stop()
