"""Sans-I/O ZMTP 3.0/3.1 codec (ZeroMQ RFC 23 and 37): greeting, framing, commands.

The security handshake belongs to a mechanism object (engine/security/: NULL by default, PLAIN,
CURVE); the codec frames its commands, checks the peer's metadata against the socket type, and
passes ZAP requests out as events. With CURVE, every frame of the traffic phase is sealed.

Bytes go in through `receive_data`, which returns complete messages; messages go in through
`send_messages`, and `data_to_send` hands back the bytes to write. Nothing here touches a socket,
a clock or an event loop, so every rule is testable with plain byte strings.

Subscriptions are carried the ZMTP 3.0 way inside the engine: a one-frame message whose first byte
is 0x01 (subscribe) or 0x00 (cancel). The codec translates them to and from the 3.1 SUBSCRIBE and
CANCEL commands when the peer speaks 3.1, so socket logic never needs to know the peer's version.
A DISH's joins and leaves travel the same way inside the engine (0x01/0x00 + group) and always as
the JOIN and LEAVE commands on the wire, which is the only way RADIO/DISH speak (RFC 48).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum

from .constants import (
    COMPATIBLE_PEERS,
    DEALER,
    DISH,
    PUB,
    RADIO,
    REQ,
    ROUTER,
    SOCKET_TYPE_NAMES,
    SUB,
    XPUB,
    XSUB,
    ProtocolErrorCode,
)
from .frame_runs import LONG_HEADER, equal_frames, slice_run, split_run
from .options import UNBOUNDED
from .security.commands import (
    AuthenticationFailed,
    ProtocolError,
    command_body,
    encode_command,
    encode_properties,
    error_body,
    error_reason,
    parse_error,
    split_command,
    zap_status_of,
)
from .security.curve_message import FLAG_COMMAND as SEALED_COMMAND
from .security.curve_message import FLAG_MORE as SEALED_MORE
from .security.curve_message import OVERHEAD as SEALED_OVERHEAD
from .security.mechanism import Mechanism, MessageCipher
from .security.null import NullMechanism
from .security.zap import REQUEST_ID, ZapReply, ZapRequest

# -- limits -----------------------------------------------------------------------------------

GREETING_SIZE = 64
SIGNATURE_SIZE = 10
#: READY carries a handful of short properties; 64 KiB leaves room for generous user metadata
#: while stopping a peer from making us buffer an endless "command".
MAX_COMMAND_SIZE = 64 * 1024
#: Without MAXMSGSIZE, the most a single message may hold. It also bounds what one connection can
#: make us buffer before a message completes.
DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024 * 1024
#: Each frame costs a Python object even when empty. A message may hold as many frames as its
#: byte limit would pay for at this price each, so a flood of empty MORE frames is bounded too.
FRAME_OVERHEAD = 64
#: ...plus this many, so that even a tiny MAXMSGSIZE leaves room for routing envelopes.
FRAME_ALLOWANCE = 64
#: RFC 37: the PING context is at most 16 bytes.
MAX_PING_CONTEXT = 16

# -- wire constants ---------------------------------------------------------------------------

FLAG_MORE = 0x01
FLAG_LONG = 0x02
FLAG_COMMAND = 0x04
RESERVED_FLAGS = 0xF8

SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"
MECHANISM_SIZE = 20
_LONG = struct.Struct(">BQ")
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")

# Pre-built two-byte headers for every short frame: one lookup instead of a bytes() per frame.
_SHORT_LAST = [bytes((0, n)) for n in range(256)]
_SHORT_MORE = [bytes((FLAG_MORE, n)) for n in range(256)]
#: libzmq 4.3's PLAIN server spells its ERROR command "\x05ERROR" in C, where "\x05E" is one
#: hex escape: the name arrives as these five octets. Its own PLAIN client expects exactly that.
LIBZMQ_PLAIN_ERROR = b"^RROR"

SUBSCRIBE_PREFIX = b"\x01"
CANCEL_PREFIX = b"\x00"
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


def encode_frames(frames: list[bytes], pieces: list[bytes]) -> None:
    """Append the wire form of one message to `pieces` (header, body, header, body, ...)."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        size = len(frame)
        more = i < last
        if size < 256:
            pieces.append(_SHORT_MORE[size] if more else _SHORT_LAST[size])
        else:
            pieces.append(_LONG.pack(FLAG_LONG | FLAG_MORE if more else FLAG_LONG, size))
        pieces.append(frame)


def greeting(minor_version: int = 1, as_server: bool = False, mechanism: bytes = b"NULL") -> bytes:
    return (
        SIGNATURE
        + bytes((3, minor_version))
        + mechanism.ljust(MECHANISM_SIZE, b"\x00")
        + (b"\x01" if as_server else b"\x00")
        + b"\x00" * 31
    )


class ZMTPConnection:
    """One end of one ZMTP connection: greeting, handshake (by its mechanism), frames, commands.

    `receive_data` raises ProtocolError when the peer misbehaves; the caller then closes the
    connection, after sending `data_to_send()` (which may hold an ERROR command).
    """

    def __init__(
        self,
        socket_type: int,
        *,
        identity: bytes = b"",
        max_message_size: int = -1,
        minor_version: int = 1,
        mechanism: Mechanism | None = None,
        bare_frames: bool = False,
    ) -> None:
        self.socket_type = socket_type
        #: `receive_data` gives a one-frame message as its frame alone (bytes), not as a list
        #: of one frame: a stream of them then costs no list per message, and a run of equal
        #: ones is cut by struct in C (engine.sockets.parts.FairQueue takes such batches).
        #: Under CURVE only subscriptions come bare; sealed messages stay lists.
        self.bare_frames = bare_frames
        self.mechanism = mechanism if mechanism is not None else NullMechanism()
        #: Set when the handshake completes with a mechanism that seals every frame (CURVE).
        self.cipher: MessageCipher | None = None
        self.identity = identity
        self.max_message_size = (
            max_message_size if max_message_size >= 0 else DEFAULT_MAX_MESSAGE_SIZE
        )
        self.state = State.GREETING
        self.minor_version = minor_version
        self.peer_minor_version = -1
        self.peer_socket_type = -1
        self.peer_identity = b""
        self._sends_subscriptions = socket_type in (SUB, XSUB)
        self._takes_subscriptions = socket_type in (PUB, XPUB)
        #: Everything a DISH sends is a join or a leave; a RADIO takes them.
        self._sends_joins = socket_type == DISH
        self._takes_joins = socket_type == RADIO
        self._out: list[bytes] = [
            greeting(minor_version, self.mechanism.as_server, self.mechanism.name)
        ]
        self._events: list[ControlEvent] = []
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = GREETING_SIZE
        self._partial: list[bytes] | None = None
        self._partial_size = 0
        self._partial_frames = 0
        self.max_frames = self.max_message_size // FRAME_OVERHEAD + FRAME_ALLOWANCE

    # -- output -------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    def send_messages(self, messages) -> None:
        """Queue a batch of messages (each a list of frames) for the wire."""
        if self.state is not State.TRAFFIC:
            raise RuntimeError("cannot send messages before the handshake completes")
        cipher = self.cipher
        if cipher is not None:
            # Every frame becomes one MESSAGE; subscriptions ride sealed too, as commands.
            translate = self._sends_subscriptions and self.peer_minor_version >= 1
            self._out.append(cipher.seal_messages(messages, translate))
            return
        pieces = self._out
        translate = self._sends_subscriptions and self.peer_minor_version >= 1
        joins = self._sends_joins
        if not (translate or joins) and messages and len(messages[0]) == 1:
            # The common batch, one-frame messages (PUSH, PUB): framed by joins in C. A
            # multi-frame message in it takes the loop below.
            try:
                bodies = [f for (f,) in messages]
            except ValueError:
                bodies = None
            if bodies is not None:
                size = len(bodies[0])
                if size == len(min(bodies, key=len)) == len(max(bodies, key=len)):
                    # All of one size (records, a benchmark): one header between each two.
                    header = _SHORT_LAST[size] if size < 256 else _LONG.pack(FLAG_LONG, size)
                    pieces.append(header)
                    pieces.append(header.join(bodies))
                    return
                short, pack = _SHORT_LAST, _LONG.pack
                pieces.append(
                    b"".join(
                        [
                            (short[n] if (n := len(f)) < 256 else pack(FLAG_LONG, n)) + f
                            for f in bodies
                        ]
                    )
                )
                return
        for frames in messages:
            if translate and len(frames) == 1 and frames[0][:1] in (b"\x00", b"\x01"):
                topic = frames[0]
                name = b"SUBSCRIBE" if topic[0] == 1 else b"CANCEL"
                pieces.append(encode_command(name, topic[1:]))
                continue
            if joins:
                if len(frames) == 1 and frames[0][:1] in (b"\x00", b"\x01"):
                    name = b"JOIN" if frames[0][0] == 1 else b"LEAVE"
                    pieces.append(encode_command(name, frames[0][1:]))
                continue
            # The common case, a short single frame, skips the general encoder.
            if len(frames) == 1:
                frame = frames[0]
                size = len(frame)
                if size < 256:
                    pieces.append(_SHORT_LAST[size])
                else:
                    pieces.append(_LONG.pack(FLAG_LONG, size))
                pieces.append(frame)
            else:
                encode_frames(frames, pieces)

    def send_ping(self, ttl_deciseconds: int = 0, context: bytes = b"") -> bool:
        """Queue a PING; returns False when the peer (ZMTP 3.0) has no heartbeats."""
        if self.state is not State.TRAFFIC or self.peer_minor_version < 1:
            return False
        ttl = max(0, min(ttl_deciseconds, 0xFFFF))
        self._queue_command(b"PING", _U16.pack(ttl) + context[:MAX_PING_CONTEXT])
        return True

    def send_error(self, reason: str) -> None:
        self._queue_command(b"ERROR", error_body(reason))
        self.state = State.CLOSED

    def _queue_command(self, name: bytes, body: bytes) -> None:
        """A command of the traffic phase (sealed as a MESSAGE under CURVE) or the handshake."""
        if self.cipher is not None and self.state is State.TRAFFIC:
            self.cipher.seal(SEALED_COMMAND, command_body(name, body), self._out)
        else:
            self._out.append(encode_command(name, body))

    # -- ZAP ----------------------------------------------------------------------------------

    def zap_reply(self, frames: list[bytes], request_id: bytes = REQUEST_ID) -> None:
        """The ZAP handler answered (frames without the envelope); may raise ProtocolError.

        `request_id` is the id the request really carried (a ZAP client shared by several
        connections numbers them); the reply must echo it.
        """
        reply = ZapReply.from_frames(frames, request_id)
        self._drive(lambda: self.mechanism.zap_replied(reply))

    def zap_unavailable(self) -> None:
        """No ZAP handler is bound; the mechanism decides whether the handshake goes on."""
        self._drive(self.mechanism.zap_unavailable)

    # -- input --------------------------------------------------------------------------------

    def pop_events(self) -> list[ControlEvent]:
        events = self._events
        self._events = []
        return events

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    @property
    def input_pending(self) -> bool:
        """Complete frames may be waiting in the buffer (a `limit` stopped the last call)."""
        return self.state is State.TRAFFIC and self._have >= self._need

    def receive_data(self, data: bytes, limit: int = UNBOUNDED) -> list[list[bytes]]:
        """Feed bytes from the peer; returns the messages they completed, in order (with
        `bare_frames`, a one-frame message is its frame alone: list[list[bytes] | bytes]).

        At most `limit` messages are returned; the rest stays buffered (see `input_pending`)
        until a later call, with b"" when no new bytes came. Messages that follow the handshake
        in the same bytes come back from the same call, after the HandshakeComplete event.
        """
        if self.state is State.CLOSED:
            return []
        have = self._have + len(data)
        if have < self._need:
            if self.state is State.GREETING and data:
                # Turn away a non-ZMTP peer (an HTTP probe, say) without waiting for 64 bytes.
                self._check_signature(b"".join(self._chunks) + data)
            self._chunks.append(data)
            self._have = have
            return []
        if self._chunks:
            self._chunks.append(data)
            data = b"".join(self._chunks)
            self._chunks = []
        elif type(data) is not bytes and self.bare_frames:
            data = bytes(data)  # bare frames are told from messages by their type: bytes
        messages: list[list[bytes]] = []
        pos = 0
        if self.state is not State.TRAFFIC:
            pos = self._receive_preamble(data, messages)
        if self.state is State.TRAFFIC:
            if self.cipher is None:
                pos = self._decode(data, pos, messages, limit)
            else:
                pos = self._decode_sealed(data, pos, messages, limit)
        rest = len(data) - pos
        if rest:
            self._chunks.append(data[pos:] if pos else data)
        self._have = rest
        return messages

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

    def _drive(self, step) -> None:
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

    def _decode(self, data: bytes, pos: int, messages: list[list[bytes]], budget: int) -> int:
        """The hot loop: split `data` into frames from `pos`; returns where it stopped."""
        end = len(data)
        cur = self._partial
        cur_size = self._partial_size
        cur_frames = self._partial_frames
        max_frames = self.max_frames
        limit = self.max_message_size
        need = 2
        # Whole short frames that are complete messages need none of the checks below (a
        # short frame cannot exceed any sane limit), so they take this path alone.
        fast = limit >= 255
        bare = self.bare_frames
        append = messages.append
        unpack_long = _U64.unpack_from
        last_size = -1
        while True:
            avail = end - pos
            if avail < 2 or len(messages) >= budget:
                break
            flags = data[pos]
            if fast and flags == 0 and cur is None:
                size = data[pos + 1]
                stop = pos + 2 + size
                if stop > end:
                    need = stop - pos
                    break
                append(data[pos + 2 : stop] if bare else [data[pos + 2 : stop]])
                pos = stop
                if size == last_size and end - pos >= 2 and data[pos + 1] == size:
                    # A third equal message follows two: look for a run of them.
                    stride = size + 2
                    most = min((end - pos) // stride, budget - len(messages))
                    run = equal_frames(data, pos, _SHORT_LAST[size], size, most) if most > 1 else 0
                    if run > 1:
                        if bare:
                            messages += split_run(data, pos, size, run)
                            pos += run * stride
                        else:
                            start = pos + 2
                            pos += run * stride
                            span = range(start, start + run * stride, stride)
                            messages += [[data[i : i + size]] for i in span]
                last_size = size
                continue
            if flags == FLAG_LONG and cur is None and avail >= 9:
                # A whole long single-frame message (1 KiB, say): the same shortcut.
                (size,) = unpack_long(data, pos + 1)
                stop = pos + 9 + size
                if size <= limit and stop <= end:
                    append(data[pos + 9 : stop] if bare else [data[pos + 9 : stop]])
                    pos = stop
                    if size == last_size and end - pos >= 9 and data[pos] == FLAG_LONG:
                        # A third equal message follows two: look for a run of them.
                        stride = size + LONG_HEADER
                        most = min((end - pos) // stride, budget - len(messages))
                        header = data[pos - stride : pos - size]
                        run = equal_frames(data, pos, header, size, most) if most > 1 else 0
                        if run > 1:
                            bodies = slice_run(data, pos, LONG_HEADER, size, run)
                            messages += bodies if bare else [[body] for body in bodies]
                            pos += run * stride
                    last_size = size
                    continue
            if flags & FLAG_LONG:
                if avail < 9:
                    need = 9
                    break
                (size,) = _U64.unpack_from(data, pos + 1)
                start = pos + 9
            else:
                size = data[pos + 1]
                start = pos + 2
            if flags & RESERVED_FLAGS:
                raise ProtocolError("reserved frame flag bits are set")
            stop = start + size
            if flags & FLAG_COMMAND:
                if flags & FLAG_MORE or cur is not None:
                    raise ProtocolError("command frame inside a multipart message")
                if size > MAX_COMMAND_SIZE:
                    raise ProtocolError("command too large")
                if stop > end:
                    need = stop - pos
                    break
                self._handle_command(data[start:stop], messages)
                pos = stop
                continue
            cur_size += size
            cur_frames += 1
            if cur_size > limit:
                raise ProtocolError("message larger than the maximum message size")
            if cur_frames > max_frames:
                raise ProtocolError("message has too many frames")
            if stop > end:
                cur_size -= size
                cur_frames -= 1
                need = stop - pos
                break
            frame = data[start:stop]
            if cur is None:
                cur = [frame]
            else:
                cur.append(frame)
            if not flags & FLAG_MORE:
                messages.append(cur[0] if bare and len(cur) == 1 else cur)
                cur = None
                cur_size = 0
                cur_frames = 0
            pos = stop
        self._partial = cur
        self._partial_size = cur_size
        self._partial_frames = cur_frames
        self._need = need
        return pos

    def _decode_sealed(
        self, data: bytes, pos: int, messages: list[list[bytes]], budget: int
    ) -> int:
        """The traffic loop under CURVE: each wire frame is one sealed MESSAGE.

        The cipher opens runs of frames (never more than the messages still wanted, so no
        frame is opened past the budget); this loop assembles them into messages.
        """
        cur = self._partial
        cur_size = self._partial_size
        cur_frames = self._partial_frames
        max_frames = self.max_frames
        limit = self.max_message_size
        # A sealed frame holds one frame of a message or one command, plus the MESSAGE overhead.
        max_sealed = max(limit, MAX_COMMAND_SIZE) + SEALED_OVERHEAD
        # Only a MAXMSGSIZE below the command bound needs a check on every one-frame message.
        small_limit = limit < MAX_COMMAND_SIZE
        open_run = self.cipher.open_run
        need = 2
        while len(messages) < budget:
            wanted = budget - len(messages)
            payloads, flags, pos, need = open_run(data, pos, wanted, max_sealed)
            if cur is None and not any(flags):
                # The common case: whole one-frame messages, no commands.
                if small_limit and max(map(len, payloads), default=0) > limit:
                    raise ProtocolError("message larger than the maximum message size")
                messages.extend([[p] for p in payloads])
            else:
                for sealed_flags, payload in zip(flags, payloads, strict=True):
                    if sealed_flags & SEALED_COMMAND:
                        if cur is not None:
                            raise ProtocolError("command frame inside a multipart message")
                        if len(payload) > MAX_COMMAND_SIZE:
                            raise ProtocolError("command too large")
                        self._handle_command(payload, messages)
                        continue
                    cur_size += len(payload)
                    cur_frames += 1
                    if cur_size > limit:
                        raise ProtocolError("message larger than the maximum message size")
                    if cur_frames > max_frames:
                        raise ProtocolError("message has too many frames")
                    if cur is None:
                        cur = [payload]
                    else:
                        cur.append(payload)
                    if not sealed_flags & SEALED_MORE:
                        messages.append(cur)
                        cur = None
                        cur_size = 0
                        cur_frames = 0
            if len(payloads) < wanted:
                break  # the data ran out (or stopped at an incomplete frame)
        self._partial = cur
        self._partial_size = cur_size
        self._partial_frames = cur_frames
        self._need = need
        return pos

    def _handle_command(self, body: bytes, messages: list[list[bytes]]) -> None:
        name, rest = split_command(body)
        if name == b"PING":
            if len(rest) < 2:
                raise ProtocolError("PING too short")
            (ttl,) = _U16.unpack_from(rest)
            context = rest[2 : 2 + MAX_PING_CONTEXT]
            self._queue_command(b"PONG", context)
            self._events.append(PingReceived(ttl / 10.0))
        elif name == b"PONG":
            self._events.append(PongReceived(rest))
        elif name == b"ERROR":
            self._events.append(PeerError(error_reason(rest)))
            self.state = State.CLOSED
        elif name in (b"SUBSCRIBE", b"CANCEL"):
            if self._takes_subscriptions:
                mark = SUBSCRIBE_PREFIX if name == b"SUBSCRIBE" else CANCEL_PREFIX
                messages.append(mark + rest if self.bare_frames else [mark + rest])
        elif name in (b"JOIN", b"LEAVE"):
            if self._takes_joins:
                mark = SUBSCRIBE_PREFIX if name == b"JOIN" else CANCEL_PREFIX
                messages.append(mark + rest if self.bare_frames else [mark + rest])
        elif name == b"READY":
            raise ProtocolError("READY after the handshake")
        # RFC 37 leaves room for new commands: anything else is ignored.
