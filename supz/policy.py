"""The supz policy ([shell] refuse/confirm): which commands are refused and which need a
confirmation. Pure decisions, used by supzcli, sup_run.sh and the Python API alike."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from supz.config import ShellPolicy
from supz.errors import PolicyRefused

CONFIRM_WORD = "yes"


class Verdict(str, Enum):
    RUN = "run"
    REFUSE = "refuse"
    CONFIRM = "confirm"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    rule: str = ""


def decide(policy: ShellPolicy, command: str, args: list[str]) -> Decision:
    """Refuse wins over confirm; a confirm rule 'stop all' matches `stop` with `all` among its args."""
    if command in policy.refuse:
        return Decision(Verdict.REFUSE, command)
    for rule in policy.confirm:
        words = rule.split()
        if words and words[0] == command and all(word in args for word in words[1:]):
            return Decision(Verdict.CONFIRM, rule)
    return Decision(Verdict.RUN)


def refusal_message(command: str, config_file: str) -> str:
    return f"refused: '{command}' is disabled by the supz policy (refuse = ... in {config_file})"


def needs_yes_message(rule: str) -> str:
    return f"refused: '{rule}' needs a confirmation: add --yes in one-shot mode"


def confirmed(answer: str | None) -> bool:
    return (answer or "").strip().lower() == CONFIRM_WORD


def check_policy(policy: ShellPolicy, command: str, args: list[str], *, yes: bool = False) -> None:
    """The policy for a caller that cannot ask (sup_run.sh, a script): refused, or confirmed by `yes`."""
    decision = decide(policy, command, args)
    if decision.verdict is Verdict.REFUSE:
        raise PolicyRefused(refusal_message(command, "the supz config"))
    if decision.verdict is Verdict.CONFIRM and not yes:
        raise PolicyRefused(f"refused: '{decision.rule}' needs a confirmation: add --yes")
