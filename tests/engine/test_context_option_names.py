"""A context takes a socket default under the same attribute names a socket does, aliases
included: `ctx.identity = b"abc"` gives every socket made from then on that routing id, as
pyzmq's does (IDENTITY is libzmq's older name for ROUTING_ID).

The engine's context looked names up among the options' own names only, so `ctx.identity`
raised AttributeError ("no such option") where a socket's `sock.identity` worked.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)


@LIBS
@pytest.mark.parametrize("name", ["identity", "IDENTITY", "routing_id"])
def test_identity_default_reaches_new_sockets(lib: Any, name: str) -> None:
    ctx = lib.Context()
    try:
        setattr(ctx, name, b"abc")
        assert getattr(ctx, name) == b"abc"
        assert int(next(iter(ctx.sockopts))) == lib.ROUTING_ID
        dealer = ctx.socket(lib.DEALER)
        assert dealer.identity == b"abc"
        assert dealer.getsockopt(lib.ROUTING_ID) == b"abc"
    finally:
        ctx.destroy(0)


@LIBS
def test_identity_default_is_the_routing_id_a_router_sees(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.bind("inproc://context-identity")
        ctx.identity = b"from-the-context"
        dealer = ctx.socket(lib.DEALER)
        dealer.connect("inproc://context-identity")
        dealer.send(b"hello")
        assert router.poll(10_000)
        assert router.recv_multipart() == [b"from-the-context", b"hello"]
    finally:
        ctx.destroy(0)


@LIBS
def test_a_misspelt_default_is_still_refused(lib: Any) -> None:
    ctx = lib.Context()
    try:
        with pytest.raises(AttributeError):
            ctx.identiti = b"abc"
    finally:
        ctx.destroy(0)
