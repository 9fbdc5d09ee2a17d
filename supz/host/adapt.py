"""Edit a distribution's supervisord.conf in place, as text, so comments and layout survive.

Only three changes are made, each reported: load the supz extension, include the host-local
folder (and no longer the registry's active folder, which older supz versions included: the
extension loads the registry itself, so a malformed entry cannot stop supervisord), and raise
minfds. Anything ambiguous (duplicate sections, values supz cannot read) is left alone and
reported as such.
"""

from __future__ import annotations

import re

SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(?:[;#].*)?$")
OPTION = re.compile(r"^(\s*)([A-Za-z0-9_.]+)(\s*[=:]\s*)(.*?)(\s*(?:\s[;#].*)?)$")


def _sections(lines: list[str]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for index, line in enumerate(lines):
        match = SECTION.match(line)
        if match:
            found.setdefault(match.group(1).strip(), []).append(index)
    return found


def _section_end(lines: list[str], start: int) -> int:
    for index in range(start + 1, len(lines)):
        if SECTION.match(lines[index]):
            return index
    return len(lines)


def _find_option(lines: list[str], start: int, key: str) -> int | None:
    for index in range(start + 1, _section_end(lines, start)):
        match = OPTION.match(lines[index])
        if match and match.group(2).strip() == key:
            return index
    return None


def adapt_supervisord_conf(
    text: str, *, include: list[str], root: str, minfds: int, exclude: tuple[str, ...] = ()
) -> tuple[str, list[str], list[str]]:
    """Return (new text, changes made, things left alone with why)."""
    lines = text.splitlines()
    changes: list[str] = []
    skipped: list[str] = []
    sections = _sections(lines)
    duplicated = [name for name, at in sections.items() if len(at) > 1]
    if duplicated:
        return text, [], [f"section [{duplicated[0]}] appears twice; not editing a file supz cannot read"]
    if "supervisord" not in sections:
        return text, [], ["no [supervisord] section; this is not a supervisord.conf supz understands"]

    # 1. minfds
    start = sections["supervisord"][0]
    at = _find_option(lines, start, "minfds")
    if at is None:
        lines.insert(start + 1, f"minfds = {minfds}  ; supz: each program holds 5 fds (3 pipes, 2 logs)")
        changes.append(f"set minfds = {minfds} in [supervisord]")
    else:
        match = OPTION.match(lines[at])
        assert match is not None
        value = match.group(4).strip()
        if not value.isdigit():
            skipped.append(f"minfds = {value} is not a number supz can compare")
        elif int(value) < minfds:
            lines[at] = f"{match.group(1)}minfds{match.group(3)}{minfds}{match.group(5)}"
            changes.append(f"raised minfds from {value} to {minfds}")

    # 2. the extension
    sections = _sections(lines)
    if "rpcinterface:supz" not in sections:
        lines.extend(
            [
                "",
                "[rpcinterface:supz]",
                "supervisor.rpcinterface_factory = supz.supervisord.rpc:make_rpcinterface",
                f"root = {root}",
            ]
        )
        changes.append("added [rpcinterface:supz]")

    # 3. the include
    sections = _sections(lines)
    if "include" not in sections:
        lines.extend(["", "[include]", f"files = {' '.join(include)}"])
        changes.append(f"added [include] files = {' '.join(include)}")
    else:
        start = sections["include"][0]
        at = _find_option(lines, start, "files")
        if at is None:
            skipped.append("[include] has no files line")
        else:
            match = OPTION.match(lines[at])
            assert match is not None
            present = match.group(4).split()
            missing = [pattern for pattern in include if pattern not in present]
            dropped = [pattern for pattern in present if pattern in exclude]
            if missing or dropped:
                value = " ".join([p for p in present if p not in dropped] + missing)
                lines[at] = f"{match.group(1)}files{match.group(3)}{value}{match.group(5)}"
            if missing:
                changes.append(f"included {' '.join(missing)}")
            if dropped:
                changes.append(f"no longer includes {' '.join(dropped)} (the supz extension loads the registry "
                               "itself: a malformed entry cannot stop supervisord)")
    new = "\n".join(lines) + ("\n" if text.endswith("\n") or not text else "")
    return new, changes, skipped
