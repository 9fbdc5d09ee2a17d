"""The three-way merge of two registries that both changed since a state they shared.

After a partition both hosts may have been MASTER and changed the registry. Each entry is
merged on its own against the common base (the last state both held), looking at two things
separately: its state (active or parked) and its content. The rule, safe for operations:

| on one side | on the other | result |
| --- | --- | --- |
| a change | nothing | the change |
| the same result | the same result | that result |
| parked (or re-parked) | active (unparked, added, edited) | **parked**: a stop is never undone by a merge |
| edited content | other edited content | the **newest** change kept; the other set aside and reported |
| removed | nothing | removed |
| removed | changed (edit, park, unpark) | **kept, parked**, reported: nothing lost, nothing restarted |
| added | added | as both sides changed the same entry (park wins, newest content) |

"Parked" wins only when the parked side changed the entry's state since the base (it parked
it); an entry that was parked at the base and unparked on one side only is active. A change of
content alone is an edit, not a park. The times compared are the manifests' per-entry change
times (UTC, from each host's clock; the host name breaks a tie).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from supz.sync.manifests import Entries, VersionInfo

ACTIVE, PARKED = "active", "parked"
LOCAL, PEER = "local", "peer"


@dataclass(frozen=True)
class Conflict:
    """One entry both sides changed incompatibly; `lost` is the side whose content was set aside
    (None when nothing was lost: a remove against a change keeps the entry, parked)."""

    name: str
    kind: str  # "content" or "removed"
    kept: str  # LOCAL or PEER: whose content the merged registry holds
    lost: str | None
    detail: str


@dataclass
class MergeResult:
    """The merged entries, whose file each comes from, and what needs a human's look."""

    entries: Entries = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)  # name -> LOCAL or PEER (whose file)
    changed: dict[str, str] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    parked_by_rule: list[str] = field(default_factory=list)  # active on one side, parked by the rule

    def differs_from(self, entries: Entries) -> list[str]:
        """Names whose merged state or content differ from `entries`."""
        return sorted(n for n in set(entries) | set(self.entries) if entries.get(n) != self.entries.get(n))


def _state_touched(side: VersionInfo, base: VersionInfo, name: str) -> bool:
    """Did this side change the entry's state since the base (park, unpark, add)?"""
    mine, was = side.entries.get(name), base.entries.get(name)
    if mine is None:
        return False
    if was is None or mine["state"] != was["state"]:
        return True
    # A touch that left state and content as they were: a park and an unpark (or the reverse).
    return side.changed.get(name) != base.changed.get(name) and mine["sha256"] == was["sha256"]


def _touched(side: VersionInfo, base: VersionInfo, name: str) -> bool:
    return side.entries.get(name) != base.entries.get(name) or side.changed.get(name) != base.changed.get(name)


def _newer(local: VersionInfo, peer: VersionInfo, name: str, hosts: tuple[str, str]) -> str:
    mine = (local.changed.get(name, ""), hosts[0])
    theirs = (peer.changed.get(name, ""), hosts[1])
    return LOCAL if mine >= theirs else PEER


def merge(base: VersionInfo, local: VersionInfo, peer: VersionInfo, *,
          hosts: tuple[str, str] = (LOCAL, PEER)) -> MergeResult:
    """Merge `local` and `peer` against `base`; `hosts` names the two sides in the details."""
    result = MergeResult()
    sides = {LOCAL: local, PEER: peer}
    names = {LOCAL: hosts[0], PEER: hosts[1]}
    for name in sorted(set(local.entries) | set(peer.entries)):
        mine, theirs, was = local.entries.get(name), peer.entries.get(name), base.entries.get(name)
        if mine is not None and mine == theirs:
            result.entries[name] = dict(mine)
            result.source[name] = LOCAL
            result.changed[name] = max(local.changed.get(name, ""), peer.changed.get(name, ""))
            continue
        if mine is None or theirs is None:
            present = LOCAL if mine is not None else PEER
            kept = sides[present]
            meta = kept.entries[name]
            if was is None:  # added on one side only
                result.entries[name] = dict(meta)
            elif not _touched(kept, base, name):  # removed on the other side, untouched here
                continue
            else:
                result.entries[name] = {"state": PARKED, "sha256": meta["sha256"]}
                other = names[PEER if present == LOCAL else LOCAL]
                result.conflicts.append(Conflict(
                    name, "removed", present, None,
                    f"removed on {other}, changed on {names[present]}: kept, parked "
                    f"(remove it again, or start it)"))
            result.source[name] = present
            result.changed[name] = kept.changed.get(name, "")
            continue
        # Present on both sides, different: merge the state and the content separately.
        if mine["state"] == theirs["state"]:
            state = mine["state"]
        else:
            parked_side = LOCAL if mine["state"] == PARKED else PEER
            state = PARKED if _state_touched(sides[parked_side], base, name) else ACTIVE
            if state == PARKED:
                result.parked_by_rule.append(name)
        base_sha = was["sha256"] if was is not None else None
        if mine["sha256"] == theirs["sha256"]:
            source = _newer(local, peer, name, hosts)
        elif mine["sha256"] == base_sha:
            source = PEER
        elif theirs["sha256"] == base_sha:
            source = LOCAL
        else:
            source = _newer(local, peer, name, hosts)
            lost = PEER if source == LOCAL else LOCAL
            result.conflicts.append(Conflict(
                name, "content", source, lost,
                f"edited on both: {names[source]}'s newer content kept, {names[lost]}'s set aside"))
        result.entries[name] = {"state": state, "sha256": sides[source].entries[name]["sha256"]}
        result.source[name] = source
        result.changed[name] = max(local.changed.get(name, ""), peer.changed.get(name, ""))
    return result
