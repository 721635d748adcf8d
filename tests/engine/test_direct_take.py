"""The sync face takes a PULL's or SUB's messages straight from the fair-queue while the
core's `direct` names it. That one attribute is the face's whole check on every message, so
the core must clear it while anything has to come first: a command the loop queued (a pipe
attached, detached or reconnected) or the message events() took to learn that one was there.
"""

from __future__ import annotations

import engine
from engine import constants as c
from engine.sockets import SOCKET_CLASSES
from engine.sockets.base import SocketCore


def _core(socket_type: int) -> SocketCore:
    core = SOCKET_CLASSES[socket_type](lambda *args: None, False)
    if socket_type == c.SUB:
        core.set_subscription(b"", True)
    core.refresh_direct()
    return core


def test_loop_commands_clear_direct_until_taken() -> None:
    for socket_type in (c.PULL, c.SUB):
        core = _core(socket_type)
        assert core.direct is core.inbox
        pipe = core.new_pipe()
        core.attach(pipe)  # what a link does on the loop
        assert core.direct is None
        core.process_commands()
        assert pipe in core.pipes and core.direct is core.inbox
        core.detach(pipe)
        assert core.direct is None
        core.process_commands()
        assert pipe not in core.pipes and core.direct is core.inbox


def test_a_command_queued_during_refresh_keeps_direct_clear() -> None:
    """The loop may queue a command after the user side emptied the queue and before it set
    `direct` again: refresh_direct must see it and leave `direct` clear."""
    core = _core(c.PULL)
    pipe = core.new_pipe()
    core._commands.append((core._attach, pipe))  # queued, its clearing of `direct` undone
    core.refresh_direct()
    assert core.direct is None
    core.process_commands()
    assert core.direct is core.inbox


def test_events_takes_nothing_ahead_of_a_direct_take() -> None:
    core = _core(c.PULL)
    pipe = core.new_pipe()
    core.attach(pipe)
    core.process_commands()
    assert not core.events() & c.POLLIN
    core.deliver(pipe, [b"first", b"second"])
    assert core.events() & c.POLLIN
    assert core.direct is core.inbox and core._prefetched is None
    assert core.recv() == [b"first"]


def test_a_prefetched_message_keeps_direct_clear_until_handed_out() -> None:
    """A SUB filtering topics is not taken directly, so events() takes a message ahead; if
    subscribing to everything then makes it a direct take, that message still comes first."""
    core = _core(c.SUB)
    core.set_subscription(b"", False)
    core.set_subscription(b"a", True)
    pipe = core.new_pipe()
    core.attach(pipe)
    core.process_commands()
    core.deliver(pipe, [b"a1", b"a2"])
    assert core.direct is None and core.events() & c.POLLIN
    assert core._prefetched == [b"a1"]
    core.set_subscription(b"", True)
    assert core.direct is None  # a direct take now would hand out a2 first
    assert core.recv() == [b"a1"]
    assert core.direct is core.inbox
    assert core.recv() == [b"a2"]


def test_poll_then_recv_keeps_order_through_the_sync_face(ctx: engine.Context) -> None:
    pull = ctx.socket(engine.PULL)
    push = ctx.socket(engine.PUSH)
    pull.bind("tcp://127.0.0.1:0")
    push.connect(pull.getsockopt(engine.LAST_ENDPOINT).decode())
    sent = [str(i).encode() for i in range(200)]
    for body in sent:
        push.send(body)
    poller = engine.Poller()
    poller.register(pull, engine.POLLIN)
    got = []
    while len(got) < len(sent):
        if len(got) % 3 == 0:  # a poll between some receives: events() takes one ahead
            assert dict(poller.poll(10_000)).get(pull) == engine.POLLIN
        got.append(pull.recv())
    assert got == sent
