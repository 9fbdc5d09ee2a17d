"""Pure logic: the name rule, the shell policy, program-file validation, conf adaptation."""

from __future__ import annotations

import pytest

from supz.config import ShellPolicy
from supz.errors import InvalidName, InvalidProgramFile
from supz.host.adapt import adapt_supervisord_conf
from supz.names import validate_name
from supz.policy import Verdict, confirmed, decide
from supz.programfile import parse_program_text


@pytest.mark.parametrize("name", ["a", "A9", "app_1", "web-2.prod", "x" * 64, "_x", "9"])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name, why",
    [("../x", "dot"), ("a/b", "letters"), ("a b", "letters"), ("$(x)", "letters"), (";", "letters"),
     ("", "empty"), (".a", "dot"), ("-a", "hyphen"), ("x" * 65, "longer"), ("é", "letters"), ("a\nb", "letters")],
)
def test_bad_names_say_why_in_one_line(name: str, why: str) -> None:
    with pytest.raises(InvalidName) as caught:
        validate_name(name)
    assert why in str(caught.value) and "\n" not in str(caught.value).replace(repr(name), "")


def test_policy_refuses_then_confirms() -> None:
    policy = ShellPolicy()
    assert decide(policy, "shutdown", []).verdict is Verdict.REFUSE
    assert decide(policy, "reload", []).verdict is Verdict.REFUSE
    assert decide(policy, "stop", ["all"]).verdict is Verdict.CONFIRM
    assert decide(policy, "stop", ["app1"]).verdict is Verdict.RUN
    assert decide(policy, "restart", ["a", "all"]).verdict is Verdict.CONFIRM
    assert decide(policy, "remove", ["a"]).verdict is Verdict.CONFIRM
    assert decide(ShellPolicy(refuse=(), confirm=()), "shutdown", []).verdict is Verdict.RUN
    assert confirmed(" YES\n") and not confirmed("y") and not confirmed(None)


def test_program_file_errors_name_the_line() -> None:
    with pytest.raises(InvalidProgramFile, match=r"a.conf: line 3: invalid literal"):
        parse_program_text("[program:a]\ncommand = x\nstartsecs = abc\n", "a")
    with pytest.raises(InvalidProgramFile, match=r"line 1: .*no section headers"):
        parse_program_text("garbage\n", "a")
    with pytest.raises(InvalidProgramFile, match=r"line 3: section \[supervisord\] is not allowed"):
        parse_program_text("[program:a]\ncommand = x\n[supervisord]\n", "a")
    with pytest.raises(InvalidProgramFile, match="has no command"):
        parse_program_text("[program:a]\nnumprocs = 1\n", "a")
    with pytest.raises(InvalidProgramFile, match=r"%\(here\)s is not allowed"):
        parse_program_text("[program:a]\ncommand = %(here)s/run\n", "a")


def test_program_file_spec() -> None:
    spec = parse_program_text(
        "[program:w]\ncommand = /bin/sleep 9\nprocess_name = %(program_name)s_%(process_num)02d\n"
        "numprocs = 2\nnumprocs_start = 1\nstopwaitsecs = 7\nstartsecs = 2\n",
        "w",
    )
    assert spec.process_names == ("w_01", "w_02")
    assert (spec.startsecs, spec.stopwaitsecs, spec.autostart) == (2, 7, True)


DEBIAN_CONF = """\
; supervisor config file

[unix_http_server]
file=/var/run/supervisor.sock   ; (the path to the socket file)
chmod=0700                       ; sockef file mode (default 0700)

[supervisord]
logfile=/var/log/supervisor/supervisord.log ; (main log file;default $CWD/supervisord.log)
pidfile=/var/run/supervisord.pid ; (supervisord pidfile;default supervisord.pid)
childlogdir=/var/log/supervisor            ; ('AUTO' child log dir, default $TEMP)

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///var/run/supervisor.sock ; use a unix:// URL  for a unix socket

[include]
files = /etc/supervisor/conf.d/*.conf
"""
INCLUDE = ["/etc/supz/host.d/*.conf"]
REGISTRY_INCLUDE = ("/var/lib/supz/registry/active/*.conf",)


def test_adapting_debians_supervisord_conf_keeps_comments_and_reports_each_change() -> None:
    text, changes, skipped = adapt_supervisord_conf(DEBIAN_CONF, include=INCLUDE, root="/", minfds=8192)
    assert changes == [
        "set minfds = 8192 in [supervisord]",
        "added [rpcinterface:supz]",
        f"included {' '.join(INCLUDE)}",
    ]
    assert skipped == []
    assert "; (the path to the socket file)" in text
    assert f"files = /etc/supervisor/conf.d/*.conf {' '.join(INCLUDE)}" in text
    # Running it again changes nothing.
    again, changes, _ = adapt_supervisord_conf(text, include=INCLUDE, root="/", minfds=8192)
    assert again == text and changes == []


def test_adapting_drops_the_registry_include_older_versions_wrote() -> None:
    old = DEBIAN_CONF.replace("files = /etc/supervisor/conf.d/*.conf",
                              f"files = /etc/supervisor/conf.d/*.conf {INCLUDE[0]} {REGISTRY_INCLUDE[0]}  ; supz")
    text, changes, _ = adapt_supervisord_conf(old, include=INCLUDE, exclude=REGISTRY_INCLUDE, root="/", minfds=8192)
    assert f"files = /etc/supervisor/conf.d/*.conf {INCLUDE[0]}  ; supz" in text
    assert any(c.startswith(f"no longer includes {REGISTRY_INCLUDE[0]}") for c in changes)
    again, changes, _ = adapt_supervisord_conf(text, include=INCLUDE, exclude=REGISTRY_INCLUDE, root="/", minfds=8192)
    assert again == text and not any("includes" in c for c in changes)


def test_adapting_leaves_alone_what_it_does_not_understand() -> None:
    doubled = DEBIAN_CONF + "\n[supervisord]\nminfds=10\n"
    text, changes, skipped = adapt_supervisord_conf(doubled, include=INCLUDE, root="/", minfds=8192)
    assert text == doubled and changes == [] and "appears twice" in skipped[0]
    odd = DEBIAN_CONF.replace("[supervisord]\n", "[supervisord]\nminfds=%(ENV_FDS)s\n")
    text, changes, skipped = adapt_supervisord_conf(odd, include=INCLUDE, root="/", minfds=8192)
    assert "minfds=%(ENV_FDS)s" in text and any("not a number" in s for s in skipped)
    higher = DEBIAN_CONF.replace("[supervisord]\n", "[supervisord]\nminfds = 65536\n")
    _, changes, _ = adapt_supervisord_conf(higher, include=INCLUDE, root="/", minfds=8192)
    assert not any("minfds" in c for c in changes)


def test_set_options_edits_one_section_in_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from supz.config import set_options

    conf = tmp_path / "supz.conf"
    conf.write_text("[supz]\nhost = a\n\n[sync]\n; who to push to\npeers =\ntimeout = 30\n\n[ha]\nenabled = no\n")
    set_options(conf, "sync", {"peers": "root@b:/srv", "retry_min": 0.2})
    set_options(conf, "failover", {"vip": "10.0.0.1/24"})
    text = conf.read_text()
    assert "[sync]\npeers = root@b:/srv\nretry_min = 0.2\n; who to push to\ntimeout = 30\n" in text
    assert text.count("[sync]") == 1 and text.endswith("[failover]\nvip = 10.0.0.1/24\n")
    assert "[ha]\nenabled = no" in text
