"""What goes out on the state broadcast (the front's XPUB), and how a subscriber reads it.

Each publication is one frame: the *wire topic*, then the payload.

* One frame, not two, because the front seals every frame once per CURVE subscriber: at a
  thousand subscribers of a room, a second frame per event was about a sixth of the front's
  time per event. PUB/SUB matches a subscription against the start of the first frame, so a
  topic that starts the frame filters as well as a frame of its own.
* The wire topic is the topic name plus a terminator byte. PUB/SUB matches prefixes, and
  ``room.inn`` is a prefix of ``room.inn_loft``; with the terminator a subscription to one room
  never receives another's events.
  The payload is JSON, which never holds that byte unescaped, so the first one ends the topic.
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
from .store.base import settle_placeholders
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
    "split_publication",
    "wire_topic",
]

#: Ends every wire topic; it cannot occur in a topic name (``[a-z0-9_.]``).
TOPIC_END = b"\x00"
NOTICE_TYPE: str = Notice.model_fields["type"].default


def wire_topic(topic: str) -> bytes:
    """The first frame of a publication on ``topic``, and what to subscribe to for it."""
    return topic.encode() + TOPIC_END


def split_publication(frame: bytes) -> tuple[str, bytes] | None:
    """``(topic, payload)`` of a received publication, or None if it does not start with a
    wire topic."""
    end = frame.find(TOPIC_END)
    if end <= 0:
        return None
    try:
        topic = frame[:end].decode("ascii")
    except UnicodeDecodeError:
        return None
    return topic, frame[end + len(TOPIC_END) :]


def is_private(topic: str) -> bool:
    return topic.startswith(PRIVATE_PREFIX)


def notice_bytes(event: Event) -> bytes:
    """ "Something new on your private topic": the owner fetches it by catch-up."""
    # Built unchecked: the event's topic was checked, and its seq may be a placeholder
    # (Tx.reserve) until the worker's batch commits (settle_frames).
    return encode(Notice.model_construct(topic=event.topic, seq=event.seq))


def publication_frames(events: Iterable[Event]) -> list[bytes]:
    """One frame per event for the front to publish (wire topic, then payload); a private
    topic's carries only a notice."""
    return [
        wire_topic(event.topic)
        + (notice_bytes(event) if is_private(event.topic) else encode(event))
        for event in events
    ]


def marks(events: Iterable[Event]) -> dict[str, int]:
    """The highest seq per public topic among an outcome's events.

    Sent to the requester with the reply: after entering a room, the seq of its own arrival
    says exactly where its view of the room starts, so nothing after it can go unnoticed.
    """
    out: dict[str, int] = {}
    for event in events:  # in the order they were numbered: the last of a topic is its highest
        if not is_private(event.topic):
            out[event.topic] = event.seq  # (a placeholder until its batch commits)
    return out


def settle_frames(frames: list[bytes], assigned: dict[int, int]) -> list[bytes]:
    """A worker's answer ``[reply, marks, *publications]`` with the seq placeholders of its
    store batch (Tx.reserve) replaced by the values the commit gave them. The reply carries
    no seq; the marks frame has no text from players, so any member's value is settled."""
    if not assigned or len(frames) < 2:
        return frames
    return [
        frames[0],
        settle_placeholders(frames[1], assigned, any_member=True),
        *(settle_placeholders(frame, assigned) for frame in frames[2:]),
    ]


def decode_publication(frame: bytes) -> Event | Notice:
    """Parse one received publication; raises :class:`ProtocolError` for anything malformed."""
    split = split_publication(frame)
    if split is None:
        raise ProtocolError("bad_request", "not a wire topic")
    topic, payload = split
    message = decode_notice(payload) if is_private(topic) else decode_event(payload)
    if message.topic != topic:
        raise ProtocolError("bad_request", "payload topic does not match its wire topic")
    return message
