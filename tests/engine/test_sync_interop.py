"""The sync face against real pyzmq (libzmq): every socket type, engine on either side.

Each compatible pair runs one scenario with the engine playing each role, the engine or pyzmq
binding, over tcp; ipc runs every pair once with each side binding. Scenarios use only the API
both libraries share, so the same code drives an engine socket and a pyzmq socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

import engine

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

WAIT_MS = 10_000
WAIT_S = 15.0

#: Bodies every scenario exchanges: single and multipart, empty frames, a long frame.
MESSAGES: list[list[bytes]] = [
    [b"hello"],
    [b""],
    [b"head", b"", b"tail", b""],
    [b"", b"", b""],
    [b"L" * 300, b"s"],
]

Sock = Any  # an engine.Socket or a zmq.Socket: the same blocking API


@pytest.fixture
def ectx(ctx: engine.Context) -> engine.Context:
    """An engine context (conftest's `ctx`), named apart from the pyzmq one."""
    return ctx


@pytest.fixture
def zctx() -> Iterator[zmq.Context]:
    """A pyzmq context, destroyed with linger 0 afterwards."""
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def bind_any(sock: Sock, transport: str, tmp: Path) -> str:
    """Bind to a fresh address; the endpoint a peer should connect to."""
    addr = "tcp://127.0.0.1:*" if transport == "tcp" else f"ipc://{tmp}/s{time.monotonic_ns()}"
    sock.bind(addr)  # pyzmq returns a context manager here, the engine a string
    return sock.getsockopt(zmq.LAST_ENDPOINT).decode()


# -- scenarios: (socket of type A, socket of type B) ----------------------------------------------


def pair(a: Sock, b: Sock) -> None:
    """Both directions, every body."""
    for msg in MESSAGES:
        a.send_multipart(msg)
        assert b.recv_multipart() == msg
        b.send_multipart(msg[::-1])
        assert a.recv_multipart() == msg[::-1]


def push_pull(push: Sock, pull: Sock) -> None:
    """Every body arrives whole and in order."""
    for msg in MESSAGES:
        push.send_multipart(msg)
    assert [pull.recv_multipart() for _ in MESSAGES] == MESSAGES


def req_rep(req: Sock, rep: Sock) -> None:
    """Lock-step requests and replies; REP sees no envelope."""
    for msg in MESSAGES:
        req.send_multipart(msg)
        assert rep.recv_multipart() == msg
        rep.send_multipart([*msg, b"r"])
        assert req.recv_multipart() == [*msg, b"r"]


def req_router(req: Sock, router: Sock) -> None:
    """ROUTER sees [routing id, empty delimiter, body] and routes the reply back."""
    for msg in MESSAGES:
        req.send_multipart(msg)
        rid, delimiter, *body = router.recv_multipart()
        assert (delimiter, body) == (b"", msg)
        router.send_multipart([rid, b"", b"re", *msg])
        assert req.recv_multipart() == [b"re", *msg]


def dealer_rep(dealer: Sock, rep: Sock) -> None:
    """A DEALER adds the empty delimiter itself; REP strips and restores it."""
    for msg in MESSAGES:
        dealer.send_multipart([b"", *msg])
        assert rep.recv_multipart() == msg
        rep.send_multipart(msg[::-1])
        assert dealer.recv_multipart() == [b"", *msg[::-1]]


def dealer_router(dealer: Sock, router: Sock) -> None:
    """ROUTER prefixes one stable routing id per peer."""
    rids = set()
    for msg in MESSAGES:
        dealer.send_multipart(msg)
        rid, *body = router.recv_multipart()
        assert body == msg
        rids.add(rid)
        router.send_multipart([rid, *msg, b""])
        assert dealer.recv_multipart() == [*msg, b""]
    assert len(rids) == 1


def publish_until_received(pub: Sock, sub: Sock) -> None:
    """Publish a probe until the subscriber sees one (its subscription reached the publisher)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        pub.send_multipart([b"t-probe"])
        if sub.poll(20):
            return
    raise AssertionError("subscription never reached the publisher")


def receive_published(pub: Sock, sub: Sock) -> None:
    """Publish filtered-out and wanted messages, then an end marker; check what arrived."""
    for msg in MESSAGES:
        pub.send_multipart([b"x-other", *msg])
        pub.send_multipart([b"t-data", *msg])
    pub.send_multipart([b"t-end"])
    got = []
    while (msg := sub.recv_multipart()) != [b"t-end"]:
        if msg != [b"t-probe"]:
            got.append(msg)
    assert got == [[b"t-data", *m] for m in MESSAGES]


def pub_sub(pub: Sock, sub: Sock) -> None:
    """SUBSCRIBE filters at the publisher."""
    sub.setsockopt(zmq.SUBSCRIBE, b"t")
    publish_until_received(pub, sub)
    receive_published(pub, sub)


def pub_xsub(pub: Sock, xsub: Sock) -> None:
    """An XSUB subscribes by sending 0x01 + topic."""
    xsub.send(b"\x01t")
    publish_until_received(pub, xsub)
    receive_published(pub, xsub)


def await_subscription(xpub: Sock, sub: Sock, expected: bytes) -> None:
    """Wait for the XPUB to report `expected`, using the subscriber meanwhile.

    A bound libzmq SUB only takes in a new connection (and sends it its subscriptions) when
    the application next uses the socket: poll it while waiting, as an application would.
    """
    deadline = time.monotonic() + WAIT_S
    while not xpub.poll(20):
        assert time.monotonic() < deadline, "the subscription never reached the XPUB"
        sub.poll(0)
    assert xpub.recv_multipart() == [expected]


def xpub_sub(xpub: Sock, sub: Sock) -> None:
    """XPUB receives the subscribe and unsubscribe messages."""
    sub.setsockopt(zmq.SUBSCRIBE, b"t")
    await_subscription(xpub, sub, b"\x01t")
    receive_published(xpub, sub)
    sub.setsockopt(zmq.UNSUBSCRIBE, b"t")
    assert xpub.recv_multipart() == [b"\x00t"]


def xpub_xsub(xpub: Sock, xsub: Sock) -> None:
    """XSUB-sent subscriptions reach XPUB as messages."""
    xsub.send(b"\x01t")
    await_subscription(xpub, xsub, b"\x01t")
    receive_published(xpub, xsub)
    xsub.send(b"\x00t")
    assert xpub.recv_multipart() == [b"\x00t"]


@dataclass(frozen=True)
class Case:
    a: int
    b: int
    scenario: Callable[[Sock, Sock], None]

    def __str__(self) -> str:
        return f"{zmq.SocketType(self.a).name}-{zmq.SocketType(self.b).name}"


CASES = [
    Case(zmq.PAIR, zmq.PAIR, pair),
    Case(zmq.PUSH, zmq.PULL, push_pull),
    Case(zmq.REQ, zmq.REP, req_rep),
    Case(zmq.REQ, zmq.ROUTER, req_router),
    Case(zmq.DEALER, zmq.REP, dealer_rep),
    Case(zmq.DEALER, zmq.ROUTER, dealer_router),
    Case(zmq.PUB, zmq.SUB, pub_sub),
    Case(zmq.PUB, zmq.XSUB, pub_xsub),
    Case(zmq.XPUB, zmq.SUB, xpub_sub),
    Case(zmq.XPUB, zmq.XSUB, xpub_xsub),
]


def run_case(
    case: Case,
    engine_plays: str,
    binder: str,
    transport: str,
    ectx: engine.Context,
    zctx: zmq.Context,
    tmp: Path,
) -> None:
    """Build the pair (engine in role `engine_plays`, role `binder` binding) and run it."""
    socks = {}
    for role, kind in (("a", case.a), ("b", case.b)):
        ctx = ectx if role == engine_plays else zctx
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, WAIT_MS)
        sock.setsockopt(zmq.SNDTIMEO, WAIT_MS)
        socks[role] = sock
    assert isinstance(socks[engine_plays], engine.Socket)
    other = "b" if binder == "a" else "a"
    socks[other].connect(bind_any(socks[binder], transport, tmp))
    case.scenario(socks["a"], socks["b"])
    for sock in socks.values():
        sock.close()


@pytest.mark.parametrize("binder", ["a", "b"], ids=["A-binds", "B-binds"])
@pytest.mark.parametrize("engine_plays", ["a", "b"], ids=["engine-A", "engine-B"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_tcp_pair(
    case: Case,
    engine_plays: str,
    binder: str,
    ectx: engine.Context,
    zctx: zmq.Context,
    tmp_path: Path,
) -> None:
    """Every compatible pair, engine in each role, each side binding, over tcp."""
    run_case(case, engine_plays, binder, "tcp", ectx, zctx, tmp_path)


@pytest.mark.parametrize("engine_binds", [True, False], ids=["engine-binds", "pyzmq-binds"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_ipc_pair(
    case: Case, engine_binds: bool, ectx: engine.Context, zctx: zmq.Context, tmp_path: Path
) -> None:
    """Every compatible pair over ipc, the engine as A binding, or as B connecting."""
    engine_plays = "a" if engine_binds else "b"
    run_case(case, engine_plays, "a", "ipc", ectx, zctx, tmp_path)


# -- cross-library details ------------------------------------------------------------------------


def test_router_sees_identity_set_by_pyzmq_dealer(ectx: engine.Context, zctx: zmq.Context) -> None:
    """An engine ROUTER addresses a pyzmq DEALER by the identity the dealer chose."""
    router = ectx.socket(engine.ROUTER)
    router.rcvtimeo = WAIT_MS
    endpoint = router.bind("tcp://127.0.0.1:*")
    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.IDENTITY, b"player-1")
    dealer.rcvtimeo = WAIT_MS
    dealer.connect(endpoint)
    dealer.send_multipart([b"", b"join"])
    assert router.recv_multipart() == [b"player-1", b"", b"join"]
    router.send_multipart([b"player-1", b"", b"welcome"])
    assert dealer.recv_multipart() == [b"", b"welcome"]


def test_pyzmq_router_sees_engine_identity(ectx: engine.Context, zctx: zmq.Context) -> None:
    """The engine's IDENTITY (attribute form) reaches a pyzmq ROUTER."""
    router = zctx.socket(zmq.ROUTER)
    router.rcvtimeo = WAIT_MS
    router.bind("tcp://127.0.0.1:*")
    dealer = ectx.socket(engine.DEALER)
    dealer.identity = b"engine-dealer"
    dealer.rcvtimeo = WAIT_MS
    dealer.connect(router.LAST_ENDPOINT.decode())
    dealer.send(b"hi")
    assert router.recv_multipart() == [b"engine-dealer", b"hi"]
    router.send_multipart([b"engine-dealer", b"yo"])
    assert dealer.recv() == b"yo"


def test_strings_json_and_pickles_cross(ectx: engine.Context, zctx: zmq.Context) -> None:
    """send_string/json/pyobj on one library decode with the other's recv_* helpers."""
    ours = ectx.socket(engine.PAIR)
    ours.rcvtimeo = WAIT_MS
    endpoint = ours.bind("tcp://127.0.0.1:*")
    theirs = zctx.socket(zmq.PAIR)
    theirs.rcvtimeo = WAIT_MS
    theirs.connect(endpoint)
    ours.send_string("żółw", encoding="utf-16")
    assert theirs.recv_string(encoding="utf-16") == "żółw"
    theirs.send_json({"score": [1, 2.5, None]})
    assert ours.recv_json() == {"score": [1, 2.5, None]}
    ours.send_pyobj({"set": {1, 2}})
    assert theirs.recv_pyobj() == {"set": {1, 2}}
    theirs.send_pyobj(("tuple", b"bytes"))
    assert ours.recv_pyobj() == ("tuple", b"bytes")


def test_subscription_made_before_connect_reaches_pyzmq_xpub(
    ectx: engine.Context, zctx: zmq.Context
) -> None:
    """libzmq sends a connecting SUB's subscriptions at once; the SUB need not be touched."""
    xpub = zctx.socket(zmq.XPUB)
    xpub.bind("tcp://127.0.0.1:*")
    sub = ectx.socket(engine.SUB)
    sub.setsockopt(engine.SUBSCRIBE, b"scores")
    sub.connect(xpub.LAST_ENDPOINT.decode())
    # Nothing more is done with `sub`: a pyzmq SUB passes this too.
    assert xpub.poll(WAIT_MS) == zmq.POLLIN
    assert xpub.recv() == b"\x01scores"
