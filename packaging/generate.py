"""Generate man pages and bash completions from the CLI definitions, so they cannot drift.

`supz(1)` walks the click group; `supzcli(1)` reads supzcli's usage text and the help of every
command its controller plugin defines; bash completion for `supz` is click's own, for `supzcli`
a small script that completes command names (from the same plugin) and program names (asking
`supzcli status`, which the socket group may run; parked applications included).

    python packaging/generate.py OUT      # writes OUT/usr/share/man/man1/*.1.gz and
                                          # OUT/usr/share/bash-completion/completions/*
"""

from __future__ import annotations

import datetime
import gzip
import inspect
import sys
from pathlib import Path
from typing import Any

import click
from click.shell_completion import BashComplete

from supz import __version__
from supz.cli.main import cli
from supz.errors import MEANINGS
from supz.shell import main as shell_main
from supz.shell.plugin import SupzControllerPlugin

# Commands whose last words are program names (`supzcli stop <TAB>`).
NAME_COMMANDS = ("start", "stop", "restart", "status", "pid", "signal", "tail", "fg", "clear", "remove",
                 "add", "update", "avail")


def _roff(text: str) -> str:
    """Escape text for roff: backslashes, and a leading dot or quote on a line."""
    lines = []
    for line in text.replace("\\", "\\e").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _header(name: str, summary: str) -> list[str]:
    date = datetime.date.today().isoformat()
    return [f'.TH {name.upper()} 1 "{date}" "supz {__version__}" "supz manual"', ".SH NAME",
            f"{name} \\- {_roff(summary)}"]


def _options(command: click.Command, ctx: click.Context) -> list[str]:
    out: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        out += [".TP", f"\\fB{_roff(record[0])}\\fR", _roff(record[1])]
    return out


def _walk(command: click.Command, ctx: click.Context, path: list[str], out: list[str]) -> None:
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            _walk(sub, click.Context(sub, info_name=name, parent=ctx), path + [name], out)
        return
    usage = " ".join(command.collect_usage_pieces(ctx))
    out += [".SS " + _roff(" ".join(path)), f"\\fBsupz {_roff(' '.join(path))}\\fR {_roff(usage)}", ".PP",
            _roff(inspect.cleandoc(command.help or "")), ".PP"]
    out += _options(command, ctx)


def supz_manpage() -> str:
    """supz(1): every command, its usage, help and options, from the click definitions."""
    ctx = click.Context(cli, info_name="supz")
    out = _header("supz", "the supz admin command: init, registry, apps, sync, failover, status")
    out += [".SH SYNOPSIS", "\\fBsupz\\fR [\\fB\\-\\-root\\fR \\fIDIR\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
            ".SH DESCRIPTION", _roff(inspect.cleandoc(cli.help or "")), ".SH OPTIONS"]
    out += _options(cli, ctx)
    out += [".SH COMMANDS"]
    _walk(cli, ctx, [], out)
    out += _common_tail("supzcli(1), supervisord(1), keepalived(8)")
    return "\n".join(out) + "\n"


def _common_tail(see_also: str) -> list[str]:
    out = [".SH EXIT STATUS"]
    for code, meaning in MEANINGS.items():
        out += [".TP", f"\\fB{int(code)}\\fR ({code.name})", _roff(meaning)]
    out += [".SH ENVIRONMENT", ".TP", "\\fBSUPZ_ROOT\\fR",
            "The host's root folder (default /); every path derives from it.",
            ".SH FILES", ".TP", "/etc/supz/supz.conf", "supz's config.", ".TP", "/var/lib/supz/registry/",
            "The registry: active/ and parked/ program files, manifest.json.", ".TP", "/var/log/supz/audit.jsonl",
            "The audit trail.", ".TP", "/etc/supervisor/conf.d/supz.conf",
            "supz's settings for Debian's supervisord (written by \\fBsupz init\\fR).",
            ".SH SEE ALSO", see_also, "/usr/share/doc/supz/README.md"]
    return out


class _Capture:
    """Stands in for the supervisorctl controller: collects what help_* methods print."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def output(self, message: str) -> None:
        self.lines.append(message)


def supzcli_commands() -> dict[str, list[str]]:
    """Each supzcli command and its help lines, from the controller plugin supzcli runs."""
    capture = _Capture()
    plugin: Any = SupzControllerPlugin(capture)
    found: dict[str, list[str]] = {}
    for attr in sorted(dir(plugin)):
        if not attr.startswith("do_"):
            continue
        name = attr[3:]
        capture.lines = []
        helper = getattr(plugin, f"help_{name}", None)
        if helper is not None:
            helper()
        found[name] = list(capture.lines)
    return found


def supzcli_manpage() -> str:
    """supzcli(1): usage and options from supzcli's own text, every command's help from its plugin."""
    doc = shell_main.__doc__ or ""
    summary, _, body = doc.partition("\n")
    out = _header("supzcli", summary.split("--", 1)[-1].strip())
    out += [".SH SYNOPSIS", ".nf", _roff(body.strip()), ".fi", ".SH COMMANDS"]
    for name, lines in supzcli_commands().items():
        out += [".TP", f"\\fB{name}\\fR"]
        out += [".nf", _roff("\n".join(line.replace("\t", "  ") for line in lines)), ".fi"] if lines else [""]
    out += _common_tail("supz(1), supervisorctl(1)")
    return "\n".join(out) + "\n"


def supz_completion() -> str:
    """click's own bash completion for supz (the COMP_WORDS/COMP_CWORD protocol, _SUPZ_COMPLETE)."""
    return BashComplete(cli, {}, "supz", "_SUPZ_COMPLETE").source()


SUPZCLI_COMPLETION = """\
# bash completion for supzcli (generated from supzcli's commands by packaging/generate.py).
# Command names are fixed here; program names come from `supzcli status` (the socket group may
# run it), active and parked applications, groups and their processes.
_supzcli_names() {
    supzcli status 2>/dev/null | awk '{print $1; if (index($1, ":")) {split($1, a, ":"); print a[1] ":*"}}' | sort -u
}
_supzcli() {
    local cur="${COMP_WORDS[COMP_CWORD]}" i word command=""
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${COMP_WORDS[i]}"
        case "$word" in
            -c|-s|-u|-p|-r|--configuration|--serverurl|--username|--password|--history-file) (( i++ )) ;;
            -*) ;;
            *) command="$word"; break ;;
        esac
    done
    if [ -z "$command" ]; then
        COMPREPLY=( $(compgen -W "@COMMANDS@" -- "$cur") )
        return 0
    fi
    case "$command" in
        @NAME_COMMANDS@) COMPREPLY=( $(compgen -W "all $(_supzcli_names)" -- "$cur") ) ;;
        help) COMPREPLY=( $(compgen -W "@COMMANDS@" -- "$cur") ) ;;
        *) COMPREPLY=() ;;
    esac
    return 0
}
complete -F _supzcli supzcli
"""


def supzcli_completion() -> str:
    commands = sorted(set(supzcli_commands()) | {"help"})
    names = [name for name in NAME_COMMANDS if name in commands]
    return (SUPZCLI_COMPLETION.replace("@COMMANDS@", " ".join(commands))
            .replace("@NAME_COMMANDS@", "|".join(names)))


def write(out: Path) -> list[Path]:
    """Write every generated file under `out` (a package tree); the paths written."""
    man = out / "usr/share/man/man1"
    completions = out / "usr/share/bash-completion/completions"
    man.mkdir(parents=True, exist_ok=True)
    completions.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("supz", supz_manpage()), ("supzcli", supzcli_manpage())):
        path = man / f"{name}.1.gz"
        path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
        written.append(path)
    for name, text in (("supz", supz_completion()), ("supzcli", supzcli_completion())):
        path = completions / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write(Path(sys.argv[1])):
        print(written_path)
