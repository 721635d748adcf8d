"""ZAP (ZeroMQ RFC 27): the request a handshake sends to the authentication handler, and its reply.

A server-side mechanism that wants a peer authenticated produces a ZapRequest; whoever runs the
connection carries it to the handler bound at `inproc://zeromq.zap.01` and brings the reply back
as frames, which `ZapReply.from_frames` checks exactly as libzmq does. The handler side (an
authenticator) uses `ZapRequest.from_frames` and `ZapReply.to_frames`.

Frames here exclude the REQ envelope (the empty delimiter): the transport adds and strips it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..constants import ProtocolErrorCode
from .commands import ProtocolError, decode_properties, encode_properties

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_VERSION = b"1.0"
#: libzmq has one request in flight per connection and always numbers it "1".
REQUEST_ID = b"1"
#: version, request id, domain, address, identity, mechanism: then the credentials.
REQUEST_HEAD = 6
#: PLAIN sends two credentials, CURVE one, NULL none; GSSAPI one. More is a malformed request.
MAX_CREDENTIALS = 2
#: version, request id, status code, status text, user id, metadata.
REPLY_FRAMES = 6
STATUS_OK = 200
#: The only codes RFC 27 defines; anything else in a reply is a malformed reply.
STATUS_CODES = (200, 300, 400, 500)
#: A temporary failure: the server closes without an ERROR, and the client may retry.
STATUS_TEMPORARY = 300


class ZapRequestError(ValueError):
    """A handler got something that is not a ZAP 1.0 request."""


@dataclass(frozen=True, slots=True)
class ZapRequest:
    """What a handshake asks the ZAP handler (RFC 27)."""

    domain: str
    address: str
    routing_id: bytes
    mechanism: bytes
    credentials: tuple[bytes, ...] = ()
    request_id: bytes = REQUEST_ID
    version: bytes = ZAP_VERSION

    def to_frames(self) -> list[bytes]:
        return [
            self.version,
            self.request_id,
            self.domain.encode("utf-8"),
            self.address.encode("utf-8"),
            self.routing_id,
            self.mechanism,
            *self.credentials,
        ]

    @classmethod
    def from_frames(cls, frames: list[bytes]) -> ZapRequest:
        """Parse a request as a handler receives it; raises ZapRequestError if malformed."""
        if not REQUEST_HEAD <= len(frames) <= REQUEST_HEAD + MAX_CREDENTIALS:
            raise ZapRequestError(f"a ZAP request has 6 to 8 frames, not {len(frames)}")
        version, request_id, domain, address, routing_id, mechanism, *credentials = frames
        if version != ZAP_VERSION:
            raise ZapRequestError(f"unsupported ZAP version {version!r}")
        try:
            domain_text = domain.decode("utf-8")
            address_text = address.decode("utf-8")
        except UnicodeDecodeError:
            raise ZapRequestError("ZAP domain and address must be UTF-8") from None
        return cls(domain_text, address_text, routing_id, mechanism, tuple(credentials), request_id)


@dataclass(frozen=True, slots=True)
class ZapReply:
    """The handler's answer. `metadata` becomes part of the connection's properties."""

    status_code: int
    status_text: str = ""
    user_id: str = ""
    metadata: dict[str, bytes] = field(default_factory=dict)
    request_id: bytes = REQUEST_ID
    version: bytes = ZAP_VERSION

    @property
    def ok(self) -> bool:
        return self.status_code == STATUS_OK

    def to_frames(self) -> list[bytes]:
        return [
            self.version,
            self.request_id,
            str(self.status_code).encode("ascii"),
            self.status_text.encode("utf-8"),
            self.user_id.encode("utf-8"),
            encode_properties(self.metadata),
        ]

    @classmethod
    def from_frames(cls, frames: list[bytes], request_id: bytes = REQUEST_ID) -> ZapReply:
        """Check a reply as libzmq does; a bad one fails that handshake with a ZAP_* code."""
        if len(frames) != REPLY_FRAMES:
            raise ProtocolError(
                f"a ZAP reply has 6 frames, not {len(frames)}",
                ProtocolErrorCode.ZAP_MALFORMED_REPLY,
            )
        version, rid, code, text, user_id, metadata = frames
        if version != ZAP_VERSION:
            raise ProtocolError("bad ZAP reply version", ProtocolErrorCode.ZAP_BAD_VERSION)
        if rid != request_id:
            raise ProtocolError(
                "ZAP reply to another request", ProtocolErrorCode.ZAP_BAD_REQUEST_ID
            )
        if code not in (b"200", b"300", b"400", b"500"):
            raise ProtocolError(
                f"invalid ZAP status code {code[:8]!r}", ProtocolErrorCode.ZAP_INVALID_STATUS_CODE
            )
        try:
            props = decode_properties(metadata)
        except ProtocolError:
            raise ProtocolError(
                "malformed ZAP metadata", ProtocolErrorCode.ZAP_INVALID_METADATA
            ) from None
        return cls(
            int(code),
            text.decode("utf-8", "replace"),
            user_id.decode("utf-8", "replace"),
            props,
            rid,
        )
