"""The PLAIN mechanism (RFC 24): a user name and password in clear, checked by the ZAP handler.

    C: HELLO (username, password)     S: WELCOME   (after ZAP said 200)
    C: INITIATE (metadata)            S: READY (metadata)

PLAIN protects nothing on the wire: use it only where the network itself is trusted.
As in libzmq, a PLAIN server without a ZAP handler refuses every client (there is nobody to check
the password), and a refused client gets ERROR with the ZAP status code.
"""

from __future__ import annotations

from enum import Enum

from ..constants import ProtocolErrorCode
from .commands import ProtocolError, decode_properties
from .mechanism import Mechanism

#: RFC 24: each credential is a short string (one length octet).
MAX_CREDENTIAL = 255


class PlainState(Enum):
    # server
    WAITING_FOR_HELLO = "waiting for hello"
    WAITING_FOR_ZAP = "waiting for zap"
    WAITING_FOR_INITIATE = "waiting for initiate"
    # client
    WAITING_FOR_WELCOME = "waiting for welcome"
    WAITING_FOR_READY = "waiting for ready"
    # both
    STARTING = "starting"
    DONE = "done"


class PlainClient(Mechanism):
    name = b"PLAIN"

    def __init__(self, username: bytes, password: bytes, **kwargs) -> None:
        super().__init__(as_server=False, **kwargs)
        if len(username) > MAX_CREDENTIAL or len(password) > MAX_CREDENTIAL:
            raise ValueError("PLAIN user names and passwords are at most 255 bytes")
        self.username = username
        self.password = password
        self.state = PlainState.STARTING
        self._metadata = b""

    def start(self, metadata: bytes) -> None:
        self._metadata = metadata
        u, p = self.username, self.password
        self._send(b"HELLO", bytes((len(u),)) + u + bytes((len(p),)) + p)
        self.state = PlainState.WAITING_FOR_WELCOME

    def command_received(self, name: bytes, rest: bytes) -> None:
        if name == b"WELCOME" and self.state is PlainState.WAITING_FOR_WELCOME:
            if rest:
                raise ProtocolError(
                    "WELCOME has a body", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_WELCOME
                )
            self._send(b"INITIATE", self._metadata)
            self.state = PlainState.WAITING_FOR_READY
        elif name == b"READY" and self.state is PlainState.WAITING_FOR_READY:
            self.peer_properties = decode_properties(rest)
            self.state = PlainState.DONE
            self.complete = True
        else:
            raise ProtocolError(
                f"PLAIN client did not expect {name!r}", ProtocolErrorCode.ZMTP_UNEXPECTED_COMMAND
            )


class PlainServer(Mechanism):
    name = b"PLAIN"
    needs_zap_handler = True  # nobody else can check a password (libzmq: same)

    def __init__(self, **kwargs) -> None:
        super().__init__(as_server=True, **kwargs)
        self.state = PlainState.STARTING
        self._metadata = b""

    def start(self, metadata: bytes) -> None:
        self._metadata = metadata
        self.state = PlainState.WAITING_FOR_HELLO

    def command_received(self, name: bytes, rest: bytes) -> None:
        if name == b"HELLO" and self.state is PlainState.WAITING_FOR_HELLO:
            username, password = _parse_hello(rest)
            self._ask_zap(b"PLAIN", (username, password))
            self.state = PlainState.WAITING_FOR_ZAP
        elif name == b"INITIATE" and self.state is PlainState.WAITING_FOR_INITIATE:
            self.peer_properties = decode_properties(rest)
            self._send(b"READY", self._metadata)
            self.state = PlainState.DONE
            self.complete = True
        else:
            raise ProtocolError(
                f"PLAIN server did not expect {name!r}", ProtocolErrorCode.ZMTP_UNEXPECTED_COMMAND
            )

    def _zap_passed(self) -> None:
        self._send(b"WELCOME")
        self.state = PlainState.WAITING_FOR_INITIATE


def _parse_hello(rest: bytes) -> tuple[bytes, bytes]:
    """username-length, username, password-length, password: and nothing after."""
    malformed = ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_HELLO
    if not rest:
        raise ProtocolError("PLAIN HELLO without a user name", malformed)
    ulen = rest[0]
    if len(rest) < 1 + ulen + 1:
        raise ProtocolError("PLAIN HELLO user name runs past the command", malformed)
    username = rest[1 : 1 + ulen]
    plen = rest[1 + ulen]
    if len(rest) != 2 + ulen + plen:
        raise ProtocolError("PLAIN HELLO password has the wrong length", malformed)
    return username, rest[2 + ulen :]
