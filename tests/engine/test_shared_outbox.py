"""A publisher's shared outbox (pipe.SharedOutbox) changes when pipes get messages, never
which: driven through the same operations, a PUB/XPUB core queuing bursts once for all its
subscribers gives each pipe exactly what the message-by-message path gives it."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import engine
from engine.pipe import Pipe, push_batch, take_front
from engine.sockets import SOCKET_CLASSES
from engine.sockets.subscriptions import Subscribers

TOPICS = [b"", b"a", b"ab"]
PIPES = 4

send_st = st.tuples(st.just("send"), st.integers(0, len(TOPICS) - 1), st.booleans())
op_st = st.one_of(
    send_st,
    send_st,
    send_st,
    st.tuples(st.just("sub"), st.integers(0, PIPES - 1), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("write"), st.integers(0, PIPES - 1), st.integers(0, 5)),
    st.tuples(st.just("loop")),
    st.tuples(st.just("attach"), st.integers(0, PIPES - 1)),
    st.tuples(st.just("detach"), st.integers(0, PIPES - 1)),
    st.tuples(st.just("burst"), st.booleans()),
)


def run(
    ops: list[tuple], socket_type: int, sndhwm: int, nodrop: bool, invert: bool, bursts: bool
) -> tuple[list[bool], list[list[list[bytes]]]]:  # what send() said, what each pipe got
    """Play `ops` on a fresh core; with `bursts`, the "burst" ops turn the flusher's sweep
    (the sync face's burst mode) on and off, else it stays off. A "write" is what a loop pass
    does: flush (hand over), then the link takes some messages from one pipe."""
    core = SOCKET_CLASSES[socket_type](lambda *args: None, False)
    core.options.sndhwm = sndhwm
    core.options.xpub_nodrop = int(nodrop)
    core.options.invert_matching = int(invert)
    pipes: list[Pipe] = [core.new_pipe() for _ in range(PIPES)]
    attached = [False] * PIPES
    detached = [False] * PIPES
    written: list[list[list[bytes]]] = [[] for _ in range(PIPES)]
    results: list[bool] = []
    for i in range(2):
        core.attach(pipes[i])
        attached[i] = True
    core.flusher.sweeping = bursts  # the burst ops turn it off and on again
    for n, op in enumerate(ops):
        kind = op[0]
        if kind == "send":
            _, topic, multipart = op
            msg = [TOPICS[topic] + b"#%d" % n] + ([b"more"] if multipart else [])
            results.append(core.send(msg))
        elif kind == "sub":
            _, p, topic, subscribe = op
            if attached[p] and not detached[p]:
                core.deliver(pipes[p], [(b"\x01" if subscribe else b"\x00") + TOPICS[topic]])
        elif kind == "write":
            _, p, count = op
            core.flusher.flush_all()
            pipe = pipes[p]
            if not detached[p]:
                for _ in range(min(count, len(pipe.outbox))):
                    written[p].append(pipe.outbox.popleft())
                    pipe.written += 1
        elif kind == "loop":
            core.flusher.flush_all()
        elif kind == "attach":
            p = op[1]
            if not attached[p]:
                core.attach(pipes[p])
                attached[p] = True
        elif kind == "detach":
            p = op[1]
            if attached[p] and not detached[p]:
                core.detach(pipes[p])
                detached[p] = True
        elif kind == "burst" and bursts:
            core.flusher.sweeping = op[1]
    core.closing()
    got = [written[p] + ([] if detached[p] else list(pipes[p].outbox)) for p in range(PIPES)]
    return results, got


# A subscription that arrives mid-burst: the messages queued before it are not its.
LATE_SUBSCRIBER = [
    ("sub", 0, 0, True),
    ("send", 0, False),
    ("send", 0, False),
    ("send", 0, False),
    ("sub", 1, 0, True),
    ("send", 0, False),
    ("loop",),
]
# Another topic mid-run goes pipe by pipe: only after what the run queued before it.
TOPIC_SWITCH = [
    ("sub", 0, 0, True),
    ("sub", 1, 1, True),
    *[("send", 0, False)] * 3,
    ("send", 1, False),
    ("loop",),
]
# A high-water mark of 2 with a slow pipe: the run's room runs out, per pipe drops follow.
SLOW_PIPE = [
    ("sub", 0, 0, True),
    ("sub", 1, 0, True),
    *[("send", 0, False)] * 4,
    ("write", 0, 2),
    *[("send", 0, False)] * 3,
    ("write", 1, 1),
    *[("send", 0, False)] * 3,
]

# A subscription still unread when its pipe detaches (CI found it): never kept.
GONE_SUBSCRIBER = [("sub", 0, 0, True), ("detach", 0), ("send", 0, False), ("send", 0, False)]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(ops=LATE_SUBSCRIBER, socket_type=engine.PUB, sndhwm=0, nodrop=False, invert=False)
@example(ops=TOPIC_SWITCH, socket_type=engine.PUB, sndhwm=0, nodrop=False, invert=False)
@example(ops=SLOW_PIPE, socket_type=engine.XPUB, sndhwm=2, nodrop=False, invert=False)
@example(ops=SLOW_PIPE, socket_type=engine.XPUB, sndhwm=2, nodrop=True, invert=False)
@example(ops=GONE_SUBSCRIBER, socket_type=engine.PUB, sndhwm=0, nodrop=True, invert=False)
@given(
    ops=st.lists(op_st, max_size=120),
    socket_type=st.sampled_from([engine.PUB, engine.XPUB]),
    sndhwm=st.sampled_from([0, 1, 2, 3, 7]),
    nodrop=st.booleans(),
    invert=st.booleans(),
)
def test_bursts_deliver_what_message_by_message_delivers(
    ops: list[tuple], socket_type: int, sndhwm: int, nodrop: bool, invert: bool
) -> None:
    expected = run(ops, socket_type, sndhwm, nodrop, invert, bursts=False)
    assert run(ops, socket_type, sndhwm, nodrop, invert, bursts=True) == expected


def test_a_subscription_read_after_its_pipe_detached_is_not_kept() -> None:
    """Kept, it would never be cancelled, and under XPUB_NODROP every send would wait for
    a pipe that is gone."""
    results, _ = run(GONE_SUBSCRIBER, engine.XPUB, 0, True, False, bursts=False)
    assert results == [True, True]


def test_a_burst_to_everybody_is_queued_once() -> None:
    """The common case really takes the shared path: 100 messages to three subscribers of
    b"" sit once in the shared outbox until the loop (or the burst size) hands them over."""
    core = SOCKET_CLASSES[engine.PUB](lambda *args: None, False)
    pipes = [core.new_pipe() for _ in range(3)]
    for pipe in pipes:
        core.attach(pipe)
        core.deliver(pipe, [b"\x01"])
    core.flusher.sweeping = True
    for i in range(100):
        assert core.send([b"%d" % i])
    # The first goes pipe by pipe (the same targets twice in a row start a run).
    assert len(core._shared.messages) == 99
    assert all(len(pipe.outbox) == 1 for pipe in pipes)
    core.flusher.flush_all()
    assert not core._shared.messages
    for pipe in pipes:
        assert list(pipe.outbox) == [[b"%d" % i] for i in range(100)]


def test_close_right_after_a_burst_delivers_all_of_it() -> None:
    """The sync face: a PUB closed straight after a burst (much of it still in the shared
    outbox) lingers for all of it; every subscriber gets every message, in order."""
    ctx = engine.Context()
    try:
        pub = ctx.socket(engine.PUB)
        pub.setsockopt(engine.SNDHWM, 0)
        address = pub.bind("tcp://127.0.0.1:0")
        subs = []
        for _ in range(3):
            sub = ctx.socket(engine.SUB)
            sub.setsockopt(engine.RCVHWM, 0)
            sub.setsockopt(engine.SUBSCRIBE, b"")
            sub.rcvtimeo = 10_000
            sub.connect(address)
            subs.append(sub)
        for sub in subs:  # every subscription has reached the PUB once a warm-up arrives
            sub.rcvtimeo = 20
            while True:
                pub.send(b"warm-up")
                try:
                    sub.recv()
                    break
                except engine.Again:
                    pass
            sub.rcvtimeo = 10_000
        for i in range(5000):
            pub.send(b"%d" % i)
        pub.close(linger=10_000)
        for sub in subs:
            got = [sub.recv() for _ in range(5000)]
            got = [m for m in got if m != b"warm-up"]
            while len(got) < 5000:
                got.append(sub.recv())
            assert got == [b"%d" % i for i in range(5000)]
    finally:
        ctx.destroy(linger=0)


def test_everyone_is_the_all_topics_set_only_while_nothing_narrower_is_subscribed() -> None:
    subs: Subscribers[str] = Subscribers()
    assert subs.everyone() is None
    subs.add(b"", "a")
    subs.add(b"", "b")
    everyone = subs.everyone()
    assert everyone == {"a", "b"} and everyone is subs.match(b"any topic")
    subs.add(b"news", "c")
    assert subs.everyone() is None
    subs.remove(b"news", "c")
    assert subs.everyone() is everyone
    subs.remove_peer("a")
    subs.remove_peer("b")
    assert subs.everyone() is None


def test_every_burst_arrives_without_a_later_send() -> None:
    """Bursts that end just as the loop hands the shared outbox over (its sweep runs every
    half millisecond, a burst ends each 256 messages here): the last message of each burst
    must arrive with nothing sent after it."""
    ctx = engine.Context()
    try:
        pub = ctx.socket(engine.PUB)
        pub.setsockopt(engine.SNDHWM, 0)
        address = pub.bind("tcp://127.0.0.1:0")
        subs = []
        for _ in range(4):
            sub = ctx.socket(engine.SUB)
            sub.setsockopt(engine.RCVHWM, 0)
            sub.setsockopt(engine.SUBSCRIBE, b"")
            sub.connect(address)
            subs.append(sub)
        for sub in subs:  # every subscription has reached the PUB once a warm-up arrives
            sub.rcvtimeo = 20
            while True:
                pub.send(b"warm-up")
                try:
                    sub.recv()
                    break
                except engine.Again:
                    pass
            sub.rcvtimeo = 5_000
        for burst in range(60):
            size = 256 * (1 + burst % 3) + (burst % 5) - 2
            for i in range(size):
                pub.send(b"%d.%d" % (burst, i))
            last = b"%d.%d" % (burst, size - 1)
            for sub in subs:
                while sub.recv() != last:
                    pass
    finally:
        ctx.destroy(linger=0)


def test_a_message_queued_while_the_loop_hands_over_gets_a_drain_of_its_own() -> None:
    """The loop took the drain off its list and counted the messages, then the user side
    queued one more (past the burst size, so its own hand-over found the lock taken): that
    message must have a drain scheduled, or it would wait for the next send, forever."""
    core = SOCKET_CLASSES[engine.PUB](lambda *args: None, False)
    pipes = [core.new_pipe() for _ in range(2)]
    for pipe in pipes:
        core.attach(pipe)
        core.deliver(pipe, [b"\x01"])
    core.flusher.sweeping = True
    shared = core._shared
    core.send([b"first"])  # pipe by pipe
    core.send([b"second"])  # starts the run
    with shared._lock:  # the loop, handing over
        for i in range(300):  # the user side's own hand-overs find the lock taken
            core.send([b"%d" % i])
        assert shared.scheduled and len(shared.messages) == 301
        # The loop's flush_all takes the drain off its list, then counts what is queued...
        assert core.flusher._drains.popleft() is shared
        shared.scheduled = False
        counted = len(shared.messages)
        core.send([b"last"])  # ... and this comes in between
        taken = [shared.messages.popleft() for _ in range(counted)]
    push_batch(shared.targets, taken, shared.burst)
    core.flusher.flush_all()  # the sweep that follows
    expected = [[b"first"], [b"second"], *([b"%d" % i] for i in range(300)), [b"last"]]
    for pipe in pipes:
        assert list(pipe.outbox) == expected


@given(st.lists(st.integers(), max_size=20), st.integers(0, 25))
def test_take_front_pops_exactly_the_first_n_in_order(items: list[int], n: int) -> None:
    """What a link takes from its outbox (pipe.take_front): the first `n` items in order and
    nothing more, or IndexError once the queue runs short (CONFLATE took its message)."""
    queue = deque(items)
    if n > len(items):
        with pytest.raises(IndexError):
            take_front(queue, n)
        assert not queue
        return
    assert take_front(queue, n) == items[:n]
    assert list(queue) == items[n:]
