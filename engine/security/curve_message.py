"""The CURVE MESSAGE command (RFC 26): every ZMTP frame of the traffic phase, sealed.

    MESSAGE = [7]"MESSAGE" short-nonce(8) Box[flags(1) payload](sender' -> recipient')

The box nonce is a 16-octet prefix ("CurveZMQMESSAGEC" from the client, "...S" from the server)
plus the 8-octet short nonce, a counter that must grow with every command in each direction; a
receiver refuses a nonce that does not (a replay). The flags octet says MORE (bit 0) and, as
libzmq uses it, COMMAND (bit 1): PING, PONG, SUBSCRIBE and CANCEL travel sealed as commands.
Other bits are reserved and must be zero.

On the wire libzmq sends each MESSAGE as an ordinary frame (no COMMAND or MORE flag on the outer
frame; the real flags are inside the box), and accepts either; we do the same.
"""

from __future__ import annotations

import struct

from ..constants import ProtocolErrorCode
from .commands import ProtocolError
from .keys import sodium

MESSAGE_PREFIX = b"\x07MESSAGE"
#: [7]"MESSAGE" plus the short nonce.
HEADER_SIZE = len(MESSAGE_PREFIX) + 8
#: Poly1305 tag: each box is this much larger than what it holds.
MAC_SIZE = 16
#: The smallest valid MESSAGE: header, tag, flags octet (RFC 26: "at least 33 octets").
MIN_MESSAGE_SIZE = HEADER_SIZE + MAC_SIZE + 1
#: Everything a sealed frame adds to its payload (checked against MAXMSGSIZE by the codec).
OVERHEAD = MIN_MESSAGE_SIZE

FLAG_MORE = 0x01
FLAG_COMMAND = 0x02
RESERVED_FLAGS = 0xFC
#: RFC 26: no more than 2^64 - 1 commands in one direction of one connection.
MAX_NONCE = (1 << 64) - 1

CLIENT_PREFIX = b"CurveZMQMESSAGEC"
SERVER_PREFIX = b"CurveZMQMESSAGES"

_U64 = struct.Struct(">Q")
_LONG = struct.Struct(">BQ")
_FLAG_BYTES = [bytes((f,)) for f in range(256)]


class CurveCipher:
    """Seals and opens the MESSAGE commands of one connection, in both directions.

    `key` is the precomputed Curve25519 shared key of the two transient key pairs; `sent` and
    `received` are the last short nonces used in each direction during the handshake.
    """

    def __init__(self, key: bytes, *, as_server: bool, sent: int, received: int) -> None:
        nacl = sodium()
        self._seal_box = nacl.crypto_box_easy_afternm
        self._open_box = nacl.crypto_box_open_easy_afternm
        self._key = key
        self._send_prefix = SERVER_PREFIX if as_server else CLIENT_PREFIX
        self._recv_prefix = CLIENT_PREFIX if as_server else SERVER_PREFIX
        self._sent = sent
        self._received = received

    def seal(self, flags: int, payload: bytes, pieces: list[bytes]) -> None:
        """Append one sealed frame (its header, the MESSAGE header and the box) to `pieces`."""
        nonce = self._sent + 1
        if nonce > MAX_NONCE:
            raise ProtocolError("CURVE nonces exhausted", ProtocolErrorCode.ZMTP_INVALID_SEQUENCE)
        self._sent = nonce
        short = _U64.pack(nonce)
        box = self._seal_box(_FLAG_BYTES[flags] + payload, self._send_prefix + short, self._key)
        size = HEADER_SIZE + len(box)
        pieces.append(bytes((0, size)) if size < 256 else _LONG.pack(0x02, size))
        pieces.append(MESSAGE_PREFIX + short)
        pieces.append(box)

    def open(self, body: bytes) -> tuple[int, bytes]:
        """(flags, payload) of one received MESSAGE body; ProtocolError if it is not genuine."""
        if body[:8] != MESSAGE_PREFIX:
            raise ProtocolError(
                "expected a CURVE MESSAGE", ProtocolErrorCode.ZMTP_UNEXPECTED_COMMAND
            )
        if len(body) < MIN_MESSAGE_SIZE:
            raise ProtocolError(
                "CURVE MESSAGE too short", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_MESSAGE
            )
        (nonce,) = _U64.unpack_from(body, 8)
        if nonce <= self._received:
            raise ProtocolError(
                "CURVE MESSAGE nonce did not increase (replay?)",
                ProtocolErrorCode.ZMTP_INVALID_SEQUENCE,
            )
        try:
            plain = self._open_box(body[HEADER_SIZE:], self._recv_prefix + body[8:16], self._key)
        except Exception:  # nacl's CryptoError: forged, corrupted or out of order
            raise ProtocolError(
                "CURVE MESSAGE box does not open", ProtocolErrorCode.ZMTP_CRYPTOGRAPHIC
            ) from None
        self._received = nonce
        flags = plain[0]
        if flags & RESERVED_FLAGS or flags == FLAG_MORE | FLAG_COMMAND:
            raise ProtocolError(
                "CURVE MESSAGE has invalid flags", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_MESSAGE
            )
        return flags, plain[1:]
