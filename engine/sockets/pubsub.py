"""PUB, SUB, XPUB and XSUB (ZeroMQ RFC 29): fan-out filtered at the publisher.

Subscriptions travel as one-frame messages starting with 0x01 (subscribe) or 0x00 (cancel); the
ZMTP codec turns them into SUBSCRIBE/CANCEL commands for 3.1 peers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection

from .. import constants as c
from ..options import UNBOUNDED
from ..pipe import Message, Pipe, SharedOutbox, push_each
from ..zmtp import CANCEL_PREFIX, SUBSCRIBE_PREFIX
from .base import SocketCore
from .parts import all_have_room, distribute_always
from .subscriptions import Subscribers, TopicFilter

#: First byte of a subscription message (ZMTP 3.0's form, which the engine uses throughout).
SUBSCRIBE = SUBSCRIBE_PREFIX[0]


class XPubSocket(SocketCore):
    """Distributes each message to the peers subscribed to a prefix of its first frame; the
    application sees subscriptions as messages."""

    socket_type = c.XPUB
    shows_subscriptions = True

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.subscribers: Subscribers[Pipe] = Subscribers()
        self._for_app: deque[Message] = deque()
        #: In a burst, messages for the same subscribers are queued once (see _send).
        self._shared = SharedOutbox(self.flusher.burst)
        #: How many more messages the shared outbox may take: the least room of its targets
        #: when the run started (their links only ever make more).
        self._budget = 0
        #: The last message's targets: the same collection twice in a row starts a run.
        self._last_targets: object = None
        #: What match() returns for every topic, when every subscription is to b"".
        self._everyone: set[Pipe] | None = None
        #: XPUB_MANUAL: what each peer asked for (cancelled to the application when the
        #: peer goes), the peer of each subscription message the application has still to
        #: receive, in order (None: a departed peer's), and the peer of the last one it
        #: received, which SUBSCRIBE and UNSUBSCRIBE on this socket apply to.
        self._asked: Subscribers[Pipe] = Subscribers()
        self._askers: deque[Pipe | None] = deque()
        self._last_asker: Pipe | None = None
        #: The peer of a subscription message a poll took ahead (see events): it becomes the
        #: last asker when the application receives that message, as in libzmq.
        self._held_asker: Pipe | None = None
        self._holds_asker = False

    def pipe_attached(self, pipe: Pipe) -> None:
        if pipe.takes_all:  # pgm/epgm: no subscriptions travel, every message goes (libzmq)
            self._end_run()
            self.subscribers.add(b"", pipe)
            self._everyone = self.subscribers.everyone()
            return
        welcome = self.options.xpub_welcome_msg
        if welcome:
            pipe.push([welcome])

    def pipe_detached(self, pipe: Pipe) -> None:
        self._end_run()  # the loop may be handing the run over: it iterates the targets
        if self.options.xpub_manual:
            # Each topic the peer asked for is cancelled to the application, as libzmq does,
            # whoever else asked for it: the application chose what each peer really got.
            for topic in self._asked.of_peer(pipe):
                if self.shows_subscriptions:
                    self._for_app.append([CANCEL_PREFIX + topic])
                    self._askers.append(None)
            self._asked.remove_peer(pipe)
            self.subscribers.remove_peer(pipe)
            if self._last_asker is pipe:
                self._last_asker = None
            if self._held_asker is pipe:
                self._held_asker = None
        else:
            for topic in self.subscribers.remove_peer(pipe):
                if self.shows_subscriptions:
                    self._for_app.append([CANCEL_PREFIX + topic])
        self._everyone = self.subscribers.everyone()

    def set_subscription(self, topic: bytes, subscribe: bool) -> None:
        """XPUB_MANUAL: subscribe (or not) the peer whose subscription message the
        application received last; libzmq refuses SUBSCRIBE on an XPUB otherwise."""
        if not self.options.xpub_manual:
            super().set_subscription(topic, subscribe)  # raises EINVAL
        if self._commands:
            self.process_commands()
        pipe = self._last_asker
        if pipe is None or pipe.closed:
            return
        self._end_run()  # messages sent before go to the old set
        if subscribe:
            self.subscribers.add(topic, pipe)
        else:
            self.subscribers.remove(topic, pipe)
        self._everyone = self.subscribers.everyone()

    def _ask(self, msg: Message, subscribe: bool, topic: bytes, pipe: Pipe) -> None:
        """XPUB_MANUAL: keep what the peer asked for, and hand it to the application, which
        decides what to subscribe it to."""
        asked = self._asked
        if subscribe:
            cap = self.options.max_subscriptions
            if cap > 0 and asked.count(pipe) >= cap and not asked.has(topic, pipe):
                return  # MAX_SUBSCRIPTIONS bounds what a peer may ask for, too
            asked.add(topic, pipe)
        else:
            asked.remove(topic, pipe)
        if self.shows_subscriptions:
            self._for_app.append(msg)
            self._askers.append(pipe)

    def topics_count(self) -> int:
        """The distinct topics its subscribers hold, as read so far (libzmq, too, counts what
        its send and recv have taken from the pipes)."""
        return len(self.subscribers.topics())

    def _read_subscriptions(self) -> None:
        """Apply what subscribers sent; XPUB keeps what the application should see."""
        inbox = self.inbox
        while True:
            msg = inbox.take()
            if msg is None:
                # And what inproc subscribers held back meanwhile (SocketCore.reader_busy):
                # their subscriptions count for the next message, as over libzmq's inproc.
                if self.held_by_senders and self._pulled():
                    continue
                return
            first = msg[0]
            if len(msg) != 1:
                self._read_frames(msg, inbox.pipe)
            elif first and first[0] <= SUBSCRIBE:
                self._subscription(msg, inbox.pipe)
            elif self.shows_subscriptions:
                self._for_app.append(msg)

    def _subscription(self, msg: Message, pipe: Pipe) -> None:
        """Apply one subscription (0x01 + topic) or cancel (0x00 + topic) from `pipe`."""
        if pipe.closed:
            # Its peer is gone (the detach may already have run): a subscription kept now
            # would never be cancelled, and under XPUB_NODROP would block every send.
            return
        opts = self.options
        first = msg[0]
        topic = first[1:]
        if opts.xpub_manual:
            self._ask(msg, first[0] == SUBSCRIBE, topic, pipe)
            return
        self._end_run()  # messages sent before a subscription changes go to the old set
        show = self.shows_subscriptions
        if first[0] == SUBSCRIBE:
            cap = opts.max_subscriptions
            if (
                cap > 0
                and self.subscribers.count(pipe) >= cap
                and not self.subscribers.has(topic, pipe)
            ):
                return  # MAX_SUBSCRIPTIONS: a peer's extra topics are not kept
            fresh = self.subscribers.add(topic, pipe)
            if show and (fresh or opts.xpub_verbose or opts.xpub_verboser):
                self._for_app.append(msg)
        else:
            last = self.subscribers.remove(topic, pipe)
            if show and (last or opts.xpub_verboser):
                self._for_app.append(msg)
        self._everyone = self.subscribers.everyone()

    def _read_frames(self, msg: Message, pipe: Pipe) -> None:
        """A message of several frames, read a frame at a time as libzmq's XPUB reads one
        (the engine took it whole, as data): each frame that begins with 0x01 or 0x00 is a
        subscription or a cancel of its own and, when the application is shown it, ends the
        message the application sees; the other frames reach it as they came. So
        [0x01 "a", 0x01 "b"] subscribes to both, shown as two messages, and
        [u1, 0x01 "s", u2] subscribes to "s", shown as [u1, 0x01 "s"] and [u2]."""
        for_app = self._for_app
        manual = self.options.xpub_manual
        part: Message = []
        for frame in msg:
            if not frame or frame[0] > SUBSCRIBE:
                part.append(frame)
                continue
            if manual and part:
                # (XPUB_MANUAL: a subscription stays a message of its own, its peer's)
                for_app.append(part)
                part = []
            shown = len(for_app)
            self._subscription([frame], pipe)
            if part and len(for_app) > shown:
                for_app[-1] = part + for_app[-1]
                part = []
        if part and self.shows_subscriptions:
            for_app.append(part)

    def send(self, msg: Message) -> bool:
        # SocketCore.send, one call shorter: every published message's path.
        if self.traffic is not None:
            return SocketCore.send(self, msg)
        if self._commands:
            self.process_commands()
        shared = self._shared
        if self._budget > 0 and shared.targets is self._everyone and self.flusher.sweeping:
            # A burst's run for everybody (every subscription is b"", so the topic does
            # not matter) goes on, unless subscriptions wait to be read: _send, inline.
            inbox = self.inbox
            if not inbox.incoming and inbox.pos >= len(inbox.batch) and not self.held_by_senders:
                # _queue(msg), inline
                self._budget -= 1
                queued = shared.messages
                queued.append(msg)
                if len(queued) >= shared.burst:
                    shared.try_drain()
                if queued and not shared.scheduled:
                    shared.scheduled = True
                    self.flusher.schedule_drain(shared)
                return True
        return self._send(msg)

    def _targets(self, topic: bytes) -> Collection[Pipe]:
        """The pipes a message on `topic` goes to, subscriptions read first. The matched
        collection itself when it can be (the same object for a topic's every message, which
        the burst path below compares by identity)."""
        if self.inbox.waiting() or self.held_by_senders:
            self._read_subscriptions()
        matched = self.subscribers.match(topic)
        if self.options.invert_matching:
            return [p for p in self.pipes if p not in matched]
        return matched

    def _send(self, msg: Message) -> bool:
        opts = self.options
        targets = self._targets(msg[0])
        shared = self._shared
        if self.flusher.sweeping:
            # A sync-face burst: while the targets stay the same collection (one topic's
            # subscribers, everybody's b""), each message is queued once for all of them,
            # as long as each has room for it; push_batch hands them over in batches.
            if targets is not shared.targets or self._budget <= 0:
                if targets is self._last_targets:
                    self._start_run(targets)
                else:
                    self._last_targets = targets
            if self._budget > 0 and targets is shared.targets:
                self._queue(msg)
                return True
        if shared.targets is not None:
            self._end_run()  # what is queued there goes first
        if opts.xpub_nodrop and not all_have_room(targets):
            return False
        # distribute(targets, msg), inline for each pipe
        push_each(targets, msg, self.flusher.burst)
        return True

    def _queue(self, msg: Message) -> None:
        """One message of the run into the shared outbox; at the burst size, hand over."""
        self._budget -= 1
        shared = self._shared
        queued = shared.messages
        queued.append(msg)
        if len(queued) >= shared.burst:
            shared.try_drain()
        # Not `elif`: the loop may be handing over right now (try_drain let it), and may
        # have counted what it takes before this message came: it needs a drain of its own.
        if queued and not shared.scheduled:
            shared.scheduled = True
            self.flusher.schedule_drain(shared)

    def _start_run(self, targets: Collection[Pipe]) -> None:
        """Queue for `targets` in the shared outbox, if each has room (else not yet)."""
        shared = self._shared
        shared.start_run(targets)  # what was queued reaches its pipes, and counts below
        room = UNBOUNDED
        for pipe in targets:
            if pipe.closed:  # going: sends wait for its detach, as message by message
                room = 0
                break
            left = pipe.sndhwm - (pipe.queued - pipe.written)
            if left < room:
                room = left
        self._budget = room
        if room <= 0:
            shared.start_run(None)

    def _end_run(self) -> None:
        """Hand what the shared outbox holds to its pipes, and queue per pipe from now on
        (before the targets' collection changes: what was sent before goes to the old set)."""
        if self._shared.targets is not None:
            self._shared.start_run(None)
        self._budget = 0

    def closing(self) -> None:
        self._end_run()

    def unsent(self) -> int:
        shared = self._shared
        return super().unsent() + len(shared.messages) * len(shared.targets or ())

    def events(self) -> int:
        # A poll may take the next message ahead (SocketCore.events); its peer is the one
        # SUBSCRIBE and UNSUBSCRIBE apply to only once the application has received it.
        before, ahead = self._last_asker, self._prefetched is not None
        mask = super().events()
        if not ahead and self._prefetched is not None and self._last_asker is not before:
            self._held_asker, self._last_asker = self._last_asker, before
            self._holds_asker = True
        return mask

    def _take_prefetched(self) -> Message:
        if self._holds_asker:
            self._last_asker, self._held_asker = self._held_asker, None
            self._holds_asker = False
        return super()._take_prefetched()

    def _recv(self) -> Message | None:
        self._read_subscriptions()
        if not self._for_app:
            return None
        msg = self._for_app.popleft()
        if self._askers and len(msg) == 1 and msg[0] and msg[0][0] <= SUBSCRIBE:
            pipe = self._askers.popleft()  # XPUB_MANUAL: whom the next SUBSCRIBE is for
            self._last_asker = pipe if pipe is not None and not pipe.closed else None
        return msg

    def can_send(self) -> bool:
        return True

    def room_for_message(self, first: bytes) -> bool:
        """Under XPUB_NODROP, room in every subscriber of the topic (the first frame), as
        libzmq checks at that frame; a publisher that drops always has room."""
        return not self.options.xpub_nodrop or all_have_room(self._targets(first))


class PubSocket(XPubSocket):
    """XPUB without the subscription messages; it cannot receive."""

    socket_type = c.PUB
    shows_subscriptions = False

    def _recv(self) -> Message | None:
        return SocketCore._recv(self)

    def can_recv(self) -> bool:
        return False


class XSubSocket(SocketCore):
    """Receives from publishers, which filter by the subscriptions it sends upstream as
    messages written by the application (0x01/0x00 + topic). As in libzmq, an XSUB takes
    whatever its publishers send (an XPUB_MANUAL publisher may send it other topics than it
    asked for); a SUB also filters for itself."""

    socket_type = c.XSUB
    #: Whether recv drops what matches none of the socket's own subscriptions (libzmq's
    #: options.filter: set for SUB only).
    filters = False

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.filter = TopicFilter()
        # LINGER starts at 0 here, as libzmq's XSUB (and so SUB) sets it: closing must not
        # wait for subscriptions still queued, or a subscriber whose publisher never came
        # held its context's term() for ever under the -1 other types start with.
        self.options.linger = 0

    def topics_count(self) -> int:
        """Its own distinct subscriptions (a repeated one counts once, as libzmq)."""
        return len(self.filter.counts)

    def reattach(self, pipe: Pipe) -> None:
        # Loop side, as the connection is lost: subscriptions still queued for it are stale.
        # pipe_reconnected queues the current set instead, for the next connection.
        pipe.drop_queued()
        super().reattach(pipe)

    def pipe_attached(self, pipe: Pipe) -> None:
        for topic in self.filter.counts:
            pipe.push([SUBSCRIBE_PREFIX + topic])

    pipe_reconnected = pipe_attached

    def takes_directly(self) -> bool:
        return not self.filters or (b"" in self.filter.counts and not self.options.invert_matching)

    def recv(self) -> Message | None:
        # SocketCore.recv with the fair-queue's common case inline when every topic is
        # subscribed (the filter passes all): every such SUB message's path.
        if self.traffic is not None:
            return SocketCore.recv(self)
        if self._commands:
            self.process_commands()
        if self._prefetched is not None:
            return self._take_prefetched()
        if self.filters and (b"" not in self.filter.counts or self.options.invert_matching):
            return self._recv()
        inbox = self.inbox
        pos = inbox.pos
        batch = inbox.batch
        if pos < len(batch):
            inbox.pos = pos + 1
            msg = batch[pos]
            return [msg] if type(msg) is bytes else msg
        return self._recv_or_pull()

    def _send(self, msg: Message) -> bool:
        first = msg[0] if msg else b""
        if len(msg) == 1 and first and first[0] <= SUBSCRIBE:
            topic = first[1:]
            if first[0] == SUBSCRIBE:
                self.filter.add(topic)
                distribute_always(self.pipes, msg)
            elif self.filter.remove(topic):
                distribute_always(self.pipes, msg)
            self.refresh_direct()
            return True
        distribute_always(self.pipes, msg)
        return True

    def _recv(self) -> Message | None:
        if not self.filters:
            return self.inbox.take()
        matches = self.filter.matches
        invert = bool(self.options.invert_matching)
        take = self.inbox.take
        while True:
            msg = take()
            if msg is None:
                return None
            if matches(msg[0]) != invert:
                return msg

    def can_send(self) -> bool:
        return True


class SubSocket(XSubSocket):
    """Subscriptions come from setsockopt(SUBSCRIBE/UNSUBSCRIBE); it cannot send."""

    socket_type = c.SUB
    sends_messages = False
    filters = True

    def set_subscription(self, topic: bytes, subscribe: bool) -> None:
        if self._commands:
            self.process_commands()
        if subscribe:
            # Every subscribe travels, a repeated one too (libzmq's SUB): an XPUB_VERBOSE
            # publisher shows each. A cancel travels when the last reference goes.
            self.filter.add(topic)
            distribute_always(self.pipes, [SUBSCRIBE_PREFIX + topic])
        elif self.filter.remove(topic):
            distribute_always(self.pipes, [CANCEL_PREFIX + topic])
        self.refresh_direct()

    def _send(self, msg: Message) -> bool:
        return SocketCore._send(self, msg)

    def can_send(self) -> bool:
        return False
