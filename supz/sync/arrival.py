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
import select
import struct
from pathlib import Path

import pyinotify

from supz.sync.manifests import STATES

# rsync writes each file under a temporary name and renames it into place.
_LANDED = pyinotify.IN_MOVED_TO
_HEADER = struct.Struct("iIII")


class Arrival:
    """The paths still expected in one spare at a time; one inotify instance, reused.

    pyinotify sets the watches; the events are read straight from its descriptor, because
    pyinotify formats every event for its debug log (about 80 us each): a thousand-file push
    would spend longer decoding events than rsync spends writing the files. Closing an inotify
    descriptor waits for the kernel's RCU grace period (milliseconds), so an agent keeps one for
    its whole life and only adds and removes watches.
    """

    def __init__(self) -> None:
        self.spare: Path | None = None
        self.pending: set[str] = set()
        self.wm = pyinotify.WatchManager()
        self._folders: dict[int, str] = {}  # watch descriptor -> folder relative to the spare ("" or "active/")

    def expect(self, spare: Path, paths: list[str]) -> None:
        self.stop()
        self.spare = spare
        self.pending = set(paths)
        folders = {str(spare): ""} | {str(spare / s): f"{s}/" for s in STATES}
        added = self.wm.add_watch(list(folders), _LANDED, quiet=True)
        self._folders = {wd: folders[path] for path, wd in added.items() if wd > 0}
        # Files that landed before the watches existed: new inodes (a spare's own copies of the
        # current version are hard links, so they have more than one link).
        root = str(spare)
        for rel in list(self.pending):
            try:
                if os.stat(os.path.join(root, rel)).st_nlink == 1:
                    self.pending.discard(rel)
            except FileNotFoundError:
                pass

    @property
    def watching(self) -> bool:
        return self.spare is not None

    def fileno(self) -> int:
        fd: int = self.wm.get_fd()
        return fd

    def poll(self) -> bool:
        """Take in the events queued so far (never blocks); True once everything has landed."""
        fd = self.fileno()
        while select.select([fd], [], [], 0)[0]:
            data = os.read(fd, 1 << 16)
            offset = 0
            while offset < len(data):
                wd, _mask, _cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset:offset + length].rstrip(b"\0").decode("utf-8", "surrogateescape")
                offset += length
                folder = self._folders.get(wd)
                if folder is not None:
                    self.pending.discard(folder + name)
        return self.spare is not None and not self.pending

    def stop(self) -> None:
        """Forget the current spare (its watches go; late events are ignored)."""
        for wd in self._folders:
            self.wm.rm_watch(wd, quiet=True)
        self._folders = {}
        self.spare = None
        self.pending = set()

    def close(self) -> None:
        self.stop()
        self.wm.close()
