"""Program names: the one rule every registry entry, file and directory name obeys."""

from __future__ import annotations

import re

from supz.errors import InvalidName

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def name_problem(name: str) -> str | None:
    """Why `name` is not a valid program name, or None when it is."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if name.startswith("."):
        return "starts with a dot"
    if name.startswith("-"):
        # Every tool supz calls (rsync, supervisorctl, sh) would read it as an option.
        return "starts with a hyphen"
    if not _NAME.fullmatch(name):
        return "may hold only letters, digits, '_', '-' and '.'"
    return None


def validate_name(name: str) -> str:
    """Return `name` unchanged, or raise InvalidName with a one-line reason."""
    problem = name_problem(name)
    if problem is not None:
        raise InvalidName(f"invalid program name {name!r}: it {problem}", thing=name)
    return name


def is_valid_name(name: str) -> bool:
    return name_problem(name) is None
