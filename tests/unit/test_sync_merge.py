"""The merge rule table on fakes: every combination of add, edit, park, unpark and remove on
each side of a partition, from an entry that was active, parked or absent at the common base."""

from __future__ import annotations

import itertools
from typing import Optional

import pytest

from supz.sync.manifests import Relation, VersionInfo, relate
from supz.sync.merge import LOCAL, PEER, merge

OPS = ("none", "add", "edit", "park", "unpark", "remove")
BASE_TIME = "2026-01-01T00:00:00.000+00:00"
TIMES = {LOCAL: "2026-01-01T00:00:01.000+00:00", PEER: "2026-01-01T00:00:02.000+00:00"}  # the peer changed last
Meta = Optional[tuple[str, str]]  # (state, content) or None when absent


def apply(op: str, was: Meta, side: str) -> tuple[Meta, bool]:
    """What one side holds after `op` on the base entry, and whether it touched the entry.
    `add` on an existing entry is `registry add --replace` (new content, active);
    `park` of a parked entry and `unpark` of an active one are an unpark-park and a park-unpark."""
    content = f"{side}-content"
    if op == "none":
        return was, False
    if op == "add":
        return ("active", content), True
    assert was is not None
    if op == "edit":
        return (was[0], content), True
    if op == "park":
        return ("parked", was[1]), True
    if op == "unpark":
        return ("active", was[1]), True
    return None, True  # remove


def version(entry: Meta, time: str, generation: int) -> VersionInfo:
    if entry is None:
        return VersionInfo(generation, {})
    return VersionInfo(generation, {"x": {"state": entry[0], "sha256": entry[1]}}, changed={"x": time})


def run(base_entry: Meta, local_op: str, peer_op: str) -> tuple[str, bool]:
    base = version(base_entry, BASE_TIME, 5)
    sides = {}
    for side, op in ((LOCAL, local_op), (PEER, peer_op)):
        entry, touched = apply(op, base_entry, side)
        sides[side] = version(entry, TIMES[side] if touched else BASE_TIME, 6)
    result = merge(base, sides[LOCAL], sides[PEER], hosts=("a", "b"))
    meta = result.entries.get("x")
    if meta is None:
        shown = "-"
    else:
        who = {"base-content": "base", "local-content": "local", "peer-content": "peer"}[meta["sha256"]]
        shown = f"{meta['state']}:{who}"
    return shown, bool(result.conflicts)


# rows: what this host did; columns: what the peer did (the peer's change is the newer one).
# "state:content" with content from base/local/peer, "-" removed; "!" a reported conflict.
TABLE_FROM_ACTIVE = """
          none            add              edit             park             unpark           remove
none      active:base     active:peer      active:peer      parked:base      active:base      -
add       active:local    active:peer!     active:peer!     parked:local     active:local     parked:local!
edit      active:local    active:peer!     active:peer!     parked:local     active:local     parked:local!
park      parked:base     parked:peer      parked:peer      parked:base      parked:base      parked:base!
unpark    active:base     active:peer      active:peer      parked:base      active:base      parked:base!
remove    -               parked:peer!     parked:peer!     parked:base!     parked:base!     -
"""

TABLE_FROM_PARKED = """
          none            add              edit             park             unpark           remove
none      parked:base     active:peer      parked:peer      parked:base      active:base      -
add       active:local    active:peer!     active:peer!     parked:local     active:local     parked:local!
edit      parked:local    active:peer!     parked:peer!     parked:local     active:local     parked:local!
park      parked:base     parked:peer      parked:peer      parked:base      parked:base      parked:base!
unpark    active:base     active:peer      active:peer      parked:base      active:base      parked:base!
remove    -               parked:peer!     parked:peer!     parked:base!     parked:base!     -
"""


def cases(table: str, state: str):  # type: ignore[no-untyped-def]
    rows = [line.split() for line in table.strip().splitlines()]
    header = rows[0]
    for row in rows[1:]:
        for peer_op, expected in zip(header, row[1:]):
            yield pytest.param((state, "base-content"), row[0], peer_op, expected, id=f"{state}-{row[0]}-{peer_op}")


@pytest.mark.parametrize(("base", "local_op", "peer_op", "expected"),
                         [*cases(TABLE_FROM_ACTIVE, "active"), *cases(TABLE_FROM_PARKED, "parked")])
def test_the_merge_rule_table(base: Meta, local_op: str, peer_op: str, expected: str) -> None:
    shown, conflict = run(base, local_op, peer_op)
    assert shown + ("!" if conflict else "") == expected


@pytest.mark.parametrize(("local_op", "peer_op", "expected"), [
    ("none", "none", "-"),
    ("add", "none", "active:local"),
    ("none", "add", "active:peer"),
    ("add", "add", "active:peer!"),
])
def test_entries_absent_at_the_base(local_op: str, peer_op: str, expected: str) -> None:
    shown, conflict = run(None, local_op, peer_op)
    assert shown + ("!" if conflict else "") == expected


@pytest.mark.parametrize(("base_state", "local_op", "peer_op"),
                         [(s, a, b) for s in ("active", "parked") for a, b in itertools.product(OPS, OPS)])
def test_the_rule_does_not_depend_on_which_side_merges(base_state: str, local_op: str, peer_op: str) -> None:
    """Merged on either host, with the same clocks, the result is the same."""
    base_entry: Meta = (base_state, "base-content")
    base = version(base_entry, BASE_TIME, 5)
    made: dict[str, VersionInfo] = {}
    for side, op in ((LOCAL, local_op), (PEER, peer_op)):
        entry, touched = apply(op, base_entry, side)
        made[side] = version(entry, TIMES[side] if touched else BASE_TIME, 6)
    one = merge(base, made[LOCAL], made[PEER], hosts=("a", "b"))
    other = merge(base, made[PEER], made[LOCAL], hosts=("b", "a"))
    assert one.entries == other.entries
    assert [c.name for c in one.conflicts] == [c.name for c in other.conflicts]


def test_changes_to_different_entries_all_survive() -> None:
    base = VersionInfo(3, {n: {"state": "active", "sha256": n} for n in "xyz"})
    a = VersionInfo(4, {"x": {"state": "parked", "sha256": "x"}, "y": {"state": "active", "sha256": "y"},
                        "z": {"state": "active", "sha256": "z"}, "new-a": {"state": "active", "sha256": "na"}},
                    changed={"x": "t1", "new-a": "t1"})
    b = VersionInfo(4, {"x": {"state": "active", "sha256": "x"}, "y": {"state": "parked", "sha256": "y"},
                        "new-b": {"state": "active", "sha256": "nb"}}, changed={"y": "t2", "new-b": "t2"})
    result = merge(base, a, b)
    assert result.entries == {
        "x": {"state": "parked", "sha256": "x"}, "y": {"state": "parked", "sha256": "y"},
        "new-a": {"state": "active", "sha256": "na"}, "new-b": {"state": "active", "sha256": "nb"},
    }
    assert result.conflicts == []


def test_relations() -> None:
    s1, s2, s3, s4 = (1, "d1"), (2, "d2"), (3, "d3"), (3, "d3b")
    assert relate(s2, [s1, s2], s2, [s1])[0] is Relation.SAME
    assert relate(s2, [s1, s2], s1, [s1])[0] is Relation.BEHIND
    assert relate(s1, [s1], s3, [s1, s3])[0] is Relation.AHEAD
    assert relate(s3, [s1, s2, s3], s4, [s1, s2]) == (Relation.DIVERGED, s2)
    assert relate(s3, [s3], (0, "empty"), [], peer_empty=True, shared=None)[0] is Relation.FRESH
    # A peer that shared generation 3 and now holds the empty generation 0 was rebuilt.
    assert relate(s3, [(0, "empty"), s3], (0, "empty"), [], peer_empty=True, shared=s3)[0] is Relation.UNRELATED
    assert relate(s3, [s3], s4, [(9, "x")])[0] is Relation.UNRELATED
