"""A crowd of handshakes is paced: a few handshake reads per pass of the asyncio loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

import engine
import engine.asyncio as ezmq
from engine.transport.handshakes import HANDSHAKE_STEPS_PER_PASS, HandshakePacer
from engine.zmtp import State, ZMTPConnection

zmq = pytest.importorskip("zmq")
pytest.importorskip("nacl")

CROWD = 40


def curve_router(ctx: ezmq.Context, secret: bytes) -> tuple[ezmq.Socket, str]:
    """An asyncio ROUTER that is a CURVE server, bound to a free port; and its endpoint."""
    router = ctx.socket(engine.ROUTER)
    router.curve_server = True
    router.curve_secretkey = secret
    router.bind("tcp://127.0.0.1:0")
    return router, router.getsockopt(engine.LAST_ENDPOINT).decode()


def test_pacer_admits_a_budget_per_pass_and_resumes_in_order() -> None:
    async def main() -> list[str]:
        pacer = HandshakePacer(asyncio.get_running_loop())
        ran: list[str] = []
        admitted = [pacer.admit() for _ in range(HANDSHAKE_STEPS_PER_PASS)]
        assert admitted == [True] * HANDSHAKE_STEPS_PER_PASS
        assert not pacer.admit()
        for name in "abcde":
            pacer.wait(lambda name=name: ran.append(name))
        assert not pacer.admit()  # others wait: nobody jumps the queue
        passes = []
        while pacer.waiting:
            await asyncio.sleep(0)  # one pass of the loop
            passes.append("".join(ran))
        assert passes[-1] == "abcde"
        # Each pass took at most the budget from the queue.
        grown = [len(p) for p in passes]
        assert all(
            b - a <= HANDSHAKE_STEPS_PER_PASS for a, b in zip([0, *grown], grown, strict=False)
        )
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert pacer.admit()  # the budget came back once the crowd was through
        return ran

    assert asyncio.run(main()) == list("abcde")


def test_a_crowd_of_curve_clients_handshakes_a_few_per_pass(monkeypatch) -> None:
    """40 libzmq CURVE clients connect at once to an asyncio ROUTER. Every one of them is
    answered, and no pass of the server's loop ran more than the budget of handshake reads."""
    public, secret = engine.curve_keypair()
    steps_per_pass: dict[int, int] = {}
    current_pass = [0]
    receive = ZMTPConnection.receive_data

    def counting_receive(self: ZMTPConnection, data: bytes, *args: object) -> object:
        # The codec of a connection still in its handshake: one handshake read.
        if self.state is not State.TRAFFIC and data:
            steps_per_pass[current_pass[0]] = steps_per_pass.get(current_pass[0], 0) + 1
        return receive(self, data, *args)

    monkeypatch.setattr(ZMTPConnection, "receive_data", counting_receive)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ctx = ezmq.Context()
        router, endpoint = curve_router(ctx, secret)
        stop = asyncio.Event()

        async def count_passes() -> None:
            while not stop.is_set():
                current_pass[0] += 1
                await asyncio.sleep(0)

        counter = asyncio.ensure_future(count_passes())
        answered = threading.Event()
        failures: list[str] = []

        def crowd() -> None:
            zctx = zmq.Context()
            try:
                sockets = []
                for _ in range(CROWD):
                    s = zctx.socket(zmq.DEALER)
                    s.curve_serverkey = public
                    s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
                    s.linger = 0
                    s.rcvtimeo = 20_000
                    s.connect(endpoint)
                    sockets.append(s)
                for s in sockets:
                    s.send(b"hello")
                for s in sockets:
                    if s.recv() != b"welcome":
                        failures.append("wrong answer")
            except zmq.ZMQError as exc:
                failures.append(str(exc))
            finally:
                zctx.destroy(linger=0)
                answered.set()

        thread = threading.Thread(target=crowd, daemon=True)
        thread.start()
        for _ in range(CROWD):
            peer, body = await asyncio.wait_for(router.recv_multipart(), 20)
            assert body == b"hello"
            await router.send_multipart([peer, b"welcome"])
        await loop.run_in_executor(None, answered.wait, 30)
        stop.set()
        await counter
        thread.join(10)
        router.close(0)
        ctx.term()
        assert not failures

    asyncio.run(main())
    assert sum(steps_per_pass.values()) >= 2 * CROWD  # the greeting and the handshake proper
    assert max(steps_per_pass.values()) <= HANDSHAKE_STEPS_PER_PASS


def test_a_client_that_leaves_while_held_costs_nothing() -> None:
    """Clients that connect and go at once, in a crowd: the server goes on serving."""
    public, secret = engine.curve_keypair()

    async def main() -> None:
        ctx = ezmq.Context()
        router, endpoint = curve_router(ctx, secret)
        zctx = zmq.Context()
        try:
            for _ in range(CROWD):
                s = zctx.socket(zmq.DEALER)
                s.curve_serverkey = public
                s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
                s.connect(endpoint)
                s.close(0)
            stayer = zctx.socket(zmq.DEALER)
            stayer.curve_serverkey = public
            stayer.curve_publickey, stayer.curve_secretkey = zmq.curve_keypair()
            stayer.connect(endpoint)
            stayer.send(b"still here")
            peer, body = await asyncio.wait_for(router.recv_multipart(), 20)
            assert body == b"still here"
            await router.send_multipart([peer, b"yes"])
            stayer.rcvtimeo = 20_000
            assert await asyncio.get_running_loop().run_in_executor(None, stayer.recv) == b"yes"
            stayer.close(0)
        finally:
            zctx.destroy(linger=0)
            router.close(0)
            ctx.term()

    asyncio.run(main())


def test_a_resumed_read_that_raises_does_not_stop_the_queue() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        errors: list[object] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context["exception"]))
        pacer = HandshakePacer(loop)
        while pacer.admit():
            pass
        ran: list[str] = []

        def broken() -> None:
            raise RuntimeError("a broken connection")

        pacer.wait(broken)
        for name in "xyz":
            pacer.wait(lambda name=name: ran.append(name))
        for _ in range(10):
            await asyncio.sleep(0)
        assert [str(e) for e in errors] == ["a broken connection"]
        return ran

    assert asyncio.run(main()) == list("xyz")


def test_a_pacer_does_not_keep_its_loop_alive() -> None:
    import gc
    import weakref

    from engine.transport.handshakes import pacer_for

    loop = asyncio.new_event_loop()
    pacer_for(loop)
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None


def test_a_read_held_in_the_queue_does_not_run_down_the_handshake_deadline() -> None:
    """The handshake's deadline (HANDSHAKE_IVL) measures the peer, not the server's own queue:
    a libzmq client whose greeting waits behind a crowd for three times the deadline still
    gets in, and one that sends nothing is still closed at the deadline."""
    from engine.transport.handshakes import pacer_for
    from engine.utils.monitor import parse_monitor_message

    ivl_ms = 200

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ctx = ezmq.Context()
        router = ctx.socket(engine.ROUTER)
        router.setsockopt(engine.HANDSHAKE_IVL, ivl_ms)
        router.bind("tcp://127.0.0.1:0")
        endpoint = router.getsockopt(engine.LAST_ENDPOINT).decode()
        monitor = router.get_monitor_socket(
            engine.EVENT_ACCEPTED
            | engine.EVENT_HANDSHAKE_SUCCEEDED
            | engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        )

        async def next_event() -> int:
            msg = await asyncio.wait_for(monitor.recv_multipart(), 10)
            return parse_monitor_message(msg)["event"]

        # A crowd ahead in the queue: an entry that puts itself back at the head until let go,
        # so every handshake read that arrives meanwhile is held behind it.
        pacer = pacer_for(loop)
        holding = [True]

        def crowd_ahead() -> None:
            if holding[0]:
                pacer.waiting.appendleft(crowd_ahead)

        pacer.wait(crowd_ahead)
        zctx = zmq.Context()
        try:
            client = zctx.socket(zmq.DEALER)
            client.linger = 0
            client.connect(endpoint)
            client.send(b"after the crowd")
            await asyncio.sleep(3 * ivl_ms / 1000)  # the client's greeting waits in the queue
            holding[0] = False
            _peer, body = await asyncio.wait_for(router.recv_multipart(), 10)
            assert body == b"after the crowd"
            # Through on its first connection: libzmq would have redialled and resent after a
            # timeout, so the message alone does not show it.
            events = [await next_event()]
            while events[-1] != engine.EVENT_HANDSHAKE_SUCCEEDED:
                events.append(await next_event())
            assert events == [engine.EVENT_ACCEPTED, engine.EVENT_HANDSHAKE_SUCCEEDED]
            # A peer that never speaks is not held by anything: its deadline runs as before.
            silent = await asyncio.open_connection(*endpoint[len("tcp://") :].rsplit(":", 1))
            assert await next_event() == engine.EVENT_ACCEPTED
            assert await next_event() == engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            # read() returns at EOF only: the server closed the connection.
            await asyncio.wait_for(silent[0].read(), 10)
            silent[1].close()
        finally:
            holding[0] = False
            zctx.destroy(linger=0)
            monitor.close(0)
            router.close(0)
            ctx.term()

    asyncio.run(main())
