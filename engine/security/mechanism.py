"""The interface between the ZMTP codec and a security mechanism's handshake (RFC 23, 37).

A mechanism is a sans-I/O state machine for one connection. The codec (engine/zmtp.py) owns the
greeting and the framing; once both greetings are in, it calls `start`, then hands every command
that arrives during the handshake to `command_received`. The mechanism answers by queuing command
bodies (`pop_commands`), by asking for a ZAP verdict (`zap_request`, answered later through
`zap_replied` or `zap_unavailable`), by publishing the peer's metadata (`peer_properties`, which
the codec checks against the socket type) and finally by setting `complete`.

A mechanism that encrypts (CURVE) then hands the codec a `MessageCipher` for the traffic phase.
Every failure is a ProtocolError (or one of its subclasses, which carry the monitor event): the
connection closes, after the codec has written any ERROR command queued here.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ..constants import ProtocolErrorCode
from .commands import (
    AuthenticationFailed,
    HandshakeFailed,
    ProtocolError,
    command_body,
    error_body,
)
from .zap import STATUS_TEMPORARY, ZapReply, ZapRequest


@dataclass(frozen=True, slots=True)
class ZapSettings:
    """What a server-side handshake puts in its ZAP request, and how strict it is without one.

    `address` is the peer's address as the ZAP handler sees it (an IP for tcp); `routing_id` is
    the local socket's ROUTING_ID, as libzmq sends. With `enforce` (ZAP_ENFORCE_DOMAIN), a
    handshake that needs ZAP fails when no handler is bound, instead of going on without it.
    """

    domain: str = ""
    address: str = ""
    routing_id: bytes = b""
    enforce: bool = False


class MessageCipher(Protocol):
    """Traffic-phase protection: each ZMTP frame becomes one sealed frame on the wire."""

    def seal(self, flags: int, payload: bytes, pieces: list[bytes]) -> None:
        """Append the wire form (header included) of one frame; flags as in a MESSAGE box."""
        ...

    def seal_messages(self, messages: list[list[bytes]], subscriptions: bool) -> bytearray:
        """The wire form of a batch of messages (subscriptions as sealed commands if asked)."""
        ...

    def open_run(
        self, data: bytes, pos: int, max_frames: int, max_size: int
    ) -> tuple[list[bytes], bytes, int, int]:
        """Open up to `max_frames` sealed frames from `pos`: (payloads, flags, pos, need)."""
        ...


class Mechanism:
    """Base class: shared bookkeeping for command output, ZAP and completion."""

    #: The mechanism name as the greeting carries it (padded there to 20 octets).
    name: ClassVar[bytes] = b""
    #: True for mechanisms whose traffic is sealed (the codec then asks for `cipher()`).
    encrypts: ClassVar[bool] = False
    #: A mechanism that cannot admit anybody without a ZAP handler (PLAIN's server).
    needs_zap_handler: ClassVar[bool] = False

    def __init__(self, *, as_server: bool = False, zap: ZapSettings | None = None) -> None:
        self.as_server = as_server
        self.zap = zap or ZapSettings()
        #: Set when a ZAP verdict is needed; the codec takes it (and clears it) to ask.
        self.zap_request: ZapRequest | None = None
        #: The peer's metadata, once its READY or INITIATE has been read.
        self.peer_properties: dict[str, bytes] | None = None
        #: From a ZAP 200 reply: the user id and metadata the handler attached.
        self.user_id = ""
        self.zap_metadata: dict[str, bytes] = {}
        self.complete = False
        self._commands: list[bytes] = []
        self._waiting_for_zap = False

    # -- what the codec calls -----------------------------------------------------------------

    def start(self, metadata: bytes) -> None:
        """Both greetings are exchanged; `metadata` is our encoded connection properties."""
        raise NotImplementedError

    def command_received(self, name: bytes, rest: bytes) -> None:
        """A handshake command other than ERROR (which the codec handles for every mechanism)."""
        raise NotImplementedError

    def zap_replied(self, reply: ZapReply) -> None:
        """The handler's verdict: a refusal fails (ERROR queued, except for 300)."""
        self._end_zap_wait()
        self.user_id = reply.user_id
        self.zap_metadata = reply.metadata
        if not reply.ok:
            code = reply.status_code
            if code != STATUS_TEMPORARY:
                self._send(b"ERROR", error_body(str(code)))
            raise AuthenticationFailed(f"ZAP refused the peer: {code} {reply.status_text}", code)
        self._zap_passed()

    def zap_unavailable(self) -> None:
        """No handler is bound: fail if this mechanism needs one or ZAP_ENFORCE_DOMAIN says so."""
        self._end_zap_wait()
        if self.needs_zap_handler or self.zap.enforce:
            raise HandshakeFailed("no ZAP handler is bound", errno.EFAULT)
        self._zap_passed()

    def pop_commands(self) -> list[bytes]:
        commands = self._commands
        self._commands = []
        return commands

    def cipher(self) -> MessageCipher | None:
        return None

    # -- for subclasses -----------------------------------------------------------------------

    def _send(self, name: bytes, body: bytes = b"") -> None:
        self._commands.append(command_body(name, body))

    def _ask_zap(self, mechanism: bytes, credentials: tuple[bytes, ...]) -> None:
        """Hold the handshake until the codec brings the handler's verdict (or its absence)."""
        zap = self.zap
        self.zap_request = ZapRequest(
            zap.domain, zap.address, zap.routing_id, mechanism, credentials
        )
        self._waiting_for_zap = True

    def _end_zap_wait(self) -> None:
        if not self._waiting_for_zap:
            raise ProtocolError("a ZAP answer nobody asked for", ProtocolErrorCode.ZAP_UNSPECIFIED)
        self._waiting_for_zap = False

    def _zap_passed(self) -> None:
        """The peer may go on (ZAP said 200, or none is needed): send what comes next."""
        raise NotImplementedError

    def _refuse(self, reason: str, message: str, code: ProtocolErrorCode) -> None:
        """Queue an ERROR for the peer, then fail."""
        self._send(b"ERROR", error_body(reason))
        raise ProtocolError(message, code)
