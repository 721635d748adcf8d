"""The opening of a ZMTP connection (RFC 23 and 37): the greeting, the handshake's command
frames, the peer's metadata, and the events the codec hands out.

`ZMTPConnection` (engine/zmtp.py) is the whole sans-I/O codec; this is its first part, apart
because it is a concept of its own: everything before the first message, where the security
mechanism (engine/security/) leads and the codec frames its commands, checks the peer's socket
type and identity, and passes ZAP requests out as events. The traffic phase (frames, runs,
sealed frames, PING/PONG) stays in engine/zmtp.py.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from .constants import (
    COMPATIBLE_PEERS,
    DEALER,
    REQ,
    ROUTER,
    SOCKET_TYPE_NAMES,
    ProtocolErrorCode,
)
from .security.commands import (
    AuthenticationFailed,
    ProtocolError,
    encode_command,
    encode_properties,
    parse_error,
    split_command,
    zap_status_of,
)
from .security.mechanism import Mechanism, MessageCipher
from .security.zap import ZapRequest

# -- limits -----------------------------------------------------------------------------------

GREETING_SIZE = 64
SIGNATURE_SIZE = 10
#: READY carries a handful of short properties; 64 KiB leaves room for generous user metadata
#: while stopping a peer from making us buffer an endless "command".
MAX_COMMAND_SIZE = 64 * 1024

# -- wire constants ---------------------------------------------------------------------------

FLAG_MORE = 0x01
FLAG_LONG = 0x02
FLAG_COMMAND = 0x04
RESERVED_FLAGS = 0xF8

SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"
MECHANISM_SIZE = 20
_U64 = struct.Struct(">Q")

#: libzmq 4.3's PLAIN server spells its ERROR command "\x05ERROR" in C, where "\x05E" is one
#: hex escape: the name arrives as these five octets. Its own PLAIN client expects exactly that.
LIBZMQ_PLAIN_ERROR = b"^RROR"
#: The socket types whose READY carries an Identity property (RFC 23).
ANNOUNCES_IDENTITY = frozenset({REQ, DEALER, ROUTER})


class State(Enum):
    GREETING = "greeting"
    HANDSHAKE = "handshake"
    TRAFFIC = "traffic"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The peer's READY arrived and was accepted."""

    socket_type: int
    identity: bytes
    minor_version: int
    properties: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PeerError:
    """The peer sent ERROR; it will close the connection."""

    reason: str


@dataclass(frozen=True, slots=True)
class PingReceived:
    """A PING arrived (a PONG has already been queued); ttl is in seconds, 0 for none."""

    ttl: float


@dataclass(frozen=True, slots=True)
class PongReceived:
    context: bytes


@dataclass(frozen=True, slots=True)
class ZapRequested:
    """The handshake needs a ZAP verdict: answer with `zap_reply` or `zap_unavailable`."""

    request: ZapRequest


ControlEvent = HandshakeComplete | PeerError | PingReceived | PongReceived | ZapRequested


def greeting(minor_version: int = 1, as_server: bool = False, mechanism: bytes = b"NULL") -> bytes:
    return (
        SIGNATURE
        + bytes((3, minor_version))
        + mechanism.ljust(MECHANISM_SIZE, b"\x00")
        + (b"\x01" if as_server else b"\x00")
        + b"\x00" * 31
    )


class HandshakeSteps:
    """The handshake half of `ZMTPConnection`, which defines the state below and `send_error`.

    `_receive_preamble` takes the greeting and the handshake's commands from the received
    bytes; `_drive` runs one step of the mechanism and acts on what it produced.
    """

    socket_type: int
    identity: bytes
    app_metadata: tuple[tuple[str, bytes], ...]
    mechanism: Mechanism
    cipher: MessageCipher | None
    state: State
    peer_minor_version: int
    peer_socket_type: int
    peer_identity: bytes
    _out: list[bytes]
    _events: list[ControlEvent]
    _need: int

    def send_error(self, reason: str) -> None:
        raise NotImplementedError  # the codec's: queue ERROR, then close

    def _receive_preamble(self, data: bytes, messages: list[list[bytes]]) -> int:
        """Greeting and handshake; returns how much of `data` they used."""
        pos = 0
        if self.state is State.GREETING:
            if len(data) < GREETING_SIZE:
                self._check_signature(data)
                self._need = GREETING_SIZE
                return 0
            self._check_greeting(data[:GREETING_SIZE])
            pos = GREETING_SIZE
            self.state = State.HANDSHAKE
            self._need = 2
            self._drive(lambda: self.mechanism.start(self._metadata()))
        while self.state is State.HANDSHAKE:
            frame = self._next_command(data, pos)
            if frame is None:
                return pos
            pos, body = frame
            self._handle_handshake_command(body)
        return pos

    def _check_signature(self, data: bytes) -> None:
        # Reject a non-ZMTP peer as soon as its first byte or its signature end shows it.
        if data[:1] and data[0] != 0xFF:
            raise ProtocolError("not a ZMTP peer (bad signature)")
        if len(data) >= SIGNATURE_SIZE and not data[9] & 0x01:
            raise ProtocolError("not a ZMTP peer (bad signature)")

    def _check_greeting(self, g: bytes) -> None:
        self._check_signature(g)
        major, minor = g[10], g[11]
        if major < 3:
            raise ProtocolError(f"unsupported ZMTP version {major}.{minor}")
        # A newer 3.x (or 4+) peer is answered at our own version, as RFC 23 asks.
        self.peer_minor_version = minor if major == 3 else 1
        mechanism = g[12:32].rstrip(b"\x00")
        ours = self.mechanism
        if mechanism != ours.name:
            self.send_error("unsupported security mechanism")
            raise ProtocolError(
                f"peer speaks mechanism {mechanism[:20]!r}, we speak {ours.name!r}",
                ProtocolErrorCode.ZMTP_MECHANISM_MISMATCH,
            )
        # The as-server octet cannot be checked: libzmq 4.3 always sends it as zero.

    def _next_command(self, data: bytes, pos: int) -> tuple[int, bytes] | None:
        """Parse one command frame during the handshake, or None if incomplete."""
        end = len(data)
        if end - pos < 2:
            self._need = 2
            return None
        flags = data[pos]
        if flags & RESERVED_FLAGS or not flags & FLAG_COMMAND or flags & FLAG_MORE:
            raise ProtocolError("expected a command frame during the handshake")
        if flags & FLAG_LONG:
            if end - pos < 9:
                self._need = 9
                return None
            (size,) = _U64.unpack_from(data, pos + 1)
            start = pos + 9
        else:
            size = data[pos + 1]
            start = pos + 2
        if size > MAX_COMMAND_SIZE:
            raise ProtocolError("command too large")
        if start + size > end:
            self._need = start + size - pos
            return None
        return start + size, data[start : start + size]

    def _metadata(self) -> bytes:
        """Our connection properties, as READY or INITIATE carry them."""
        props = {"Socket-Type": SOCKET_TYPE_NAMES[self.socket_type]}
        if self.socket_type in ANNOUNCES_IDENTITY:
            props["Identity"] = self.identity
        props.update(self.app_metadata)  # METADATA's "X-" names: never one of the above
        return encode_properties(props)

    def _handle_handshake_command(self, body: bytes) -> None:
        if body[:5] == LIBZMQ_PLAIN_ERROR and self.mechanism.name == b"PLAIN":
            name, rest = b"ERROR", body[5:]
        else:
            name, rest = split_command(body)
        if name == b"ERROR":
            reason = parse_error(rest)
            self._events.append(PeerError(reason))
            self.state = State.CLOSED
            status = zap_status_of(reason)
            if status is not None:
                raise AuthenticationFailed(f"peer refused us: ERROR {reason}", status)
            raise ProtocolError(f"peer sent ERROR during the handshake: {reason}")
        self._drive(lambda: self.mechanism.command_received(name, rest))

    def _drive(self, step: Callable[[], object]) -> None:
        """Run one mechanism step, then act on what it produced (even when it failed)."""
        mechanism = self.mechanism
        try:
            step()
        finally:
            for body in mechanism.pop_commands():
                self._out.append(encode_command(*split_command(body)))
        if self.peer_socket_type < 0 and mechanism.peer_properties is not None:
            self._check_peer(mechanism.peer_properties)
        if mechanism.zap_request is not None:
            self._events.append(ZapRequested(mechanism.zap_request))
            mechanism.zap_request = None
        if mechanism.complete and self.state is State.HANDSHAKE:
            if self.peer_socket_type < 0:
                raise ProtocolError("handshake completed without the peer's metadata")
            if mechanism.encrypts:
                self.cipher = mechanism.cipher()
            self.state = State.TRAFFIC
            self._need = 2
            props = dict(mechanism.peer_properties)
            if mechanism.user_id:
                props["user-id"] = mechanism.user_id.encode("utf-8")
            for key, value in mechanism.zap_metadata.items():
                props.setdefault(key, value)
            self._events.append(
                HandshakeComplete(
                    self.peer_socket_type, self.peer_identity, self.peer_minor_version, props
                )
            )

    def _check_peer(self, props: dict[str, bytes]) -> None:
        """The peer's metadata must name a compatible socket type and a valid identity."""
        type_name = props.get("socket-type", b"")
        peer_type = next((t for t, n in SOCKET_TYPE_NAMES.items() if n == type_name), -1)
        bad = ProtocolErrorCode.ZMTP_INVALID_METADATA
        if peer_type not in COMPATIBLE_PEERS[self.socket_type]:
            self.send_error("Invalid socket type")
            raise ProtocolError(f"incompatible peer socket type {type_name[:32]!r}", bad)
        identity = props.get("identity", b"")
        if identity[:1] == b"\x00":
            self.send_error("Invalid identity")
            raise ProtocolError("peer identity may not start with a zero byte", bad)
        if len(identity) > 255:
            self.send_error("Invalid identity")
            raise ProtocolError("peer identity longer than 255 bytes", bad)
        self.peer_socket_type = peer_type
        self.peer_identity = identity
