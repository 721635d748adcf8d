"""Publications decoded once per process, for drivers that run many players side by side.

A load generator's process simulates hundreds of players, and the front sends each room event
to every one of them that is in the room: the same plaintext frame (CURVE seals it per
connection; once opened it is byte for byte the same), decoded and validated once per player.
Measured under `crossroads loadtest -u 1000 --processes 2 --wait 1-3`, each Locust process
received 5,000-8,000 publications a second near the end of its ramp, and decoding them was the
largest part of its players' own CPU; that CPU is taken from the server under test on the same
two cores, and showed up in every player's round trips.

`SharedDecoding.decode` remembers what recent frames decoded to, keyed by their exact bytes, so
the second and later players of a process get the same (frozen, so safely shared) message.
Anything that does not decode is not remembered: it raises as `decode_publication` does, every
time. A player's own client decodes each frame once anyway and keeps the plain function.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from gameserver.broadcast import decode_publication
from gameserver.protocol import Event, Notice

#: Frames remembered. A simulated player reads its events when it next acts (every 1-3 s in a
#: load test), so a frame is wanted again for a few seconds after it first arrives; at the 300
#: or so room events a second of 1,000 players, 4,096 covers more than ten seconds. At about
#: 1 KiB per entry (the frame and its message) that is 4 MiB per process.
SHARED_DECODE_ENTRIES = 4096
#: Larger frames are decoded every time, not remembered. A room event is a few hundred bytes
#: (a `say` of the longest text, 500 characters, under 2 KiB unless most are multi-byte), while a
#: publication may be up to client.protocol.MAX_PUBLICATION_BYTES (256 KiB): bounded by count
#: alone, the memo could hold a gigabyte. With this bound it holds a few tens of MiB at worst.
MAX_REMEMBERED_BYTES = 2048


class SharedDecoding:
    """A bounded memo in front of a publication decoder; oldest entries leave first.

    Safe to share between threads: it only uses OrderedDict operations that the GIL makes
    atomic (get, set, popitem), and two threads decoding the same new frame at once both
    decode it, which costs time, not correctness.
    """

    def __init__(
        self,
        entries: int = SHARED_DECODE_ENTRIES,
        decode: Callable[[bytes], Event | Notice] = decode_publication,
    ) -> None:
        if entries < 1:
            raise ValueError("entries must be at least 1")
        self.entries = entries
        self._decode = decode
        self._memo: OrderedDict[bytes, Event | Notice] = OrderedDict()
        #: Frames answered from the memo (for tests and curious operators).
        self.hits = 0

    def __len__(self) -> int:
        return len(self._memo)

    def decode(self, frame: bytes) -> Event | Notice:
        """What ``decode_publication(frame)`` returns; raises what it raises."""
        if type(frame) is not bytes or len(frame) > MAX_REMEMBERED_BYTES:
            # bytearray, memoryview: unhashable; a large frame: kept out to bound the memory.
            return self._decode(frame)
        memo = self._memo
        known = memo.get(frame)
        if known is not None:
            self.hits += 1
            return known
        publication = self._decode(frame)
        if len(memo) >= self.entries:
            try:
                memo.popitem(last=False)
            except KeyError:  # another thread emptied it meanwhile
                pass
        memo[frame] = publication
        return publication
