"""A socket's pipe list under attach and detach (sockets/base.py): each pipe knows its slot,
so a socket with thousands of peers adds and drops one without scanning the list. Whatever
the order of attaches and detaches, the list holds exactly the attached pipes, each at the
slot it records, and a load-balancing socket still reaches every one of them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.pipe import Pipe
from engine.sockets import SOCKET_CLASSES
from engine.sockets.base import SocketCore

PIPES = 12

op_st = st.tuples(st.sampled_from(["attach", "detach"]), st.integers(0, PIPES - 1))


def _core(socket_type: int) -> SocketCore:
    return SOCKET_CLASSES[socket_type](lambda *args: None, False)


def _check(core: SocketCore, attached: set[int], pipes: list[Pipe]) -> None:
    assert {id(p) for p in core.pipes} == {id(pipes[i]) for i in attached}
    assert len(core.pipes) == len(attached)
    for slot, pipe in enumerate(core.pipes):
        assert pipe.slot == slot
    for i in set(range(PIPES)) - attached:
        assert pipes[i].slot == -1


@settings(max_examples=300, deadline=None)
@given(st.lists(op_st, max_size=60), st.sampled_from([engine.DEALER, engine.XPUB, engine.ROUTER]))
def test_the_pipe_list_holds_exactly_the_attached_pipes(
    ops: list[tuple[str, int]], socket_type: int
) -> None:
    core = _core(socket_type)
    pipes = [core.new_pipe() for _ in range(PIPES)]
    attached: set[int] = set()
    for op, i in ops:
        if op == "attach":
            core.attach(pipes[i])
            attached.add(i)
        else:
            core.detach(pipes[i])
            attached.discard(i)
        core.process_commands()
        _check(core, attached, pipes)


def test_detaching_from_the_middle_keeps_every_peer_in_the_round() -> None:
    """A DEALER of 1,000 peers loses every third one; the next 666 messages go one to each
    of the rest (round-robin over the list the swaps left)."""
    core = _core(engine.DEALER)
    pipes = [core.new_pipe() for _ in range(1000)]
    for pipe in pipes:
        core.attach(pipe)
        pipe.persistent = True  # takes messages without a link, as a connect-side pipe does
    core.process_commands()
    gone = pipes[::3]
    for pipe in gone:
        core.detach(pipe)
    core.process_commands()
    staying = [p for p in pipes if p not in gone]
    assert len(core.pipes) == len(staying) == 666
    for n in range(len(staying)):
        assert core.send([b"%d" % n])
    assert all(len(p.outbox) == 1 for p in staying)
    assert all(not p.outbox for p in gone)
