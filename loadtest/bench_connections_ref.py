"""`crossroads bench connections`' reference: a relay of the front's shape on libzmq (pyzmq),
in a child process, which the same players connect to and are measured against the same way.

It binds a ROUTER (actions) and an XPUB (updates) on loopback, both CURVE servers as a default
front's player ports are, and does no game work: a request ``say TOKEN`` publishes one frame
(a topic, then TOKEN) to every subscriber of the topic and is answered; any other request (the
probe's ping) is answered at once. What the front spends beyond this relay (its workers' hop,
the game's rules and store, the engine being Python) is what the side by side shows.
"""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from loadtest.bench_child import ask_child_to_stop, start_child

#: What the relay publishes a say under, and what its subscribers subscribe to.
REFERENCE_TOPIC = b"room.reference\x1f"
#: Longest wait for the relay to answer one request.
REPLY_TIMEOUT_S = 10.0
#: Most requests the relay takes in one wake-up (then it looks at its pipe again).
REQUESTS_PER_PASS = 256
#: Largest message either bound socket accepts: a say and a ping are a few dozen octets. Only
#: the bench connects (on loopback), but a bound socket is capped all the same.
MAX_MESSAGE_BYTES = 4096


class ReferenceRelay:
    """The relay's child process: its endpoints, its CURVE key and its PID."""

    kind = "libzmq (pyzmq) ROUTER + XPUB relay in a child process, CURVE"

    def __init__(self) -> None:
        self._process: BaseProcess
        self._process, self._conn = start_child(_relay, (), "reference relay")
        said = self._conn.recv() if self._conn.poll(REPLY_TIMEOUT_S) else None
        if not (isinstance(said, tuple) and said[0] == "endpoints"):
            self.close()
            raise RuntimeError("the reference relay did not say where it listens")
        self.endpoints: dict[str, str] = said[1]

    @property
    def pid(self) -> int:
        return self._process.pid or 0

    def close(self) -> None:
        ask_child_to_stop(self._process, self._conn, 10)


class ReferenceSpeaker:
    """What the bench's speaker does against the relay: ``act("say TOKEN")``, answered."""

    def __init__(self, context: Any, actions: str) -> None:
        import engine

        self._dealer = context.socket(engine.DEALER)
        self._dealer.connect(actions)

    async def act(self, text: str) -> None:
        await self._dealer.send_multipart([b"", text.encode()])
        await asyncio.wait_for(self._dealer.recv_multipart(), REPLY_TIMEOUT_S)

    async def close(self) -> None:
        self._dealer.close(linger=0)


def _relay(conn: Connection) -> None:
    import zmq

    ctx = zmq.Context()
    public, secret = zmq.curve_keypair()
    router = ctx.socket(zmq.ROUTER)
    xpub = ctx.socket(zmq.XPUB)
    endpoints = {"key": public.decode()}
    for name, sock in (("actions", router), ("updates", xpub)):
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sock.curve_server = True
        sock.curve_secretkey = secret
        sock.bind("tcp://127.0.0.1:0")
        endpoints[name] = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    poller = zmq.Poller()
    for watched in (router, xpub, conn.fileno()):
        poller.register(watched, zmq.POLLIN)
    conn.send(("ready",))
    conn.send(("endpoints", endpoints))
    try:
        while True:
            poller.poll(1000)
            if conn.poll():
                return  # the only thing the bench says is "stop"
            while True:  # subscriptions come up as messages: they need no answer
                try:
                    xpub.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
            for _ in range(REQUESTS_PER_PASS):
                try:
                    frames = router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                body = frames[-1]
                if body.startswith(b"say "):
                    xpub.send(REFERENCE_TOPIC + body[4:])
                router.send_multipart([frames[0], b"", b"ok"])
    finally:
        ctx.destroy(linger=0)
