"""What bind() and connect() hand back, as pyzmq shapes it: the endpoint as text, which is also
a context manager (`with sock.bind(url):` unbinds at the end of the block, `with
sock.connect(url):` disconnects)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EndpointContext(str):
    """The endpoint bind() resolved (or connect() was given), as text. In a `with` block it
    gives the socket, and at the block's end it undoes the bind or the connect, as pyzmq's
    SocketContext does (unless the socket was closed meanwhile)."""

    def __new__(cls, endpoint: str, socket: Any, undo: Callable[[str], None]) -> EndpointContext:
        made = super().__new__(cls, endpoint)
        made._socket = socket
        made._undo = undo
        return made

    _socket: Any
    _undo: Callable[[str], None]

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        # Pickled (handed to another process, say) as the plain text it is: the socket stays.
        return (str, (str(self),))

    def __enter__(self) -> Any:
        return self._socket

    def __exit__(self, *exc: object) -> None:
        if not self._socket.closed:
            self._undo(str(self))
