"""Who is on the other end of the request supervisord is serving.

On the unix socket the kernel says (SO_PEERCRED): the peer's uid, never what a client claims in
its call. On an inet server only the HTTP user name is known, and such a caller is never root.
supervisord serves one request at a time in one thread, so the caller of the request being
served is kept in a module variable while its handler runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

UNIX, INET, INTERNAL = "unix", "inet", "internal"
_PEERCRED = struct.Struct("3i")  # pid, uid, gid
_MARK = "_supz_caller_installed"


@dataclass(frozen=True)
class Caller:
    """The caller of a request: `kind` unix (credentials from the kernel), inet, or internal
    (supervisord itself: its own start, a deferred step, an event)."""

    kind: str
    user: str
    uid: int | None = None
    pid: int | None = None

    @property
    def is_root(self) -> bool:
        """Root over the socket (sudo's SUDO_USER behind it is believed)."""
        return self.uid == 0

    @property
    def owns_supervisord(self) -> bool:
        """Root, the user supervisord runs as (a plain user's own demo or test root), or
        supervisord's own code: held by supzcli's prompt only, never by the extension."""
        return self.kind == INTERNAL or self.uid == 0 or (self.uid is not None and self.uid == os.geteuid())


SUPERVISORD = Caller(INTERNAL, "supervisord")
_current: Caller = SUPERVISORD


def current() -> Caller:
    """The caller of the request being served; supervisord itself outside any request."""
    return _current


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def peer_of(request: Any) -> Caller:
    """The caller behind a medusa request, from its channel's socket."""
    sock = getattr(getattr(request, "channel", None), "socket", None)
    if sock is not None and getattr(sock, "family", None) == socket.AF_UNIX:
        try:
            pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        except OSError:
            return Caller(UNIX, "unknown")
        return Caller(UNIX, _user_name(uid), uid=uid, pid=pid)
    return Caller(INET, "inet")


@contextlib.contextmanager
def serving(caller: Caller) -> Iterator[None]:
    """Make `caller` current while a handler runs on its behalf."""
    global _current
    previous, _current = _current, caller
    try:
        yield
    finally:
        _current = previous


def install() -> None:
    """Wrap the two places supervisord runs code for a client: the XML-RPC handler and the web
    UI's producer (which calls the RPC interface directly, without XML-RPC)."""
    from supervisor import web, xmlrpc

    handler = xmlrpc.supervisor_xmlrpc_handler
    if getattr(handler, _MARK, False):
        return
    continue_request = handler.continue_request

    @functools.wraps(continue_request)
    def continue_with_caller(self: Any, data: Any, request: Any) -> Any:
        with serving(peer_of(request)):
            return continue_request(self, data, request)

    handler.continue_request = continue_with_caller
    more = web.DeferredWebProducer.more

    @functools.wraps(more)
    def more_with_caller(self: Any) -> Any:
        with serving(peer_of(self.request)):
            return more(self)

    web.DeferredWebProducer.more = more_with_caller
    setattr(handler, _MARK, True)
