"""What a merge or a resolve set aside, until someone has looked at it.

Each item names the entries involved, why, and where the set-aside copy is. `supz doctor` and
`supz status --cluster` report unreviewed items as errors; `supz sync set-aside --reviewed ID`
(or `--all`) marks them reviewed. The copies themselves stay in var/lib/supz/set-aside.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from supz.errors import StorageError, UnknownEntry
from supz.fsutil import atomic_write, file_lock
from supz.paths import HostPaths

REVIEW_COMMAND = "supz sync set-aside --reviewed"


@dataclass
class AsideItem:
    id: str
    time: str
    why: str  # "merge" or "resolve" or "push"
    names: list[str]
    detail: str
    where: str = ""
    reviewed: bool = False
    copies: dict[str, str] = field(default_factory=dict)  # name -> path of the set-aside file

    def line(self) -> str:
        where = f" (in {self.where})" if self.where else ""
        return f"set aside by {self.why} [{self.id}]: {', '.join(self.names) or '-'}: {self.detail}{where}"


def _lock(paths: HostPaths) -> Any:
    return file_lock(paths.locks / "set-aside.lock", timeout=10, what="the set-aside index")


def load(paths: HostPaths) -> list[AsideItem]:
    try:
        data = json.loads(paths.set_aside_index.read_text(encoding="utf-8"))
        return [AsideItem(**{k: v for k, v in item.items() if k in AsideItem.__dataclass_fields__})
                for item in data.get("items", [])]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise StorageError(f"cannot read {paths.set_aside_index}: {exc}", thing=str(paths.set_aside_index)) from exc


def _save(paths: HostPaths, items: list[AsideItem]) -> None:
    paths.set_aside_index.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.set_aside_index, json.dumps({"items": [asdict(i) for i in items]}, indent=1))


def add(paths: HostPaths, why: str, names: list[str], detail: str, *, where: str = "",
        copies: dict[str, str] | None = None, reviewed: bool = False) -> AsideItem:
    stamp = _dt.datetime.now(_dt.timezone.utc)
    item = AsideItem(id=f"{stamp:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}", time=stamp.isoformat(timespec="seconds"),
                     why=why, names=sorted(names), detail=detail, where=where, reviewed=reviewed,
                     copies=dict(copies or {}))
    with _lock(paths):
        _save(paths, [*load(paths), item])
    return item


def unreviewed(paths: HostPaths) -> list[AsideItem]:
    return [i for i in load(paths) if not i.reviewed]


def mark_reviewed(paths: HostPaths, ids: list[str], *, everything: bool = False) -> list[AsideItem]:
    """Mark items reviewed; raise UnknownEntry for an id that is not there."""
    with _lock(paths):
        items = load(paths)
        known = {i.id for i in items}
        for wanted in ids:
            if wanted not in known:
                raise UnknownEntry(f"{wanted}: no such set-aside item (see `supz sync set-aside`)", thing=wanted)
        done = []
        for item in items:
            if not item.reviewed and (everything or item.id in ids):
                item.reviewed = True
                done.append(item)
        _save(paths, items)
    return done
