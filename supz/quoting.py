"""Quoting values for the files supz renders: supervisor program sections and POSIX shell scripts.

supervisor reads its files with configparser (`;` or `#` after white space starts a comment,
values are stripped, `%` starts an expansion), splits `command` with shlex (POSIX), and reads
`environment` with a non-POSIX shlex that knows no escapes. Each function here either returns
a value those readers give back unchanged, or raises ConfigError naming what cannot be said.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from supz.errors import ConfigError

# What configparser (with supervisor's inline comment prefixes) would cut off or mangle.
_INLINE_COMMENT = re.compile(r"\s[;#]")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters a shell word may hold unquoted; everything else is quoted.
_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def _check_line(value: str, what: str) -> None:
    if any(ch in value for ch in "\n\r\0"):
        raise ConfigError(f"{what} {value!r} holds a line break or NUL: it cannot be written to a config file",
                          thing=value)


def shell_quote(value: object) -> str:
    """One POSIX shell word that expands to exactly `value`."""
    text = str(value)
    if "\0" in text:
        raise ConfigError(f"value {text!r} holds a NUL byte: no shell can carry it", thing=text)
    return shlex.quote(text)


def supervisor_value(value: object, what: str = "value") -> str:
    """A value supervisor reads back verbatim: `%` doubled; line breaks, edge spaces and
    inline comments (white space then `;` or `#`) refused, as no quoting survives them."""
    text = str(value)
    _check_line(text, what)
    if text != text.strip():
        raise ConfigError(f"{what} {text!r} starts or ends with white space, which supervisor strips", thing=text)
    if _INLINE_COMMENT.search(text):
        raise ConfigError(
            f"{what} {text!r} holds white space followed by ';' or '#', which supervisor reads as a comment",
            thing=text,
        )
    return text.replace("%", "%%")


def _command_word(word: str) -> str:
    if word and _SAFE_WORD.fullmatch(word):
        return word
    # Single quotes, with ';' and '#' outside them behind a backslash: configparser sees no
    # "white space then ;" and shlex.split gives the word back.
    quoted = "'" + word.replace("'", "'\"'\"'") + "'"
    return quoted.replace(";", "'\\;'").replace("#", "'\\#'")


def supervisor_command(argv: Sequence[str]) -> str:
    """A `command =` value that supervisor splits back into exactly `argv`."""
    if not argv:
        raise ConfigError("the command is empty")
    for word in argv:
        _check_line(word, "command word")
    return " ".join(_command_word(word) for word in argv).replace("%", "%%")


def _env_value(key: str, value: str) -> str:
    _check_line(value, f"environment value of {key}")
    # supervisor strips every quote character from both ends of a value.
    if value[:1] in ("'", '"') or value[-1:] in ("'", '"'):
        raise ConfigError(f"environment value of {key} {value!r} starts or ends with a quote, which supervisor drops",
                          thing=key)
    if '"' not in value:
        quoted = f'"{value}"'
    elif "'" not in value:
        quoted = f"'{value}'"
    else:
        raise ConfigError(f"environment value of {key} {value!r} holds both quote characters, which supervisor "
                          "cannot read", thing=key)
    return supervisor_value(quoted, f"environment value of {key}")


def supervisor_environment(env: Mapping[str, str]) -> str:
    """An `environment =` value: KEY="value" pairs, each value quoted the way supervisor reads it."""
    pairs = []
    for key, value in env.items():
        if not _ENV_KEY.fullmatch(key):
            raise ConfigError(f"environment name {key!r} is not a valid variable name", thing=key)
        pairs.append(f"{key}={_env_value(key, str(value))}")
    return ",".join(pairs)


def split_command(command: str, what: str = "command") -> list[str]:
    """A command line into its argument list, as supervisor (shlex, POSIX) splits it."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"{what} {command!r}: {exc}", thing=command) from exc
    if not argv:
        raise ConfigError(f"the {what} is empty", thing=command)
    return argv


FILTERS = {
    "shquote": shell_quote,
    "supervisor_value": supervisor_value,
    "supervisor_command": supervisor_command,
    "supervisor_environment": supervisor_environment,
}
