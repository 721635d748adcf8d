"""ZMTP command bodies and connection metadata (RFC 23/37), and the error every parser raises.

These are the pieces both the frame codec (engine/zmtp.py) and the security mechanisms need, so
they live below both. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import struct
from typing import Any

from ..constants import (
    EVENT_HANDSHAKE_FAILED_AUTH,
    EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    EVENT_HANDSHAKE_FAILED_PROTOCOL,
    ProtocolErrorCode,
)

_LONG = struct.Struct(">BQ")
_U32 = struct.Struct(">I")

FLAG_MORE = 0x01
FLAG_LONG = 0x02
FLAG_COMMAND = 0x04

#: RFC 23: an ERROR reason is a short string (one length octet).
MAX_ERROR_REASON = 255


class ProtocolError(Exception):
    """The peer broke the protocol; the connection must be closed (and only that connection).

    `event` and `value` are what a socket monitor reports, with libzmq's numbers: by default
    HANDSHAKE_FAILED_PROTOCOL with the ZMQ_PROTOCOL_ERROR_* code that says what went wrong.
    """

    event = EVENT_HANDSHAKE_FAILED_PROTOCOL

    def __init__(
        self, message: str, code: ProtocolErrorCode = ProtocolErrorCode.ZMTP_UNSPECIFIED
    ) -> None:
        super().__init__(message)
        self.value = int(code)
        #: What the same bytes completed before the fault (the codec's events stay queued):
        #: the peer's messages until then are delivered, as libzmq delivers each as it decodes.
        self.completed: list[Any] = []


class AuthenticationFailed(ProtocolError):
    """The handshake was refused by authentication: a ZAP status 300, 400 or 500.

    The monitor event is HANDSHAKE_FAILED_AUTH with that status code as its value, on the side
    that asked the ZAP handler and on the side that received its ERROR.
    """

    event = EVENT_HANDSHAKE_FAILED_AUTH

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.value = status_code


class HandshakeFailed(ProtocolError):
    """The handshake cannot go on for a local reason (libzmq's NO_DETAIL event, with an errno).

    Raised, for example, when ZAP_ENFORCE_DOMAIN is set and no ZAP handler is bound.
    """

    event = EVENT_HANDSHAKE_FAILED_NO_DETAIL

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.value = errno


def encode_command(name: bytes, body: bytes = b"") -> bytes:
    """One command frame, header included: name length, name, body."""
    payload = bytes((len(name),)) + name + body
    size = len(payload)
    if size < 256:
        return bytes((FLAG_COMMAND, size)) + payload
    return _LONG.pack(FLAG_COMMAND | FLAG_LONG, size) + payload


def command_body(name: bytes, body: bytes = b"") -> bytes:
    """A command without its frame header (what a CURVE MESSAGE box carries)."""
    return bytes((len(name),)) + name + body


def split_command(body: bytes) -> tuple[bytes, bytes]:
    """(name, rest) of a command body."""
    if not body:
        raise ProtocolError("empty command", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_UNSPECIFIED)
    nlen = body[0]
    if nlen == 0 or 1 + nlen > len(body):
        raise ProtocolError(
            "malformed command name", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_UNSPECIFIED
        )
    return body[1 : 1 + nlen], body[1 + nlen :]


def error_body(reason: str | bytes) -> bytes:
    """The body of an ERROR command (after its name): one length octet, then the reason."""
    raw = reason if isinstance(reason, bytes) else reason.encode("utf-8", "replace")
    raw = raw[:MAX_ERROR_REASON]
    return bytes((len(raw),)) + raw


def error_reason(rest: bytes) -> str:
    """The reason of a received ERROR command; lenient, as it is only ever logged."""
    if not rest:
        return ""
    return rest[1 : 1 + rest[0]].decode("utf-8", "replace")


def parse_error(rest: bytes) -> str:
    """The reason of an ERROR received during a handshake, where a malformed one is fatal."""
    if not rest or rest[0] > len(rest) - 1:
        raise ProtocolError("malformed ERROR", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_ERROR)
    return rest[1 : 1 + rest[0]].decode("ascii", "replace")


def zap_status_of(reason: str) -> int | None:
    """A reason that is a ZAP status code (300, 400 or 500) names an authentication failure."""
    if len(reason) == 3 and reason[0] in "345" and reason[1:] == "00":
        return int(reason)
    return None


def encode_properties(props: dict[str, bytes]) -> bytes:
    parts = []
    for name, value in props.items():
        raw = name.encode("ascii")
        parts.append(bytes((len(raw),)) + raw + _U32.pack(len(value)) + value)
    return b"".join(parts)


def decode_properties(body: bytes) -> dict[str, bytes]:
    """Metadata as in RFC 23: name-length, name, 4-byte value-length, value; names fold case."""
    props: dict[str, bytes] = {}
    pos, end = 0, len(body)
    bad = ProtocolErrorCode.ZMTP_INVALID_METADATA
    while pos < end:
        nlen = body[pos]
        pos += 1
        if nlen == 0 or pos + nlen + 4 > end:
            raise ProtocolError("malformed metadata property", bad)
        name = body[pos : pos + nlen]
        pos += nlen
        (vlen,) = _U32.unpack_from(body, pos)
        pos += 4
        if pos + vlen > end:
            raise ProtocolError("metadata value runs past the command", bad)
        try:
            key = name.decode("ascii").lower()
        except UnicodeDecodeError:
            raise ProtocolError("metadata name is not ASCII", bad) from None
        props[key] = body[pos : pos + vlen]
        pos += vlen
    return props
