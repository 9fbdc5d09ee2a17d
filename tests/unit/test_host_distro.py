"""The real-host pieces that need no real host: reading supervisord's settings, supz's conf.d file,
the drop-in, the interpreter of the distribution's supervisord."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

from supz.errors import NotInstalled
from supz.host import distro
from supz.paths import HostPaths

DEBIAN = """\
[unix_http_server]
file=/var/run/supervisor.sock   ; (the path to the socket file)
chmod=0700                       ; sockef file mode (default 0700)

[supervisord]
logfile=/var/log/supervisor/supervisord.log ; (main log file;default $CWD/supervisord.log)
pidfile=/var/run/supervisord.pid ; (supervisord pidfile;default supervisord.pid)

[supervisorctl]
serverurl=unix:///var/run/supervisor.sock ; use a unix:// URL  for a unix socket

[include]
files = %(here)s/conf.d/*.conf
"""


def test_settings_are_read_with_the_included_files_later_ones_winning(tmp_path: Path) -> None:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(DEBIAN)
    (tmp_path / "conf.d").mkdir()
    found = distro.read_settings(conf, tmp_path / "default.pid")
    assert found == distro.SupervisordSettings(Path("/var/run/supervisord.pid"), Path("/var/run/supervisor.sock"),
                                               0o700, None)
    text = distro.supz_conf_text(HostPaths(Path("/")), minfds=16384, socket_group="ops")
    (tmp_path / "conf.d" / "supz.conf").write_text(text)
    found = distro.read_settings(conf, tmp_path / "default.pid")
    assert (found.chmod, found.chown) == (0o770, "root:ops")


def test_supz_conf_d_file_is_what_supervisor_reads_as_the_extension_and_minfds() -> None:
    text = distro.supz_conf_text(HostPaths(Path("/")), minfds=16384, socket_group=None)
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(text)
    assert parser.get("rpcinterface:supz", "supervisor.rpcinterface_factory") == distro.EXTENSION_FACTORY
    assert parser.get("rpcinterface:supz", "root") == "/"
    assert parser.getint("supervisord", "minfds") == 16384
    assert not parser.has_section("unix_http_server")


def test_the_dropin_turns_reload_into_update_and_leaves_execstart_alone() -> None:
    text = distro.dropin_text(Path("/usr/bin/supervisorctl"), Path("/etc/supervisor/supervisord.conf"))
    lines = text.splitlines()
    assert "ExecReload=" in lines
    assert "ExecReload=/usr/bin/supervisorctl -c /etc/supervisor/supervisord.conf update" in lines
    assert not any(line.startswith("ExecStart") for line in lines)


def test_init_refuses_when_the_distributions_python_cannot_import_supz(tmp_path: Path) -> None:
    script = tmp_path / "supervisord"
    script.write_text("#!/usr/bin/env python3\n")
    assert distro.interpreter(script) == Path("python3")
    script.write_text(f"#!{sys.executable} -u\n")
    assert distro.interpreter(script) == Path(sys.executable)
    # The venv's python imports supz (it is installed there): accepted.
    distro.require_importable(script)
    bare = tmp_path / "python"
    bare.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named supz' >&2\nexit 1\n")
    bare.chmod(0o755)
    script.write_text(f"#!{bare}\n")
    with pytest.raises(NotInstalled, match="cannot import supz.*nothing was changed.*Debian package"):
        distro.require_importable(script)


def test_a_root_folder_is_no_distribution(tmp_path: Path) -> None:
    assert distro.detect(HostPaths(tmp_path)) is None
    assert distro.checks(HostPaths(tmp_path)) == []
