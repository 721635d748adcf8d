"""REQ/REP state machines, REQ_RELAXED/REQ_CORRELATE and envelopes through ROUTER/DEALER."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from enginekit import TRANSPORTS, assert_quiet, async_test, network, recv, recv_n, within

import engine
from engine.asyncio import Socket

pytestmark = pytest.mark.timeout(90)


def _efsm(info: pytest.ExceptionInfo[engine.ZMQError]) -> None:
    assert info.value.errno == engine.EFSM
    assert not isinstance(info.value, engine.Again)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_req_rep_alternate(transport: str) -> None:
    async with network(transport) as net:
        rep, req = net.socket(engine.REP), net.socket(engine.REQ)
        req.connect(net.bind(rep))
        for i in range(20):
            await req.send_multipart([b"q", b"%d" % i])
            assert await recv(rep) == [b"q", b"%d" % i]
            await rep.send(b"a%d" % i)
            assert await recv(req) == [b"a%d" % i]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_req_efsm(transport: str) -> None:
    """REQ: recv before any send, and a second send before the reply, are EFSM errors."""
    async with network(transport) as net:
        rep, req = net.socket(engine.REP), net.socket(engine.REQ)
        req.connect(net.bind(rep))
        with pytest.raises(engine.ZMQError) as info:
            await req.recv()
        _efsm(info)
        with pytest.raises(engine.ZMQError) as info:
            await req.recv(engine.DONTWAIT)
        _efsm(info)
        await req.send(b"first")
        with pytest.raises(engine.ZMQError) as info:
            await req.send(b"second")
        _efsm(info)
        with pytest.raises(engine.ZMQError) as info:
            await req.send(b"second", engine.DONTWAIT)
        _efsm(info)
        # The failed sends changed nothing: the exchange completes normally.
        assert await recv(rep) == [b"first"]
        await rep.send(b"reply")
        assert await recv(req) == [b"reply"]
        await assert_quiet(rep, 50)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_rep_efsm(transport: str) -> None:
    """REP: send before a request, and a second recv before replying, are EFSM errors."""
    async with network(transport) as net:
        rep, req = net.socket(engine.REP), net.socket(engine.REQ)
        req.connect(net.bind(rep))
        with pytest.raises(engine.ZMQError) as info:
            await rep.send(b"unasked")
        _efsm(info)
        await req.send(b"q")
        assert await recv(rep) == [b"q"]
        with pytest.raises(engine.ZMQError) as info:
            await rep.recv()
        _efsm(info)
        await rep.send(b"a")
        assert await recv(req) == [b"a"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_req_relaxed_allows_new_request(transport: str) -> None:
    async with network(transport) as net:
        rep = net.socket(engine.REP)
        req = net.socket(engine.REQ, req_relaxed=1)
        req.connect(net.bind(rep))
        await req.send(b"r1")
        await req.send(b"r2")  # no EFSM
        for _ in range(2):
            body = await recv(rep)
            await rep.send(b"re:" + body[0])
        assert (await recv(req))[0] in (b"re:r1", b"re:r2")


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_req_correlate_ignores_stale_replies(transport: str) -> None:
    async with network(transport) as net:
        router = net.socket(engine.ROUTER)
        req = net.socket(engine.REQ, req_relaxed=1, req_correlate=1, routing_id=b"client")
        req.connect(net.bind(router))
        await req.send(b"r1")
        rid, id1, delim, body = await recv(router)
        assert (rid, delim, body) == (b"client", b"", b"r1")
        assert len(id1) == 4
        await req.send(b"r2")
        _, id2, _, body2 = await recv(router)
        assert body2 == b"r2" and id2 != id1
        await router.send_multipart([b"client", id1, b"", b"stale"])
        await router.send_multipart([b"client", b"\xff\xff\xff\xff", b"", b"bogus"])
        await router.send_multipart([b"client", id2, b"", b"fresh"])
        assert await recv(req) == [b"fresh"]
        # The next request gets its own, new id.
        await req.send(b"r3")
        _, id3, _, _ = await recv(router)
        assert id3 not in (id1, id2)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_req_round_robins_two_reps(transport: str) -> None:
    async with network(transport) as net:
        reps = [net.socket(engine.REP) for _ in range(2)]
        req = net.socket(engine.REQ)
        for rep in reps:
            req.connect(net.bind(rep))

        async def serve(name: bytes, rep: Socket) -> None:
            while True:
                msg = await rep.recv()
                await rep.send(name + b":" + msg)

        servers = [asyncio.ensure_future(serve(b"%d" % n, r)) for n, r in enumerate(reps)]
        answers = []
        for i in range(8):
            await req.send(b"%d" % i)
            answers.append((await recv(req))[0])
        for s in servers:
            s.cancel()
        served_by = [a.split(b":")[0] for a in answers]
        assert served_by in ([b"0", b"1"] * 4, [b"1", b"0"] * 4)
        assert [a.split(b":")[1] for a in answers] == [b"%d" % i for i in range(8)]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_rep_answers_each_requester(transport: str) -> None:
    """One REP, several REQs: each reply goes back to the REQ that asked."""
    async with network(transport) as net:
        rep = net.socket(engine.REP)
        ep = net.bind(rep)
        reqs = [net.socket(engine.REQ) for _ in range(3)]
        for n, req in enumerate(reqs):
            req.connect(ep)
            await req.send(b"from-%d" % n)
        for _ in range(3):
            body = await recv(rep)
            await rep.send(b"to-" + body[0][5:])
        for n, req in enumerate(reqs):
            assert await recv(req) == [b"to-%d" % n]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_dealer_talks_to_rep_with_delimiter(transport: str) -> None:
    """REP drops a request without an envelope delimiter and answers one with it."""
    async with network(transport) as net:
        rep, dealer = net.socket(engine.REP), net.socket(engine.DEALER)
        dealer.connect(net.bind(rep))
        await dealer.send(b"no-delimiter")
        await dealer.send_multipart([b"", b"proper"])
        assert await recv(rep) == [b"proper"]
        await rep.send(b"answer")
        assert await recv(dealer) == [b"", b"answer"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_replies_find_their_requester_through_broker(transport: str) -> None:
    """REQ clients -> ROUTER | DEALER -> REP workers: every reply reaches its own client."""
    async with network(transport) as net:
        frontend, backend = net.socket(engine.ROUTER), net.socket(engine.DEALER)
        front_ep, back_ep = net.bind(frontend), net.bind(backend)

        async def shuttle(src: Socket, dst: Socket) -> None:
            while True:
                await dst.send_multipart(await src.recv_multipart())

        async def work(n: int, rep: Socket) -> None:
            while True:
                client, seq = await rep.recv_multipart()
                await rep.send_multipart([client, seq, b"worker-%d" % n])

        workers = [net.socket(engine.REP) for _ in range(2)]
        for w in workers:
            w.connect(back_ep)
        clients = [net.socket(engine.REQ) for _ in range(3)]
        for c in clients:
            c.connect(front_ep)
        tasks = [
            asyncio.ensure_future(shuttle(frontend, backend)),
            asyncio.ensure_future(shuttle(backend, frontend)),
            *(asyncio.ensure_future(work(n, w)) for n, w in enumerate(workers)),
        ]

        async def client(n: int, req: Socket) -> set[bytes]:
            used = set()
            for seq in range(15):
                await req.send_multipart([b"c%d" % n, b"%d" % seq])
                name, got_seq, worker = await req.recv_multipart()
                assert (name, got_seq) == (b"c%d" % n, b"%d" % seq)
                used.add(worker)
            return used

        try:
            used = await within(asyncio.gather(*(client(n, c) for n, c in enumerate(clients))))
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        assert set().union(*used) == {b"worker-0", b"worker-1"}


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_router_sees_req_envelope(transport: str) -> None:
    async with network(transport) as net:
        router = net.socket(engine.ROUTER)
        req = net.socket(engine.REQ, routing_id=b"R")
        req.connect(net.bind(router))
        await req.send_multipart([b"a", b"b"])
        assert await recv(router) == [b"R", b"", b"a", b"b"]
        # A reply without the delimiter is dropped by REQ; the proper one gets through.
        await router.send_multipart([b"R", b"no-delimiter"])
        await router.send_multipart([b"R", b"", b"ok"])
        assert await recv_n(req, 1) == [[b"ok"]]


@pytest.mark.parametrize("lib", [engine, pytest.importorskip("zmq")], ids=["engine", "pyzmq"])
def test_req_and_rep_may_not_send_before_the_last_frame_is_read(lib: object) -> None:
    """libzmq: a REP replies, and a REQ asks again, only once the whole message is read; the
    engine let either send after a multipart message's first frame (its core had taken the
    message whole), and the rest of that message went astray."""
    ctx = lib.Context()  # type: ignore[attr-defined]
    try:
        req, rep = ctx.socket(lib.REQ), ctx.socket(lib.REP)  # type: ignore[attr-defined]
        req.rcvtimeo = rep.rcvtimeo = 10_000
        rep.bind("tcp://127.0.0.1:0")
        req.connect(rep.last_endpoint.decode())
        for asker, answerer in ((req, rep), (rep, req)):
            if asker is req:
                req.send_multipart([b"q1", b"q2"])
            first = answerer.recv()
            assert answerer.poll(0, lib.POLLOUT) == 0  # type: ignore[attr-defined]
            with pytest.raises(lib.ZMQError) as early:  # type: ignore[attr-defined]
                answerer.send(b"too soon")
            assert early.value.errno == lib.EFSM  # type: ignore[attr-defined]
            assert [first, answerer.recv(), answerer.rcvmore] == [b"q1", b"q2", 0]
            answerer.send_multipart([b"q1", b"q2"])  # the next leg: the same two frames
        assert rep.recv_multipart() == [b"q1", b"q2"]
    finally:
        ctx.destroy(linger=0)
