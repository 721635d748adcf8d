"""The client side of the game protocol, with no I/O: the one core every client drives.

:class:`client.session.GameSession` (asyncio) and :class:`loadtest.syncclient.SyncGameClient`
(the engine's sync face, under Locust's gevent) are thin drivers of :class:`ClientCore`, as the
engine's two faces are of its socket core. Requests in, frames out; frames in, results, events
and subscription changes out::

    call = core.act("look", now)            # a Call: the request, its tries, later its outcome
    out = core.take()                       # an Outbox: what the driver must do now
    # send out.send on the request socket (a DEALER), apply out.subscriptions to the SUB
    core.receive_answer(frames, now)        # whatever the request socket received
    core.receive_publication(frames, now)   # whatever the SUB socket received
    core.tick(now)                          # at core.next_deadline(): timeouts, back-off, repairs
    out = core.take()                       # out.done: finished calls; out.events: new events

What it holds:

* **Reply matching.** Every request goes out as ``[tag, b"", request]`` on one DEALER. ``tag``
  is the call's own routing frame, which the front and the workers echo back in the envelope
  (as libzmq's REQ_CORRELATE does), so an answer finds its call without parsing and a late
  answer to a finished call is dropped. Each answer is parsed once
  (:func:`~gameserver.protocol.decode_answer`) and must be of the kind its request expects:
  the reply to that action id, the catch-up of that topic, and so on. Anything else from the
  network is counted in ``discarded`` and otherwise ignored.
* **Retries** (Lazy Pirate). A try unanswered after ``timeout`` counts against that call's
  ``retries``. Then the request socket is thrown away (``Outbox.reset``: a fresh socket drops a
  half-dead connection and the copies queued on it) and every call on the wire is sent again,
  frames unchanged, so an action keeps its action id and happens once. "Busy" and "rate
  limited" answers are retried with jittered back-off for up to ``busy_budget`` seconds.
* **Order.** Logins, resumes and actions go one at a time, in the order they were asked for
  (a "say" asked for after a "go north" is said in the new room); catch-ups and pings go
  alongside them.
* **Following topics.** A session follows the world, its room (changed on every move) and its
  private topic. On entering a room the reply's marks give the seq of the player's own
  arrival: the core subscribes, then catches up from there, so nothing between "you enter" and
  the room's next live event can go missing. A resumed session catches up each topic it still
  follows from where it had read it.
* **Gap repair.** A :class:`~client.tracks.TopicTrack` per topic delivers in order, drops
  duplicates and notices gaps. A gap on a public topic gets ``REPAIR_GRACE_S`` to fill itself
  before a catch-up asks for it; private topics only announce "seq N exists", so their events
  are always fetched (with the session token).
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gameserver.broadcast import decode_publication, wire_topic
from gameserver.protocol import (
    PING_BODY,
    ActionRequest,
    AnyReply,
    CatchupReply,
    CatchupRequest,
    ErrorReply,
    Event,
    LoginReply,
    LoginRequest,
    Message,
    Notice,
    PingRequest,
    Pong,
    ProtocolError,
    Reply,
    ResumeRequest,
    decode_answer,
    encode,
    validated,
)
from gameserver.topics import WORLD_TOPIC, room_topic

from .tracks import TopicTrack

log = logging.getLogger(__name__)

#: Per try: generous enough for a loaded server, and a worker's death is noticed by the
#: front within ~3 s (heartbeats), after which the job runs elsewhere.
DEFAULT_TIMEOUT_S = 4.0
#: Resends after the first try, each on a fresh socket.
DEFAULT_RETRIES = 3
#: How long "busy"/"rate limited" answers are retried before they reach the caller.
BUSY_BUDGET_S = 15.0
BUSY_BACKOFF_INIT_S = 0.05
BUSY_BACKOFF_MAX_S = 1.0
#: A gap on a public topic may just be two workers' events published out of order: wait this
#: long for the missing event before asking for it.
REPAIR_GRACE_S = 0.1
RETRYABLE = frozenset({"unavailable", "rate_limited"})
#: Drivers cap what their sockets accept (MAXMSGSIZE; a bigger message drops the connection).
#: The largest honest answer is a catch-up of a full event log (1,000 events of a few hundred
#: bytes) or a room crowded with names; the largest publication one event.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_PUBLICATION_BYTES = 256 * 1024

CallKind = Literal["login", "resume", "action", "catchup", "ping"]


class SessionError(Exception):
    """Base of the session's errors."""


class ServerUnavailable(SessionError):
    """No answer after every try: the front is down or unreachable."""


class RequestRefused(SessionError):
    """The server answered with an error (``code`` as in the protocol's ErrorCode), or the
    request was refused before sending (a line too long, a malformed name)."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(f"{reply.code}: {reply.message}")
        self.reply = reply
        self.code = reply.code


@dataclass(eq=False)
class Call:
    """One request from its first send to its outcome; a driver waits until ``done``, then
    reads ``result()``. ``size`` and ``round_trip_ms`` describe the answer that ended it."""

    kind: CallKind
    request: Message
    frames: list[bytes]  # [tag, b"", body], resent unchanged
    timeout: float
    retries: int
    busy_until: float
    #: For the catch-ups the core makes itself: the track repaired, and the seq known to exist
    #: when asking (holes below it that the log no longer has are counted as lost).
    track: TopicTrack | None = None
    asked_upto: int = 0
    sent_at: float | None = None
    deadline: float | None = None  # the current try expires (None: not on the wire)
    resend_at: float | None = None  # backing off after a "busy"
    backoff: float = BUSY_BACKOFF_INIT_S
    tries: int = 0  # tries that expired
    done: bool = False
    reply: AnyReply | None = None
    marks: dict[str, int] = field(default_factory=dict)
    error: SessionError | None = None
    size: int = 0
    answered_at: float | None = None

    @property
    def tag(self) -> bytes:
        return self.frames[0]

    @property
    def round_trip_ms(self) -> float:
        if self.sent_at is None or self.answered_at is None:
            return 0.0
        return (self.answered_at - self.sent_at) * 1000

    def result(self) -> AnyReply:
        """The answer; raises RequestRefused or ServerUnavailable (SessionError if unfinished)."""
        if self.error is not None:
            raise self.error
        if self.reply is None:
            raise SessionError(f"the {self.kind} request has not finished")
        return self.reply


@dataclass
class Outbox:
    """What a driver must do after talking to the core, in this order.

    Subscriptions go before the requests: a room's first catch-up covers the time until the
    subscription takes effect at the front, so the subscription must not travel behind it (the
    Guide's Clone pattern: subscribe, then ask for the snapshot). Sent the other way, a worker
    could answer the catch-up before the front read the subscription, and an event published
    in between reached the player neither way until a second catch-up: the 1,000-player load
    test's players sent 116-122 such repairs of rooms a run, 75-86 in this order.
    """

    reset: bool = False  # close the request socket and open a fresh one first
    subscriptions: list[tuple[bool, bytes]] = field(default_factory=list)  # (subscribe?, topic)
    send: list[list[bytes]] = field(default_factory=list)  # for the request socket
    events: list[Event] = field(default_factory=list)  # delivered in order
    done: list[Call] = field(default_factory=list)  # finished calls, repairs included


def _is_answer_to(call: Call, reply: AnyReply) -> bool:
    """Whether ``reply`` may answer ``call`` (an error answers anything but a ping)."""
    request = call.request
    if isinstance(reply, ErrorReply):
        return call.kind != "ping"
    if isinstance(request, ActionRequest):
        return isinstance(reply, Reply) and reply.action_id == request.action_id
    if isinstance(request, CatchupRequest):
        return isinstance(reply, CatchupReply) and reply.topic == request.topic
    if isinstance(request, PingRequest):
        return isinstance(reply, Pong)
    return isinstance(reply, LoginReply)


class ClientCore:
    """One player's protocol state: the session, the topics followed, the calls in flight."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        busy_budget: float = BUSY_BUDGET_S,
        jitter: Callable[[], float] = random.random,
        follow: bool = True,
        decode: Callable[[bytes], Event | Notice] = decode_publication,
    ) -> None:
        """``follow`` False: a driver that only acts and reads no events on this session (a
        load tester's acting half, whose listening twin follows with :meth:`follow_outcome`,
        or a bot): it subscribes to nothing and never catches up. ``decode`` parses a received
        publication (a driver of many players in one process shares one decoding among them:
        client.shared_decoding)."""
        if timeout <= 0 or retries < 0 or busy_budget < 0:
            raise ValueError("timeout must be positive, retries and busy_budget at least 0")
        self.follow = follow
        self.timeout = timeout
        self.retries = retries
        self.busy_budget = busy_budget
        self._jitter = jitter
        self._decode_publication = decode
        self.token: str | None = None
        self.player: str | None = None
        self.room: str | None = None
        self.private_topic: str | None = None
        self.replaced = False  # another login took this player over
        self.ended = False  # the server no longer knows the session (replaced, quit, expired)
        self.tracks: dict[str, TopicTrack] = {}
        self.discarded = 0  # answers and publications ignored: stale, malformed or unexpected
        self._calls: dict[bytes, Call] = {}  # by tag: on the wire or backing off
        self._queue: deque[Call] = deque()  # ordered calls waiting for their turn
        self._current: Call | None = None  # the ordered call being worked on
        self._repairs_due: dict[str, tuple[TopicTrack, float]] = {}
        self._tags = itertools.count(1)
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(6)  # action ids must be unique across sessions too
        self._out = Outbox()

    # -- requests in ----------------------------------------------------------------------------

    def new_action_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def login(
        self,
        name: str,
        password: str,
        now: float,
        *,
        timeout: float | None = None,
        must_exist: bool = False,
        new_password: str | None = None,
    ) -> Call:
        """Log in (the first login with a name registers it, unless ``must_exist``); with
        ``new_password``, the password changes once ``password`` is verified."""
        request = self._build(
            LoginRequest,
            name=name,
            password=password,
            must_exist=must_exist,
            new_password=new_password,
        )
        return self._ordered(self._call("login", request, now, timeout), now)

    def resume(self, token: str, now: float, *, timeout: float | None = None) -> Call:
        """Re-attach to a live session, e.g. after the server restarted."""
        request = self._build(ResumeRequest, token=token)
        return self._ordered(self._call("resume", request, now, timeout), now)

    def act(
        self, text: str, now: float, *, action_id: str | None = None, timeout: float | None = None
    ) -> Call:
        """Run a command line. A game refusal is a Reply with ``ok`` False; an error answer
        ends the call with RequestRefused. Resends reuse the action id."""
        token = self._token()
        action_id = action_id or self.new_action_id()
        request = self._build(ActionRequest, token=token, action_id=action_id, text=text)
        return self._ordered(self._call("action", request, now, timeout), now)

    def catch_up(self, topic: str, since_seq: int, now: float) -> Call:
        """Ask for the events of ``topic`` after ``since_seq`` (repairs do this by themselves)."""
        request = self._build(CatchupRequest, token=self._token(), topic=topic, since_seq=since_seq)
        return self._start(self._call("catchup", request, now, None), now)

    def ping(self, now: float, *, timeout: float | None = None) -> Call:
        """A health check the front answers itself: one try, ``Pong`` or ServerUnavailable."""
        call = self._call("ping", PingRequest(), now, timeout, retries=0)
        return self._start(call, now)

    def follow_outcome(self, reply: Reply, marks: dict[str, int], now: float) -> None:
        """An action of this session was answered on another connection (another window of
        the same player, or a load tester's twin that only listens): follow where it took the
        player (the room's topic, from the reply's marks), as if it had been answered here."""
        if self.token is not None:
            self._acted(reply, marks, now)

    def abandon(self, call: Call, now: float) -> None:
        """The caller stopped waiting: forget the call (an answer to it will be dropped) and
        let the next ordered call go."""
        if call.done:
            return
        call.done = True
        call.error = SessionError(f"the {call.kind} request was abandoned")
        self._calls.pop(call.tag, None)
        if call in self._queue:
            self._queue.remove(call)
        if call.track is not None:
            call.track.repairing = False
        if call is self._current:
            self._current = None
            self._next_ordered(now)

    def _token(self) -> str:
        if self.token is None:
            raise SessionError("not logged in")
        return self.token

    @staticmethod
    def _build(model: type[Message], **fields: Any) -> Message:
        try:
            return validated(model, **fields)
        except ProtocolError as exc:
            raise RequestRefused(exc.to_reply()) from None

    def _call(
        self,
        kind: CallKind,
        request: Message,
        now: float,
        timeout: float | None,
        *,
        retries: int | None = None,
    ) -> Call:
        body = PING_BODY if kind == "ping" else encode(request)
        return Call(
            kind=kind,
            request=request,
            frames=[b"%d" % next(self._tags), b"", body],
            timeout=self.timeout if timeout is None else timeout,
            retries=self.retries if retries is None else retries,
            busy_until=now + self.busy_budget,
        )

    def _ordered(self, call: Call, now: float) -> Call:
        if self._current is None:
            self._current = call
            return self._start(call, now)
        self._queue.append(call)
        return call

    def _next_ordered(self, now: float) -> None:
        if self._current is None and self._queue:
            self._current = self._queue.popleft()
            self._start(self._current, now)

    def _start(self, call: Call, now: float) -> Call:
        self._calls[call.tag] = call
        self._on_wire(call, now)
        return call

    def _on_wire(self, call: Call, now: float) -> None:
        if call.sent_at is None:
            call.sent_at = now
        call.deadline, call.resend_at = now + call.timeout, None
        self._out.send.append(call.frames)

    # -- frames in ------------------------------------------------------------------------------

    def receive_answer(self, frames: list[bytes], now: float) -> None:
        """A message from the request socket: ``[tag, b"", reply, (marks)]``."""
        call = self._calls.get(frames[0]) if len(frames) >= 3 and frames[1] == b"" else None
        if call is None:
            self.discarded += 1  # not ours, or late: that call has finished
            return
        try:
            reply, marks = decode_answer(frames[2:])
        except ProtocolError as exc:
            self.discarded += 1  # debug, not warning: a hostile flood must not flood the log
            log.debug("ignored a malformed answer: %s", exc)
            return
        if not _is_answer_to(call, reply):
            self.discarded += 1
            return
        retry = isinstance(reply, ErrorReply) and reply.code in RETRYABLE
        if retry and now + call.backoff <= call.busy_until:
            call.deadline = None
            call.resend_at = now + call.backoff * (0.5 + self._jitter())
            call.backoff = min(call.backoff * 2, BUSY_BACKOFF_MAX_S)
            return
        self._finish(call, now, reply=reply, marks=marks, size=sum(map(len, frames)))

    def receive_publication(self, frames: list[bytes], now: float) -> None:
        """A message from the SUB socket: one frame, wire topic then event or notice."""
        if len(frames) != 1:
            self.discarded += 1
            return
        try:
            publication = self._decode_publication(frames[0])
        except ProtocolError:
            self.discarded += 1
            log.debug("ignored a malformed publication")
            return
        track = self.tracks.get(publication.topic)
        if track is None:
            return  # a topic just left
        if track.cursor is None and not track.repairing:
            self._repair(track, now, initial=True)  # the first try failed
        if isinstance(publication, Notice):
            track.notice(publication.seq)
            if track.needs_repair:
                self._repair(track, now)
            return
        self._deliver(track.offer(publication))
        if track.needs_repair:
            track.repairing = True  # until the grace is over: nothing else starts one
            self._repairs_due[track.topic] = (track, now + REPAIR_GRACE_S)

    # -- time -----------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do (None: nothing is waiting on time)."""
        times = [c.deadline if c.resend_at is None else c.resend_at for c in self._calls.values()]
        times += [due for _, due in self._repairs_due.values()]
        return min((t for t in times if t is not None), default=None)

    def tick(self, now: float) -> None:
        """Expire tries, resend after back-off, start repairs whose grace is over."""
        expired = False
        for call in list(self._calls.values()):
            if call.resend_at is not None and now >= call.resend_at:
                self._on_wire(call, now)
            elif call.deadline is not None and now >= call.deadline:
                expired = True
                call.tries += 1
                if call.tries > call.retries:
                    error = f"no answer after {call.tries} tries of {call.timeout:g}s"
                    self._finish(call, now, error=ServerUnavailable(error))
        if expired:
            self._reset(now)
        for topic, (track, due) in list(self._repairs_due.items()):
            if now >= due:
                del self._repairs_due[topic]
                self._fetch(track, now, initial=False)

    def _reset(self, now: float) -> None:
        """A fresh request socket; every call that was on the old one goes out again."""
        self._out.reset = True
        self._out.send.clear()
        for call in self._calls.values():
            if call.deadline is not None:
                self._on_wire(call, now)

    # -- out ------------------------------------------------------------------------------------

    def take(self) -> Outbox:
        """Everything to do since the last take; the driver does it in the Outbox's order."""
        out, self._out = self._out, Outbox()
        return out

    @property
    def lost(self) -> int:
        """Events that fell out of the server's log before they could be fetched."""
        return sum(track.lost for track in self.tracks.values())

    # -- outcomes -------------------------------------------------------------------------------

    def _finish(
        self,
        call: Call,
        now: float,
        *,
        reply: AnyReply | None = None,
        marks: dict[str, int] | None = None,
        size: int = 0,
        error: SessionError | None = None,
    ) -> None:
        del self._calls[call.tag]
        if isinstance(reply, ErrorReply):
            error = RequestRefused(reply)
        call.done, call.answered_at, call.size = True, now, size
        call.reply, call.marks, call.error = reply, marks or {}, error
        if call.track is not None:
            self._repaired(call, now)
        elif isinstance(reply, LoginReply):
            self._logged_in(reply, call.marks, now, fresh=call.kind == "login")
        elif isinstance(reply, Reply):
            self._acted(reply, call.marks, now)
        self._out.done.append(call)
        if call is self._current:
            self._current = None
            self._next_ordered(now)

    def _logged_in(self, reply: LoginReply, marks: dict[str, int], now: float, fresh: bool) -> None:
        # A resumed session (after a reconnect, a server restart) missed only the time it was
        # away: each topic it still follows catches up from where it was read to, so what
        # happened meanwhile is delivered (as far as the log reaches). The reply's marks say
        # where the other topics stand now (the server sends the heads of the world and the
        # room), so none needs a whole log fetched just to learn that.
        read_to = (
            {} if fresh else {t: k.cursor for t, k in self.tracks.items() if k.cursor is not None}
        )
        marks = {**marks, **read_to}
        self._unfollow_all()
        self.token, self.player, self.room = reply.token, reply.player, reply.room
        self.private_topic = reply.private_topic
        self.replaced = self.ended = False
        room = room_topic(reply.room)
        self._follow(WORLD_TOPIC, marks.get(WORLD_TOPIC), now)
        self._follow(room, marks.get(room), now)
        # A new session's private topic starts empty; a resumed one's goes on from its cursor,
        # or, if this core never read it, from now (its past stays past).
        self._follow(reply.private_topic, 0 if fresh else read_to.get(reply.private_topic), now)

    def _acted(self, reply: Reply, marks: dict[str, int], now: float) -> None:
        if reply.session_ended:
            self._unfollow_all()
            self.token, self.ended = None, True
        elif reply.room and reply.room != self.room:
            if self.room is not None:
                self._unfollow(room_topic(self.room))
            self.room = reply.room
            topic = room_topic(reply.room)
            self._follow(topic, marks.get(topic), now)

    # -- following topics and repairing gaps ----------------------------------------------------

    def _follow(self, topic: str, cursor: int | None, now: float) -> None:
        if not self.follow:
            return
        track = TopicTrack(topic, cursor=cursor, wanted=cursor or 0)
        self.tracks[topic] = track
        self._out.subscriptions.append((True, wire_topic(topic)))
        # Subscribing takes effect at the front a moment later: ask for what came meanwhile.
        self._repair(track, now, initial=True)

    def _unfollow(self, topic: str) -> None:
        if self.tracks.pop(topic, None) is not None:
            self._repairs_due.pop(topic, None)
            self._out.subscriptions.append((False, wire_topic(topic)))

    def _unfollow_all(self) -> None:
        for topic in list(self.tracks):
            self._unfollow(topic)

    def _repair(self, track: TopicTrack, now: float, *, initial: bool = False) -> None:
        if not track.repairing:
            track.repairing = True
            self._fetch(track, now, initial=initial)

    def _fetch(self, track: TopicTrack, now: float, *, initial: bool) -> None:
        """Ask for what ``track`` misses, or end its repair if nothing is (or it is no longer
        followed). The first catch-up after subscribing always asks."""
        missing = track.cursor is None or track.wanted > track.cursor
        if (
            self.token is None
            or self.tracks.get(track.topic) is not track
            or not (initial or missing)
        ):
            track.repairing = False
            return
        request = CatchupRequest(token=self.token, topic=track.topic, since_seq=track.cursor or 0)
        call = self._call("catchup", request, now, None)
        call.track, call.asked_upto = track, track.wanted
        self._start(call, now)

    def _repaired(self, call: Call, now: float) -> None:
        track = call.track
        assert track is not None
        if isinstance(call.error, RequestRefused):
            # "forbidden" after walking on: that room is not ours to read any more.
            # "unauthorized": the session is over, e.g. taken over by a login elsewhere (whose
            # notice on the private topic can no longer be fetched with this token).
            log.debug("catch-up of %s refused: %s", track.topic, call.error)
            self.ended = self.ended or call.error.code == "unauthorized"
        elif call.error is not None:
            log.warning("catch-up of %s failed: %s", track.topic, call.error)
        if call.error is not None or self.tracks.get(track.topic) is not track:
            track.repairing = False
            return
        reply = call.reply
        assert isinstance(reply, CatchupReply)
        if track.cursor is None:
            self._deliver(track.start_after_history(reply.events))
        else:
            self._deliver(track.repaired(reply.events, reply.truncated, call.asked_upto))
        self._fetch(track, now, initial=False)  # more may be known missing by now

    def _deliver(self, events: list[Event]) -> None:
        for event in events:
            if event.kind == "session_replaced" and event.topic == self.private_topic:
                self.replaced = True
            self._out.events.append(event)
