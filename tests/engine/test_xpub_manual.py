"""XPUB_MANUAL, run the same way on the engine and on libzmq (and across the two).

With XPUB_MANUAL an XPUB applies no subscription itself: it hands every one to the
application, duplicates included, and SUBSCRIBE/UNSUBSCRIBE on the XPUB then subscribe the
peer whose subscription message the application received last, to whatever topic it
chooses. When that peer goes, the application receives a cancel for each topic it asked for.
An XSUB takes what its publishers send, as in libzmq (a SUB still filters for itself): the
engine's XSUB used to drop what matched none of its own subscriptions.
"""

from __future__ import annotations

from typing import Any

import pytest
import zmq as pyzmq
from enginekit import same_option_verdicts_as_libzmq

import engine

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 10_000


def _receiving(sock: Any, lib: Any) -> Any:
    sock.setsockopt(lib.RCVTIMEO, WAIT_MS)
    return sock


def test_xpub_manual_is_taken_where_libzmq_takes_it_and_never_read() -> None:
    types = ("PUB", "XPUB", "SUB", "XSUB", "DEALER", "ROUTER", "PAIR")
    same_option_verdicts_as_libzmq("XPUB_MANUAL", types, (1,))
    ours, theirs = engine.Context(), pyzmq.Context()
    try:
        for lib, ctx in ((engine, ours), (pyzmq, theirs)):
            plain = ctx.socket(lib.XPUB)
            with pytest.raises(lib.ZMQError):
                plain.setsockopt(lib.SUBSCRIBE, b"a")  # SUBSCRIBE needs XPUB_MANUAL
            plain.setsockopt(lib.XPUB_MANUAL, 1)
            plain.setsockopt(lib.SUBSCRIBE, b"a")  # nobody asked yet: taken, applies to none
    finally:
        ours.destroy(linger=0)
        theirs.destroy(linger=0)


@pytest.mark.parametrize(
    ("publisher", "peers"),
    [(engine, engine), (pyzmq, pyzmq), (engine, pyzmq)],
    ids=["engine", "libzmq", "engine-xpub-libzmq-peers"],
)
def test_the_application_chooses_each_peers_subscriptions(publisher: Any, peers: Any) -> None:
    pub_ctx, peer_ctx = publisher.Context(), peers.Context()
    try:
        xpub = _receiving(pub_ctx.socket(publisher.XPUB), publisher)
        xpub.setsockopt(publisher.XPUB_MANUAL, 1)
        xpub.bind("tcp://127.0.0.1:0")
        endpoint = xpub.getsockopt(publisher.LAST_ENDPOINT).decode()

        sub = _receiving(peer_ctx.socket(peers.SUB), peers)
        sub.connect(endpoint)
        sub.setsockopt(peers.SUBSCRIBE, b"A")
        assert xpub.recv() == b"\x01A"
        xpub.send(b"A1")  # asked for, not yet given: dropped at the publisher
        xpub.setsockopt(publisher.SUBSCRIBE, b"A")
        xpub.send(b"A2")
        assert sub.recv() == b"A2"

        again = peer_ctx.socket(peers.SUB)
        again.connect(endpoint)
        again.setsockopt(peers.SUBSCRIBE, b"A")
        assert xpub.recv() == b"\x01A"  # a second asker of the same topic is shown too

        xsub = _receiving(peer_ctx.socket(peers.XSUB), peers)
        xsub.connect(endpoint)
        xsub.send(b"\x01B")
        assert xpub.recv() == b"\x01B"
        xpub.setsockopt(publisher.SUBSCRIBE, b"")  # B's asker gets every topic instead
        xpub.send(b"Z1")
        assert xsub.recv() == b"Z1"  # not one it asked for: an XSUB takes it all the same
        xsub.send(b"\x00B")
        assert xpub.recv() == b"\x00B"
        xpub.setsockopt(publisher.UNSUBSCRIBE, b"")
        xpub.send(b"Z2")
        xpub.setsockopt(publisher.SUBSCRIBE, b"Y")
        xpub.send(b"Y1")
        assert xsub.recv() == b"Y1"  # Z2 went to nobody

        xsub.send(b"\x01C")
        xsub.send(b"\x01D")
        assert [xpub.recv(), xpub.recv()] == [b"\x01C", b"\x01D"]
        xsub.send(b"not a subscription")
        assert xpub.recv() == b"not a subscription"
        xsub.close(linger=0)
        assert {xpub.recv(), xpub.recv()} == {b"\x00C", b"\x00D"}  # what it asked for
        latecomer = peer_ctx.socket(peers.SUB)
        latecomer.connect(endpoint)
        latecomer.setsockopt(peers.SUBSCRIBE, b"E")
        assert xpub.recv() == b"\x01E"  # and nothing else came between
    finally:
        pub_ctx.destroy(linger=0)
        peer_ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_an_xsub_takes_what_its_publisher_sends_and_a_sub_filters(lib: Any) -> None:
    """A publisher that sends everything (XPUB_MANUAL giving b""): the XSUB that asked for
    "x" gets "y1" too; a SUB that asked for "x" gets only "x1"."""
    ctx = lib.Context()
    try:
        xpub = _receiving(ctx.socket(lib.XPUB), lib)
        xpub.setsockopt(lib.XPUB_MANUAL, 1)
        xpub.bind("tcp://127.0.0.1:0")
        endpoint = xpub.getsockopt(lib.LAST_ENDPOINT).decode()
        for kind, expected in ((lib.XSUB, [b"y1", b"x1"]), (lib.SUB, [b"x1", b"x2"])):
            peer = _receiving(ctx.socket(kind), lib)
            peer.connect(endpoint)
            if kind == lib.XSUB:
                peer.send(b"\x01x")
            else:
                peer.setsockopt(lib.SUBSCRIBE, b"x")
            assert xpub.recv() == b"\x01x"
            xpub.setsockopt(lib.SUBSCRIBE, b"")
            for message in (b"y1", b"x1", b"x2"):
                xpub.send(message)
            assert [peer.recv(), peer.recv()] == expected
            peer.close(linger=0)
            assert xpub.recv() == b"\x00x"
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_a_poll_does_not_change_whom_subscribe_applies_to(lib: Any) -> None:
    """A poll that finds a second peer's subscription waiting leaves SUBSCRIBE applying to the
    peer of the last one the application received: the engine's poll took the message ahead
    and moved that on, so a topic meant for the first peer went to the second."""
    ctx = lib.Context()
    try:
        xpub = _receiving(ctx.socket(lib.XPUB), lib)
        xpub.setsockopt(lib.XPUB_MANUAL, 1)
        xpub.bind("tcp://127.0.0.1:0")
        endpoint = xpub.getsockopt(lib.LAST_ENDPOINT).decode()
        first, second = (_receiving(ctx.socket(lib.SUB), lib) for _ in range(2))
        first.connect(endpoint)
        first.subscribe(b"")
        assert xpub.recv() == b"\x01"
        second.connect(endpoint)
        second.subscribe(b"")
        assert xpub.poll(WAIT_MS) == lib.POLLIN  # the second peer's subscription waits
        xpub.setsockopt(lib.SUBSCRIBE, b"x")  # for the first peer
        assert xpub.recv() == b"\x01"
        xpub.setsockopt(lib.SUBSCRIBE, b"y")  # for the second
        for topic in (b"x-news", b"y-news", b"x-end", b"y-end"):
            xpub.send(topic)  # (the subscriptions above are the XPUB's own: in force now)
        assert [first.recv(), first.recv()] == [b"x-news", b"x-end"]
        assert [second.recv(), second.recv()] == [b"y-news", b"y-end"]
    finally:
        ctx.destroy(linger=0)
