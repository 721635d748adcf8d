"""Local catch-up: a short per-topic history so a region's catch-up requests are answered by its
relay instead of crossing to the data centre (opt-in: ``crossroads relay --history N``).

Only public topics (``world``, ``room.*``) are kept: private topics carry bare notices, so their
content must come from the front. A request is answered here only when the answer is provably
complete; anything else goes upstream unchanged:

* the history holds every seq from ``since_seq + 1`` to its newest, with no gap;
* its newest is at least the highest seq this relay has seen announced for the topic in reply
  marks, since a client told "seq N exists" would otherwise count a still-travelling N as lost.

Caveat: the relay does not check the session token or the front's "only your current room"
rule. Public topics are readable by anyone subscribing to the relay, so nothing secret leaks,
but a relay with history lets any client read the recent past of any public topic it carries.
"""

from __future__ import annotations

from collections import deque

import orjson

from gameserver.broadcast import is_private, split_publication, wire_topic
from gameserver.protocol import (
    CatchupReply,
    CatchupRequest,
    ProtocolError,
    decode_event,
    decode_marks,
    decode_request,
    encode,
)

#: Cheap pre-filter on raw request bytes: only these are worth parsing.
CATCHUP_MARKER = b'"catchup"'


class History:
    """The last ``depth`` public events per subscribed topic, as contiguous seq runs."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._events: dict[str, deque[tuple[int, bytes]]] = {}
        self._announced: dict[str, int] = {}
        self.answered = 0
        self.forwarded = 0

    def record(self, msg: list[bytes]) -> None:
        """A publication that came down from upstream."""
        split = split_publication(msg[0]) if len(msg) == 1 else None
        if split is None or is_private(split[0]):
            return
        topic, payload = split
        try:
            seq = orjson.loads(payload).get("seq")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if type(seq) is not int:
            return
        run = self._events.setdefault(topic, deque(maxlen=self.depth))
        if run and seq <= run[-1][0]:
            return  # a retried action republished it: already here
        if run and seq != run[-1][0] + 1:
            run.clear()  # a gap (a drop upstream): only contiguous runs answer requests
        run.append((seq, payload))

    def forget(self, prefix: bytes) -> None:
        """A subscription prefix was cancelled upstream: the topics it fed may stop arriving,
        so their logs go (another subscription may still feed one; it just restarts empty)."""
        for topic in [t for t in self._events if wire_topic(t).startswith(prefix)]:
            del self._events[topic]

    def note_marks(self, body: list[bytes]) -> None:
        """A reply going down; its optional second frame maps topics to seqs that exist."""
        if len(body) < 2:
            return
        try:
            marks = decode_marks(body[1])
        except ProtocolError:
            return
        for topic, seq in marks.items():
            self._announced[topic] = max(seq, self._announced.get(topic, 0))

    def answer(self, body: list[bytes]) -> bytes | None:
        """The encoded reply to a catch-up request, or None to send it upstream."""
        if len(body) != 1 or CATCHUP_MARKER not in body[0]:
            return None
        try:
            request = decode_request(body[0])
        except ProtocolError:
            return None  # the front explains what is wrong with it
        if not isinstance(request, CatchupRequest):
            return None
        try:
            reply = self._complete(request.topic, request.since_seq)
        except ProtocolError:
            reply = None  # a malformed event slipped into the log: let the front answer
        if reply is None:
            self.forwarded += 1
        else:
            self.answered += 1
        return reply

    def _complete(self, topic: str, since_seq: int) -> bytes | None:
        run = self._events.get(topic)
        if not run or is_private(topic):
            return None
        newest = run[-1][0]
        if newest < self._announced.get(topic, 0) or newest < since_seq:
            return None
        if run[0][0] > since_seq + 1:
            return None  # older than what is kept here
        events = [decode_event(raw) for seq, raw in run if seq > since_seq]
        return encode(CatchupReply(topic=topic, events=events, truncated=False))
