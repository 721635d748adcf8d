"""libzmq's framing of messages inside PGM data, sans I/O.

libzmq writes a PUB's messages as one byte stream in ZMTP/1.0 framing and cuts that stream into
APDUs (one per ODATA packet). Each APDU starts with a 2-byte offset::

    +------------------+-----------------------------------------------+
    | offset (2 bytes) | stream bytes (frames, possibly cut anywhere)  |
    +------------------+-----------------------------------------------+

The offset is where the first *message* (not frame: a multipart message's later frames do not
count) starts inside the stream bytes, or 0xffff when none starts in this APDU. A receiver that
joins late, or lost data, skips APDUs until one has an offset and starts decoding there: that is
how it resynchronises without ever decoding from the middle of a message.

A ZMTP/1.0 frame is ``length, flags, body`` where length counts the flags byte and the body; a
length of 255 or more is written as 0xff followed by 8 bytes. Flags bit 0 is MORE.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: The offset that says "no message starts in this APDU".
NO_MESSAGE_START = 0xFFFF
OFFSET = struct.Struct("!H")
LONG_LENGTH = struct.Struct("!Q")
#: Frames whose length (flags byte included) reaches this use the 8-byte form.
LONG_LENGTH_ESCAPE = 0xFF
FLAG_MORE = 0x01


def encode_message(frames: Sequence[bytes]) -> bytes:
    """One message in ZMTP/1.0 framing: every frame but the last carries MORE."""
    parts: list[bytes] = []
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        flags = FLAG_MORE if i < last else 0
        size = len(frame) + 1
        if size < LONG_LENGTH_ESCAPE:
            parts.append(bytes((size, flags)))
        else:
            parts.append(bytes((LONG_LENGTH_ESCAPE,)) + LONG_LENGTH.pack(size) + bytes((flags,)))
        parts.append(frame)
    return b"".join(parts)


class ApduWriter:
    """A source's outgoing stream: messages in, APDUs of at most `apdu_max` bytes out.

    Like libzmq, an APDU is cut when full or when the queued messages run out; a message longer
    than one APDU continues in the next ones (whose offsets then say no message starts there).
    """

    __slots__ = ("_base", "_buffer", "_room", "_starts")

    def __init__(self, apdu_max: int) -> None:
        self._room = apdu_max - OFFSET.size
        if self._room < 1:
            raise ValueError(f"an APDU of {apdu_max} bytes has no room after its offset")
        self._buffer = bytearray()  # framed bytes not yet cut (deleting at the front is O(1))
        self._base = 0  # stream position of _buffer[0]
        self._starts: deque[int] = deque()  # stream positions where queued messages start

    def write(self, frames: Sequence[bytes]) -> None:
        self._starts.append(self._base + len(self._buffer))
        self._buffer += encode_message(frames)

    @property
    def pending(self) -> int:
        """Framed bytes queued and not yet cut into APDUs."""
        return len(self._buffer)

    def next_size(self) -> int:
        """Size of the APDU `cut` would return now (0 when nothing is queued)."""
        return min(len(self._buffer), self._room) + OFFSET.size if self._buffer else 0

    def cut(self) -> bytes:
        """The next APDU; the queue must not be empty."""
        chunk = bytes(self._buffer[: self._room])
        end = self._base + len(chunk)
        offset = NO_MESSAGE_START
        if self._starts and self._starts[0] < end:
            offset = self._starts[0] - self._base
        while self._starts and self._starts[0] < end:
            self._starts.popleft()
        del self._buffer[: len(chunk)]
        self._base = end
        return OFFSET.pack(offset) + chunk

    def clear(self) -> None:
        self._base += len(self._buffer)
        self._buffer.clear()
        self._starts.clear()


def pack_apdus(messages: Iterable[Sequence[bytes]], apdu_max: int) -> list[bytes]:
    """All of `messages` cut into APDUs of at most `apdu_max` bytes (see `ApduWriter`)."""
    writer = ApduWriter(apdu_max)
    for frames in messages:
        writer.write(frames)
    apdus = []
    while writer.pending:
        apdus.append(writer.cut())
    return apdus


@dataclass(slots=True)
class ApduReader:
    """One source's stream decoder: APDUs in (in sequence order), whole messages out.

    Only complete messages come out. `lost` (called for a gap in the sequence) drops whatever
    message was half read and waits for the next APDU that says where a message starts. Bad
    framing (a zero length, a frame over `max_message_size`) does the same and is counted; it
    never raises.
    """

    #: Cap on one message's total bytes (all frames): a binding socket's memory must be bounded.
    max_message_size: int
    joined: bool = False
    #: APDUs skipped while waiting for a message start.
    skipped: int = 0
    #: Streams abandoned for bad framing or an oversize message.
    malformed: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _frames: list[bytes] = field(default_factory=list)
    _message_size: int = 0

    def lost(self) -> None:
        """Data before the next APDU is missing: drop the partial message and resynchronise."""
        self.joined = False
        self._buffer.clear()
        self._frames.clear()
        self._message_size = 0

    def feed(self, apdu: bytes) -> list[list[bytes]]:
        """The messages this APDU completes (in order)."""
        if len(apdu) < OFFSET.size:
            self.malformed += 1
            self.lost()
            return []
        (offset,) = OFFSET.unpack_from(apdu)
        data = memoryview(apdu)[OFFSET.size :]
        if not self.joined:
            if offset == NO_MESSAGE_START:
                self.skipped += 1
                return []
            if offset > len(data):
                self.malformed += 1
                return []
            data = data[offset:]
            self.joined = True
        self._buffer += data
        return self._decode()

    def _decode(self) -> list[list[bytes]]:
        messages: list[list[bytes]] = []
        buf = self._buffer
        at = 0
        while at < len(buf):
            size = buf[at]
            head = 2
            if size == LONG_LENGTH_ESCAPE:
                if len(buf) - at < 1 + LONG_LENGTH.size:  # check the size as soon as it is known
                    break
                (size,) = LONG_LENGTH.unpack_from(buf, at + 1)
                head = 10
            if size == 0 or self._message_size + size - 1 > self.max_message_size:
                self.malformed += 1
                self.lost()
                return messages
            if len(buf) - at < head - 1 + size:  # length field(s), then flags + body
                break
            flags = buf[at + head - 1]
            body_start = at + head
            body_end = body_start + size - 1
            self._frames.append(bytes(buf[body_start:body_end]))
            self._message_size += size - 1
            at = body_end
            if not flags & FLAG_MORE:
                messages.append(self._frames)
                self._frames = []
                self._message_size = 0
        del buf[:at]
        return messages
