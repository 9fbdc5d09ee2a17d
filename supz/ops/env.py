"""What every operation needs: the host, its config, the caller, and a way to reach supervisord."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from supz.audit import Who, current_who
from supz.config import SupzConfig, load_config, read_config
from supz.paths import HostPaths
from supz.registry import Registry
from supz.supervisord.client import RpcClient, SupervisorClient, context


@dataclass(frozen=True)
class Command:
    """The command an audit line names: what the caller ran, with its arguments."""

    name: str
    args: tuple[str, ...] = ()
    reason: str = ""  # why (a stop's reason): in the audit line and the registry's history

    @classmethod
    def of(cls, name: str, args: Sequence[str] = (), reason: str = "") -> Command:
        return cls(name, tuple(args), reason)


@dataclass(frozen=True)
class OpsEnv:
    """The environment of an operation. `connect` opens a client (a new one per operation):
    the host's socket, or a supervisorctl controller's proxies in supzcli."""

    paths: HostPaths
    config: SupzConfig
    who: Who
    connect: Callable[[], RpcClient]
    confirmed: bool = False  # the policy's confirmation was given (--yes, a typed 'yes', yes=True)

    @classmethod
    def for_host(cls, paths: HostPaths, config: SupzConfig | None = None) -> OpsEnv:
        """The host at `paths`, reached through its own socket, as the user running this process."""
        config = config if config is not None else load_config(read_config(paths.config_file))
        return cls(paths, config, current_who(config.host), lambda: SupervisorClient.for_host(paths))

    def confirming(self, yes: bool) -> OpsEnv:
        """This environment with the confirmation given or not (the extension checks it too)."""
        return replace(self, confirmed=yes)

    def registry(self) -> Registry:
        return Registry(self.paths, host=self.config.host, backups=self.config.backups)

    def context(self, command: Command, *, audit: bool = True) -> dict[str, Any]:
        """The caller and command the extension writes into its audit line (audit=False: none), and
        whether the policy's confirmation was given (the extension holds a caller that is not root
        to the policy too)."""
        return dict(context(command.name, list(command.args), self.who, audit=audit, reason=command.reason),
                    confirmed=self.confirmed)
