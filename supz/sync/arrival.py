"""Watching a spare fill up, so a push is committed the moment its last file lands.

rsync renames each file into place as soon as it is complete, but the rsync processes only
exit after a few 20 ms sleeps of their own, and the sender learns of it later still. The
receiver knows from the sender which paths a push brings; it watches the spare with inotify and
commits as soon as every one of them has been renamed into place (the commit verifies each
file's checksum anyway). If anything is off, nothing is lost: the sender asks for the commit
when rsync has exited, and the commit happens then.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyinotify

from supz.sync.manifests import STATES

_LANDED = pyinotify.IN_MOVED_TO | pyinotify.IN_CLOSE_WRITE


class Arrival:
    """The paths still expected in one spare at a time; one inotify instance, reused.

    (Closing an inotify descriptor waits for the kernel's RCU grace period, milliseconds: an
    agent keeps one for its whole life and only adds and removes watches.)
    """

    def __init__(self) -> None:
        self.spare: Path | None = None
        self.pending: set[str] = set()
        self.wm = pyinotify.WatchManager()
        self.notifier = pyinotify.Notifier(self.wm, default_proc_fun=self._on_event)
        self._wds: list[int] = []

    def expect(self, spare: Path, paths: list[str]) -> None:
        self.stop()
        self.spare = spare
        self.pending = set(paths)
        added = self.wm.add_watch([str(spare), *(str(spare / s) for s in STATES)], _LANDED, quiet=True)
        self._wds = [wd for wd in added.values() if wd > 0]
        # Files that landed before the watches existed: new inodes (a spare's own copies of the
        # current version are hard links, so they have more than one link).
        for rel in list(self.pending):
            try:
                if os.stat(spare / rel).st_nlink == 1:
                    self.pending.discard(rel)
            except FileNotFoundError:
                pass

    @property
    def watching(self) -> bool:
        return self.spare is not None

    def _on_event(self, event: pyinotify.Event) -> None:
        if self.spare is None:
            return
        name = getattr(event, "name", "") or ""
        self.pending.discard(os.path.relpath(os.path.join(event.path, name), self.spare))

    def fileno(self) -> int:
        return self.wm.get_fd()

    def poll(self) -> bool:
        """Take in the events queued so far (never blocks); True once everything has landed."""
        while self.notifier.check_events(timeout=0):
            self.notifier.read_events()
            self.notifier.process_events()
        return self.spare is not None and not self.pending

    def stop(self) -> None:
        """Forget the current spare (its watches go; late events are ignored)."""
        for wd in self._wds:
            self.wm.rm_watch(wd, quiet=True)
        self._wds = []
        self.spare = None
        self.pending = set()

    def close(self) -> None:
        self.stop()
        self.notifier.stop()
