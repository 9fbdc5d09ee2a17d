"""The extension's policy decision: who may run what (supz.supervisord.gate.permit)."""

from __future__ import annotations

import os

import pytest

from supz.config import ShellPolicy
from supz.errors import PolicyRefused
from supz.supervisord.caller import INET, SUPERVISORD, UNIX, Caller
from supz.supervisord.gate import permit

POLICY = ShellPolicy()
OPERATOR = Caller(UNIX, "alice", uid=os.geteuid() + 4242, pid=1)


def test_an_operator_is_held_to_the_policy() -> None:
    with pytest.raises(PolicyRefused, match="refused for alice: 'shutdown'"):
        permit(POLICY, OPERATOR, "shutdown", [], confirmed=False)
    with pytest.raises(PolicyRefused, match="needs a confirmation"):
        permit(POLICY, OPERATOR, "stop", ["all"], confirmed=False)
    permit(POLICY, OPERATOR, "stop", ["all"], confirmed=True)
    permit(POLICY, OPERATOR, "stop", ["web"], confirmed=False)


def test_an_inet_caller_is_never_privileged() -> None:
    with pytest.raises(PolicyRefused):
        permit(POLICY, Caller(INET, "inet"), "reload", [], confirmed=False)


def test_root_supervisord_itself_and_the_owner_of_supervisord_are_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user supervisord runs as (root on a real host, the operator on a demo root) owns it:
    `supz down` must be able to shut it down."""
    from supz.supervisord import caller

    monkeypatch.setattr(caller.os, "geteuid", lambda: 1000)  # a supervisord run by a plain user
    owner = Caller(UNIX, "owner", uid=1000, pid=1)
    for who in (Caller(UNIX, "root", uid=0, pid=1), SUPERVISORD, owner):
        permit(POLICY, who, "shutdown", [], confirmed=False)
