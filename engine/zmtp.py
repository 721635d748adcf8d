"""Sans-I/O ZMTP 3.0/3.1 codec (ZeroMQ RFC 23 and 37): greeting, framing, commands.

The security handshake belongs to a mechanism object (engine/security/: NULL by default, PLAIN,
CURVE); the codec frames its commands, checks the peer's metadata against the socket type, and
passes ZAP requests out as events: that part, the greeting included, is engine/zmtp_handshake.py
(`HandshakeSteps`, which `ZMTPConnection` extends). With CURVE, every frame of the traffic phase
is sealed.

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

from .constants import DISH, PUB, RADIO, SUB, XPUB, XSUB
from .frame_runs import LONG_HEADER, equal_frames, slice_run, split_run
from .options import UNBOUNDED
from .security.commands import (
    ProtocolError,
    command_body,
    encode_command,
    encode_properties,
    error_body,
    error_reason,
    split_command,
)
from .security.curve_message import FLAG_COMMAND as SEALED_COMMAND
from .security.curve_message import FLAG_MORE as SEALED_MORE
from .security.curve_message import OVERHEAD as SEALED_OVERHEAD
from .security.mechanism import Mechanism, MessageCipher
from .security.null import NullMechanism
from .security.zap import REQUEST_ID, ZapReply
from .zmtp_handshake import (
    FLAG_COMMAND,
    FLAG_LONG,
    FLAG_MORE,
    GREETING_SIZE,
    MAX_COMMAND_SIZE,
    RESERVED_FLAGS,
    ControlEvent,
    HandshakeComplete,
    HandshakeSteps,
    PeerError,
    PingReceived,
    PongReceived,
    State,
    ZapRequested,
    greeting,
)

__all__ = [  # the codec's names, the handshake's included: callers import them from here
    "ControlEvent",
    "HandshakeComplete",
    "PeerError",
    "PingReceived",
    "PongReceived",
    "ProtocolError",
    "State",
    "ZMTPConnection",
    "ZapRequested",
    "encode_command",
    "encode_frames",
    "encode_properties",
    "greeting",
]

# -- limits -----------------------------------------------------------------------------------

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

_LONG = struct.Struct(">BQ")
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")

# Pre-built two-byte headers for every short frame: one lookup instead of a bytes() per frame.
_SHORT_LAST = [bytes((0, n)) for n in range(256)]
_SHORT_MORE = [bytes((FLAG_MORE, n)) for n in range(256)]
#: An empty delimiter frame followed by the header of a short last frame (REQ/REP traffic).
_ENVELOPE_SHORT = [bytes((FLAG_MORE, 0, 0, n)) for n in range(256)]

SUBSCRIBE_PREFIX = b"\x01"
CANCEL_PREFIX = b"\x00"


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


class ZMTPConnection(HandshakeSteps):
    """One end of one ZMTP connection: greeting, handshake (by its mechanism), frames, commands.

    `receive_data` raises ProtocolError when the peer misbehaves; the caller then closes the
    connection, after sending `data_to_send()` (which may hold an ERROR command).
    """

    def __init__(
        self,
        socket_type: int,
        *,
        identity: bytes = b"",
        app_metadata: tuple[tuple[str, bytes], ...] = (),
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
        #: METADATA: properties the handshake announces besides Socket-Type and Identity.
        self.app_metadata = app_metadata
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

    def encode_one(self, message: list[bytes]) -> bytes:
        """`send_messages([message])` and `data_to_send()` in one step: the wire bytes of one
        message (a reply, a request, an event for one subscriber), with whatever the codec had
        queued before it. A CURVE link seals it without the batch's set-up."""
        cipher = self.cipher
        if (
            cipher is None
            or self._out
            or self._sends_subscriptions
            or self.state is not State.TRAFFIC
        ):
            self.send_messages([message])
            return self.data_to_send()
        return cipher.seal_message(message)

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
            elif len(frames) == 2 and not frames[0] and len(frames[1]) < 256:
                # An empty delimiter and a short body (REQ/REP): both headers in one piece.
                pieces.append(_ENVELOPE_SHORT[len(frames[1])])
                pieces.append(frames[1])
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
        try:
            if self.state is not State.TRAFFIC:
                pos = self._receive_preamble(data, messages)
            if self.state is State.TRAFFIC:
                if self.cipher is None:
                    pos = self._decode(data, pos, messages, limit)
                else:
                    pos = self._decode_sealed(data, pos, messages, limit)
        except ProtocolError as exc:
            exc.completed = messages
            raise
        rest = len(data) - pos
        if rest:
            self._chunks.append(data[pos:] if pos else data)
        self._have = rest
        return messages

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
            if (
                fast
                and flags == FLAG_MORE
                and cur is None
                and avail >= 4
                and data[pos + 1] == 0
                and data[pos + 2] == 0
            ):
                # An empty delimiter then one short last frame: a REQ/REP message, the round
                # trip's path, in one step (a body of at most 255 bytes is within the limit).
                stop = pos + 4 + data[pos + 3]
                if stop <= end:
                    append([b"", data[pos + 4 : stop]])
                    pos = stop
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
