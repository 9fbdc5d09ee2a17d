"""The registry's history: one line per registry change, kept inside the registry version.

Each transaction appends one line (who, when, the command and its arguments, the reason, the
entries it changed, the generations) to the manifest's `history`, in the same atomic write as
the change itself. The manifest is the registry's commit point and what the syncer always
carries, verifies and lands whole, so the history travels with the registry and both hosts of
a pair answer `supz registry history` alike. Every line has a stable id; two histories that
grew apart during a partition merge as the union of their lines by id, ordered by (time, id),
never duplicated (`merge`). The window is bounded (`KEEP` lines, the newest); each host's audit
file (`var/log/supz/audit.jsonl`) keeps every line it wrote, as before.

Also the per-entry notes: who parked an application, when and why (`notes`), kept only while
it is parked.
"""

from __future__ import annotations

import datetime as _dt
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from supz.audit import Who, now_iso

KEEP = 200  # history lines a registry version keeps (the newest): ~90 KB of manifest
History = tuple[dict[str, Any], ...]
Notes = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Note:
    """What a caller says about a change: the command line and why (the registry adds who and when)."""

    command: str = ""
    args: tuple[str, ...] = ()
    reason: str = ""
    detail: str = ""


def new_id(host: str) -> str:
    """A stable, unique line id: the time, the host, and a random tail."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{host}-{secrets.token_hex(4)}"


def make_line(*, op: str, who: Who, host: str, names: Sequence[str], generation_before: int, note: Note | None,
              time: str | None = None) -> dict[str, Any]:
    """One history line, in the audit file's fields (time, user, real_user, host, command, args,
    result, generation_before, generation_after, detail) plus id, op, names and reason."""
    note = note or Note()
    line: dict[str, Any] = {
        "id": new_id(host),
        "time": time or now_iso(),
        "user": who.user,
        "real_user": who.real_user,
        "host": who.host if who.host not in ("", "unknown") else host,
        "command": note.command or op,
        "args": list(note.args) if note.command else list(names),
        "op": op,
        "names": list(names),
        "result": "ok",
        "generation_before": generation_before,
        "generation_after": generation_before + 1,
    }
    if note.reason:
        line["reason"] = note.reason
    if note.detail:
        line["detail"] = note.detail
    return line


def _key(line: Mapping[str, Any]) -> tuple[str, str]:
    return (str(line.get("time", "")), str(line.get("id", "")))


def append(history: Iterable[Mapping[str, Any]], lines: Iterable[Mapping[str, Any]], keep: int = KEEP) -> History:
    """`history` with `lines` after it, the oldest dropped past `keep`."""
    result = [dict(line) for line in history] + [dict(line) for line in lines]
    return tuple(result[-keep:]) if keep > 0 else tuple(result)


def merge(*histories: Iterable[Mapping[str, Any]], keep: int = KEEP) -> History:
    """The union of histories by id, ordered by (time, id); lines without an id are kept once each."""
    seen: dict[str, dict[str, Any]] = {}
    for history in histories:
        for line in history:
            ident = str(line.get("id") or repr(sorted(line.items())))
            seen.setdefault(ident, dict(line))
    merged = sorted(seen.values(), key=_key)
    return tuple(merged[-keep:]) if keep > 0 else tuple(merged)


def parse(raw: Any) -> History:
    """The manifest's `history`, tolerant: anything that is not a list of objects is dropped."""
    if not isinstance(raw, list):
        return ()
    return tuple(dict(line) for line in raw if isinstance(line, dict))


def parse_notes(raw: Any) -> Notes:
    if not isinstance(raw, dict):
        return {}
    return {str(name): {str(k): str(v) for k, v in note.items()} for name, note in raw.items() if isinstance(note, dict)}


def park_note(line: Mapping[str, Any]) -> dict[str, str]:
    """The note kept on a parked entry: who parked it, where, when, and why."""
    note = {"user": str(line.get("real_user") or line.get("user", "")), "host": str(line.get("host", "")),
            "time": str(line.get("time", ""))}
    if line.get("reason"):
        note["reason"] = str(line["reason"])
    return note


def describe_park(note: Mapping[str, str] | None) -> str:
    """`by alice 2026-11-29 02:14 (INC-42: payment timeouts)`: what `supzcli status` and
    `supz registry list` show after PARKED (empty without a note)."""
    if not note:
        return ""
    words = []
    if note.get("user"):
        words.append(f"by {note['user']}")
    when = short_time(note.get("time", ""))
    if when:
        words.append(when)
    if note.get("reason"):
        words.append(f"({note['reason']})")
    return " ".join(words)


def short_time(iso: str) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM` in UTC (as stored); unparsable text as given."""
    try:
        when = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M")


_SPAN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_cutoff(text: str, now: _dt.datetime | None = None) -> _dt.datetime:
    """`2d`, `12h`, `30m`, `1w` before now, or an ISO date/time; ValueError otherwise."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    found = _SPAN.match(text)
    if found:
        return now - _dt.timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])
    when = _dt.datetime.fromisoformat(text.strip())
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.timezone.utc)


def select(history: Iterable[Mapping[str, Any]], *, app: str | None = None, user: str | None = None,
           since: _dt.datetime | None = None) -> list[dict[str, Any]]:
    """The lines about `app` (in `names` or `args`), by `user` (user or real_user), since a time."""
    chosen = []
    for line in history:
        if app is not None and app not in (line.get("names") or []) and app not in (line.get("args") or []):
            continue
        if user is not None and user not in (line.get("user"), line.get("real_user")):
            continue
        if since is not None:
            try:
                when = _dt.datetime.fromisoformat(str(line.get("time", "")))
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=_dt.timezone.utc)
            if when < since:
                continue
        chosen.append(dict(line))
    return chosen
