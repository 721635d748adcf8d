"""What goes out on the state broadcast (the front's XPUB), and how a subscriber reads it.

Each publication is two frames: the *wire topic* and a payload.

* The wire topic is the topic name plus a terminator byte. PUB/SUB matches prefixes, and
  ``room.inn`` is a prefix of ``room.inn_loft``; with the terminator a subscription to one room
  never receives another's events.
* Public topics (``world``, ``room.<id>``) carry the full :class:`~gameserver.protocol.Event`.
* Private topics carry only a :class:`~gameserver.protocol.Notice` (topic and sequence number).
  A hostile subscriber can subscribe to every prefix, even the empty one, so nothing secret may
  ever be broadcast; the owner fetches the content with a catch-up request, which needs the
  session token.

A worker builds these frames (:func:`publication_frames`); the front only relays them.
"""

from __future__ import annotations

from collections.abc import Iterable

from .protocol import Event, Notice, ProtocolError, decode_event, decode_notice, encode
from .topics import PRIVATE_PREFIX

__all__ = [
    "NOTICE_TYPE",
    "TOPIC_END",
    "Notice",
    "decode_publication",
    "is_private",
    "marks",
    "notice_bytes",
    "publication_frames",
    "topic_of",
    "wire_topic",
]

#: Ends every wire topic; it cannot occur in a topic name (``[a-z0-9_.]``).
TOPIC_END = b"\x00"
NOTICE_TYPE: str = Notice.model_fields["type"].default


def wire_topic(topic: str) -> bytes:
    """The first frame of a publication on ``topic``, and what to subscribe to for it."""
    return topic.encode() + TOPIC_END


def topic_of(frame: bytes) -> str | None:
    """The topic named by a wire-topic frame, or None if it is not one."""
    if not frame.endswith(TOPIC_END):
        return None
    try:
        return frame[: -len(TOPIC_END)].decode("ascii")
    except UnicodeDecodeError:
        return None


def is_private(topic: str) -> bool:
    return topic.startswith(PRIVATE_PREFIX)


def notice_bytes(event: Event) -> bytes:
    """ "Something new on your private topic": the owner fetches it by catch-up."""
    return encode(Notice(topic=event.topic, seq=event.seq))


def publication_frames(events: Iterable[Event]) -> list[bytes]:
    """Flat ``[wire_topic, payload, ...]`` for the front to publish, private ones sealed."""
    frames: list[bytes] = []
    for event in events:
        payload = notice_bytes(event) if is_private(event.topic) else encode(event)
        frames += [wire_topic(event.topic), payload]
    return frames


def marks(events: Iterable[Event]) -> dict[str, int]:
    """The highest seq per public topic among an outcome's events.

    Sent to the requester with the reply: after entering a room, the seq of its own arrival
    says exactly where its view of the room starts, so nothing after it can go unnoticed.
    """
    out: dict[str, int] = {}
    for event in events:
        if not is_private(event.topic):
            out[event.topic] = max(event.seq, out.get(event.topic, 0))
    return out


def decode_publication(topic_frame: bytes, payload: bytes) -> Event | Notice:
    """Parse one received publication; raises :class:`ProtocolError` for anything malformed."""
    topic = topic_of(topic_frame)
    if topic is None:
        raise ProtocolError("bad_request", "not a wire topic")
    message = decode_notice(payload) if is_private(topic) else decode_event(payload)
    if message.topic != topic:
        raise ProtocolError("bad_request", "payload topic does not match its wire topic")
    return message
