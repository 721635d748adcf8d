"""A connection's link keeps its state in slots: past 30 attributes an instance dict stops
sharing its keys and cost about 1.5 KiB per connection (`crossroads bench engine mem`)."""

from __future__ import annotations

import engine
from engine.transport.link import ZMTPLink


def test_a_live_link_has_no_instance_dict(ctx: engine.Context) -> None:
    router = ctx.socket(engine.ROUTER)
    dealer = ctx.socket(engine.DEALER)
    router.bind("tcp://127.0.0.1:0")
    dealer.connect(router.getsockopt(engine.LAST_ENDPOINT).decode())
    dealer.send(b"hello")
    assert router.recv_multipart()[-1] == b"hello"  # handshake over, pipe attached
    links = [link for link in router._endpoints.links if isinstance(link, ZMTPLink)]
    assert links and all(link.ready for link in links)
    for link in links:
        assert not hasattr(link, "__dict__")
