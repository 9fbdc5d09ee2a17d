"""Talking to supervisord (its own API and the supz extension) with typed errors."""

from __future__ import annotations

import configparser
import errno
import http.client
import socket
import xmlrpc.client as xmlrpclib
from typing import TYPE_CHECKING, Any

from supz.audit import Who, current_who
from supz.errors import PolicyRefused, SupervisordDown, SupervisorFault, SupzError
from supz.paths import HostPaths
from supz.supervisord.faults import error_for

if TYPE_CHECKING:  # typing.Self is 3.11+; only the type checker reads it
    from typing_extensions import Self


def serverurl_for(paths: HostPaths) -> str:
    """The URL supervisorctl would use for this host: [supervisorctl] serverurl, else the socket."""
    conf = paths.supervisord_conf
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    try:
        parser.read(conf, encoding="utf-8")
        url = parser.get("supervisorctl", "serverurl")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return f"unix://{paths.socket}"
    return url.replace("%(here)s", str(conf.parent)).strip()


def context(command: str, args: list[str] | tuple[str, ...] = (), who: Who | None = None,
            *, audit: bool = True, reason: str = "") -> dict[str, Any]:
    """What the extension writes in the audit line and the registry's history: who runs which
    command, and why (audit=False: no audit line, the caller writes its own for the whole command)."""
    who = who or current_who()
    data: dict[str, Any] = {"user": who.user, "real_user": who.real_user, "command": command, "args": list(args)}
    if not audit:
        data["audit"] = False
    if reason:
        data["reason"] = reason
    return data


class RpcClient:
    """supervisord's API and the supz extension with typed errors, over any XML-RPC proxy.

    `SupervisorClient` opens the host's socket itself; `ControllerClient` borrows a supervisorctl
    controller's proxies (as supervisor's own plugins do), so supzcli runs on a fake controller.
    """

    serverurl: str = ""

    def _namespace(self, namespace: str) -> Any:
        raise NotImplementedError

    def _reset(self) -> None:
        """Forget a connection that failed, so it cannot poison the next call."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, namespace: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self._namespace(namespace), method)(*args)
        except xmlrpclib.Fault as fault:
            message = str(fault.faultString)
            if fault.faultCode >= 1000:
                raise error_for(fault.faultCode, message) from fault
            if fault.faultCode == 1 and namespace == "supz":  # UNKNOWN_METHOD
                raise SupzError(f"supervisord at {self.serverurl} has no supz.{method} "
                                "(extension not loaded, or older than this client)") from fault
            raise SupervisorFault(message, fault.faultCode) from fault
        except xmlrpclib.ProtocolError as exc:
            if exc.errcode == 401:
                raise PolicyRefused(f"supervisord at {self.serverurl} requires a user name and password") from exc
            raise SupervisordDown(f"supervisord at {self.serverurl} answered HTTP {exc.errcode}") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._reset()
            if isinstance(exc, OSError):
                raise self._down(exc) from exc
            raise SupervisordDown(f"supervisord at {self.serverurl} broke the connection: {exc!r}") from exc

    def _down(self, exc: OSError) -> SupzError:
        code = getattr(exc, "errno", None) or (exc.args[0] if exc.args and isinstance(exc.args[0], int) else None)
        if code in (errno.EACCES, errno.EPERM):
            return PolicyRefused(f"no permission to use {self.serverurl} (are you in the socket's group?)")
        if code in (errno.ECONNREFUSED, errno.ENOENT) or isinstance(exc, socket.gaierror):
            return SupervisordDown(f"supervisord is not running ({self.serverurl})")
        return SupervisordDown(f"cannot reach supervisord at {self.serverurl}: {exc}")

    def supz(self, method: str, *args: Any) -> Any:
        return self.call("supz", method, *args)

    def supervisor(self, method: str, *args: Any) -> Any:
        return self.call("supervisor", method, *args)

    def is_up(self) -> bool:
        try:
            return bool(self.supervisor("getState").get("statename") == "RUNNING")
        except SupzError:
            return False


class SupervisorClient(RpcClient):
    def __init__(self, serverurl: str, username: str | None = None, password: str | None = None) -> None:
        from supervisor.xmlrpc import SupervisorTransport

        self.serverurl = serverurl
        self.transport = SupervisorTransport(username, password, serverurl)
        self.proxy = xmlrpclib.ServerProxy("http://127.0.0.1", transport=self.transport)

    @classmethod
    def for_host(cls, paths: HostPaths) -> SupervisorClient:
        return cls(serverurl_for(paths))

    def _namespace(self, namespace: str) -> Any:
        return getattr(self.proxy, namespace)

    def _reset(self) -> None:
        self.transport.close()

    def close(self) -> None:
        self.transport.close()

class ControllerClient(RpcClient):
    """The proxies of a supervisorctl `Controller` (`ctl.get_server_proxy(namespace)`)."""

    def __init__(self, ctl: Any) -> None:
        self.ctl = ctl
        self.serverurl = str(getattr(ctl.options, "serverurl", "") or "supervisord")
        self._proxies: dict[str, Any] = {}

    def _namespace(self, namespace: str) -> Any:
        if namespace not in self._proxies:
            self._proxies[namespace] = self.ctl.get_server_proxy(namespace)
        return self._proxies[namespace]

    def _reset(self) -> None:
        self._proxies.clear()
