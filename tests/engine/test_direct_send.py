"""The sync face's direct send: a PUSH, DEALER or PAIR with one peer offers each message to that
peer's pipe itself. Whatever changes that (a second peer, metering, closing, REQ's state) must
send through the socket's routing again, and no message may be lost or misrouted meanwhile."""

from __future__ import annotations

import engine
from engine.sockets.base import SocketCore

TIMEOUT_MS = 5000


def _core(sock: engine.Socket) -> SocketCore:
    return sock._core


def _pull(ctx: engine.Context) -> tuple[engine.Socket, str]:
    pull = ctx.socket(engine.PULL)
    pull.setsockopt(engine.RCVTIMEO, TIMEOUT_MS)
    pull.bind("tcp://127.0.0.1:0")
    return pull, pull.getsockopt(engine.LAST_ENDPOINT).decode()


def test_one_peer_is_sent_directly_two_are_load_balanced(ctx: engine.Context) -> None:
    first, first_at = _pull(ctx)
    second, second_at = _pull(ctx)
    push = ctx.socket(engine.PUSH)
    push.connect(first_at)
    push.send(b"one")  # processes the attach: one pipe
    assert first.recv() == b"one"
    assert _core(push).direct_out is _core(push).pipes[0]
    push.connect(second_at)
    second_pipe_seen = False
    got: dict[bytes, list[bytes]] = {b"first": [], b"second": []}
    for i in range(40):
        push.send(b"m%d" % i)
        second_pipe_seen = second_pipe_seen or len(_core(push).pipes) == 2
    assert second_pipe_seen and _core(push).direct_out is None
    for name, pull in ((b"first", first), (b"second", second)):
        while True:
            try:
                got[name].append(pull.recv(engine.NOBLOCK))
            except engine.Again:
                if sum(map(len, got.values())) == 40 or not pull.poll(200):
                    break
    assert sorted(got[b"first"] + got[b"second"], key=lambda m: int(m[1:])) == [
        b"m%d" % i for i in range(40)
    ]
    assert got[b"second"]  # the second peer had its share once it was attached


def test_metering_closing_and_req_state_turn_the_direct_send_off(ctx: engine.Context) -> None:
    sink = ctx.socket(engine.DEALER)
    sink.setsockopt(engine.RCVTIMEO, TIMEOUT_MS)
    sink.bind("tcp://127.0.0.1:0")
    dealer = ctx.socket(engine.DEALER)
    dealer.connect(sink.getsockopt(engine.LAST_ENDPOINT).decode())
    dealer.send(b"a")
    assert sink.recv() == b"a"
    assert _core(dealer).direct_out is not None
    traffic = dealer.traffic()
    assert _core(dealer).direct_out is None
    dealer.send(b"metered")
    assert sink.recv() == b"metered" and traffic.msgs_out == 1
    rep = ctx.socket(engine.REP)
    rep.bind("tcp://127.0.0.1:0")
    req = ctx.socket(engine.REQ)
    req.connect(rep.getsockopt(engine.LAST_ENDPOINT).decode())
    req.send(b"request")
    assert rep.recv() == b"request"
    assert len(_core(req).pipes) == 1 and _core(req).direct_out is None  # REQ keeps state
    left, right = ctx.socket(engine.PAIR), ctx.socket(engine.PAIR)
    left.bind("tcp://127.0.0.1:0")
    right.connect(left.getsockopt(engine.LAST_ENDPOINT).decode())
    right.send(b"pair")
    assert left.recv() == b"pair"
    assert _core(right).direct_out is _core(right).pipes[0]
    right.close()
    assert _core(right).direct_out is None


def test_thread_safe_types_are_never_reached_directly(ctx: engine.Context) -> None:
    """SCATTER, GATHER, CLIENT and CHANNEL are built on PUSH, PULL, DEALER and PAIR, but any
    thread may use them at once: each call must go through their lock, not straight to a pipe
    or to the fair-queue."""
    gather = ctx.socket(engine.GATHER)
    gather.bind("tcp://127.0.0.1:0")
    scatter = ctx.socket(engine.SCATTER)
    scatter.connect(gather.getsockopt(engine.LAST_ENDPOINT).decode())
    gather.setsockopt(engine.RCVTIMEO, TIMEOUT_MS)
    scatter.send(b"one")
    assert gather.recv() == b"one"
    assert len(_core(scatter).pipes) == 1
    assert _core(scatter).direct_out is None and _core(gather).direct is None


def test_one_message_writes_keep_the_pipes_count_so_the_high_water_mark_never_fills(
    ctx: engine.Context,
) -> None:
    """A request and its reply each leave in a write of their own (the link's one-message
    step): each must count as written, or the SNDHWM of a long exchange would fill up with
    messages long gone, and sends would block."""
    rep = ctx.socket(engine.REP)
    rep.setsockopt(engine.SNDHWM, 3)
    rep.setsockopt(engine.RCVTIMEO, TIMEOUT_MS)
    rep.bind("tcp://127.0.0.1:0")
    req = ctx.socket(engine.REQ)
    req.setsockopt(engine.SNDHWM, 3)
    req.setsockopt(engine.RCVTIMEO, TIMEOUT_MS)
    req.setsockopt(engine.SNDTIMEO, TIMEOUT_MS)
    req.connect(rep.getsockopt(engine.LAST_ENDPOINT).decode())
    for i in range(40):  # far more than either SNDHWM
        req.send(b"q%d" % i)
        assert rep.recv() == b"q%d" % i
        rep.send(b"a%d" % i)
        assert req.recv() == b"a%d" % i
    for sock in (req, rep):
        (pipe,) = _core(sock).pipes
        assert pipe.queued == pipe.written == 40
        assert not pipe.outbox
