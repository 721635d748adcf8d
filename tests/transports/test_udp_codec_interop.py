"""The engine's udp:// datagram codec against zeromq.js RADIO and DISH (libzmq 4.3.5).

Before any engine socket uses it, the codec runs over a plain UDP socket
(tests/peers/udp_codec_peer.py) against zeromq.js: over loopback unicast, and over multicast
between two network namespaces, both directions. A DISH gets only the groups it joined; what
the codec sends, libzmq reads as the same group and body, and the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from peerkit import LinePeer, free_udp_port, udp_codec_argv

from loadtest import netns

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

GROUP_ADDRESS = "239.192.2.2"
#: libzmq 4.3.5's udp engine reads the group length into a *signed* char: a DISH that gets a
#: group of 128 bytes or more aborts (udp_engine.cpp, "Cannot allocate memory"). The engine
#: reads all 255 (RFC 48); to a libzmq DISH the tests send at most 127.
LIBZMQ_DISH_GROUP_MAX = 127
MESSAGES = [
    (b"weather", b"sunny"),
    (b"news", b"nothing"),
    (b"weather", b""),
    (b"g" * LIBZMQ_DISH_GROUP_MAX, b"long group"),
    (b"", b"empty group"),
    (b"weather", b"x" * 8000),
]


@pytest.fixture
def udp_peer(peers: list[LinePeer], tmp_path: Path) -> Callable[..., LinePeer]:
    def start(
        role: str, target: str, spawn: Callable[..., object] | None = None, **options: object
    ) -> LinePeer:
        peer = LinePeer(
            udp_codec_argv(role, target, **options),
            tmp_path / f"udp-{role}-{len(peers)}.log",
            spawn=spawn,
        )
        peers.append(peer)
        peer.next_event("ready")
        return peer

    return start


def received(peer: LinePeer, n: int) -> list[tuple[bytes, bytes]]:
    return [(bytes.fromhex(m["group"]), bytes.fromhex(m["frames"][0])) for m in peer.messages(n)]


def radio_sends(radio: LinePeer, messages: list[tuple[bytes, bytes]]) -> None:
    for group, body in messages:
        radio.command(send=[body.hex()], group=group.hex())


def test_zeromq_js_radio_to_codec_unicast(js_peer, udp_peer) -> None:  # type: ignore[no-untyped-def]
    port = free_udp_port()
    dish = udp_peer("dish", f"127.0.0.1:{port}")
    radio = js_peer("radio", f"udp://127.0.0.1:{port}", "connect")
    longest = [(b"G" * 255, b"a 255-byte group, which libzmq sends as it should")]
    radio_sends(radio, MESSAGES + longest)
    # The codec reads every datagram (a udp DISH filters groups above the transport).
    assert received(dish, len(MESSAGES) + 1) == MESSAGES + longest


def test_codec_to_zeromq_js_dish_unicast(js_peer, udp_peer) -> None:  # type: ignore[no-untyped-def]
    port = free_udp_port()
    dish = js_peer("dish", f"udp://127.0.0.1:{port}", "bind")
    for group in (b"weather", b"g" * LIBZMQ_DISH_GROUP_MAX, b""):
        dish.command(join=group.hex())
    radio = udp_peer("radio", f"127.0.0.1:{port}")
    # libzmq drops a datagram shorter than the group it announces: the good ones still arrive.
    radio.command(raw="05616263")
    radio_sends(radio, MESSAGES)
    joined = [m for m in MESSAGES if m[0] != b"news"]
    assert received(dish, len(joined)) == joined


@pytest.mark.parametrize("direction", ["js-to-codec", "codec-to-js"])
def test_multicast_across_the_lan(direction: str, veth: netns.VethPair, js_peer, udp_peer) -> None:  # type: ignore[no-untyped-def]
    """RADIO in one namespace, DISH in the other, one group address between them."""
    port = 5556
    in_a = lambda argv, **kw: veth.spawn(veth.ns_a, argv, **kw)  # noqa: E731
    in_b = lambda argv, **kw: veth.spawn(veth.ns_b, argv, **kw)  # noqa: E731
    if direction == "js-to-codec":
        dish = udp_peer("dish", f"{GROUP_ADDRESS}:{port}", spawn=in_b, iface=veth.address_b)
        radio = js_peer(
            "radio", f"udp://{veth.address_a};{GROUP_ADDRESS}:{port}", "connect", spawn=in_a
        )
        radio_sends(radio, MESSAGES)
        assert received(dish, len(MESSAGES)) == MESSAGES
    else:
        dish = js_peer("dish", f"udp://{veth.address_b};{GROUP_ADDRESS}:{port}", "bind", spawn=in_b)
        dish.command(join=b"weather".hex())
        radio = udp_peer("radio", f"{GROUP_ADDRESS}:{port}", spawn=in_a, iface=veth.address_a)
        radio_sends(radio, MESSAGES)
        weather = [m for m in MESSAGES if m[0] == b"weather"]
        assert received(dish, len(weather)) == weather
