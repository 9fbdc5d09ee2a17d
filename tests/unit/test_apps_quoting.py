"""Values written into program files and shell scripts read back exactly, or are refused."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from supervisor.datatypes import dict_of_key_value_pairs
from supervisor.options import UnhosedConfigParser

from supz.errors import ConfigError
from supz.quoting import shell_quote, supervisor_command, supervisor_environment, supervisor_value

TRICKY_WORDS = [
    "/srv/my apps/web/current/bin/run",
    "it's",
    'say "hi"',
    "a ;b",
    "#1 and # 2",
    "50%",
    "%(here)s",
    "$HOME `id` $(id)",
    "tab\there",
    "ünïcode",
    "",
    "-dash",
    "back\\slash",
]


def read_back(key: str, value: str) -> str:
    """What supervisor's own config reader (and its % expansion) makes of `key = value`."""
    parser = UnhosedConfigParser()
    parser.read_string(f"[program:x]\n{key} = {value}\n")
    return parser.saneget("program:x", key)


def test_commands_split_back_into_the_same_words() -> None:
    line = supervisor_command(TRICKY_WORDS)
    assert shlex.split(read_back("command", line)) == TRICKY_WORDS


@pytest.mark.parametrize("word", TRICKY_WORDS)
def test_each_word_alone_survives(word: str) -> None:
    assert shlex.split(read_back("command", supervisor_command(["/bin/prog", word]))) == ["/bin/prog", word]


def test_environment_reads_back_as_given() -> None:
    env = {"GREETING": "hi there", "QUOTED": 'it"s', "APOS": "it's", "PCT": "100%", "COMMA": "a,b", "EMPTY": ""}
    raw = read_back("environment", supervisor_environment(env))
    assert dict_of_key_value_pairs(raw) == env


@pytest.mark.parametrize(
    "env",
    [{"BOTH": "it's \"x\""}, {"EDGE": '"quoted"'}, {"NL": "a\nb"}, {"1BAD": "x"}, {"COMMENT": "a ;b"}],
)
def test_environment_values_supervisor_cannot_carry_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        supervisor_environment(env)


@pytest.mark.parametrize("value", ["a\nb", " lead", "trail ", "x ;comment", "x #comment"])
def test_plain_values_that_would_be_mangled_are_refused(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        supervisor_value(value, "directory")
    assert "directory" in str(info.value)


def test_plain_values_keep_spaces_and_percent() -> None:
    assert read_back("directory", supervisor_value("/srv/my apps/50%/current")) == "/srv/my apps/50%/current"


def test_a_command_with_a_line_break_is_refused() -> None:
    with pytest.raises(ConfigError):
        supervisor_command(["/bin/echo", "two\nlines"])


@pytest.mark.parametrize("word", TRICKY_WORDS)
def test_shell_quote_gives_one_word_back(word: str) -> None:
    out = subprocess.run(["sh", "-c", f"printf '%s' {shell_quote(word)}"], capture_output=True, text=True, check=True)
    assert out.stdout == word
