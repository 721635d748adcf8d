"""The loop side of the datagram transports: udp sessions and the channel under them."""

from __future__ import annotations

import asyncio
import socket

import pytest

from engine import udp_datagram as udp
from engine.multicast_address import parse_udp
from engine.transport.datagram import DatagramChannel
from engine.transport.udp import DGRAM, DISH, RADIO, UdpSession, UdpSettings

WAIT = 10.0


def run(coro) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(asyncio.wait_for(coro, WAIT * 3))


def session(role: str, rest: str, binding: bool, got: asyncio.Queue | None = None) -> UdpSession:
    loop = asyncio.get_running_loop()
    on = (lambda ms: [got.put_nowait(m) for m in ms]) if got is not None else None
    return UdpSession(
        loop,
        parse_udp(f"udp://{rest}", rest, binding),
        UdpSettings(),
        role=role,
        binding=binding,
        on_messages=on,
    )


def test_radio_to_dish_and_what_cannot_be_sent() -> None:
    async def main() -> None:
        got: asyncio.Queue = asyncio.Queue()
        dish = session(DISH, "127.0.0.1:0", True, got)
        assert dish.address.port != 0 and dish.endpoint.endswith(f":{dish.address.port}")
        radio = session(RADIO, f"127.0.0.1:{dish.address.port}", False)
        radio.send([[b"g", b"one"], [b"g", b"x" * udp.DATAGRAM_MAX], [b"g"], [b"h", b"two"]])
        assert radio.unsendable == 2  # too large for one datagram; not [group, body]
        assert await asyncio.wait_for(got.get(), WAIT) == [b"g", b"one"]
        assert await asyncio.wait_for(got.get(), WAIT) == [b"h", b"two"]
        # A datagram that is not a RADIO one is dropped and counted by the dish.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"\x09abc", ("127.0.0.1", dish.address.port))
            raw.sendto(udp.encode_radio(b"k", b"after"), ("127.0.0.1", dish.address.port))
        assert await asyncio.wait_for(got.get(), WAIT) == [b"k", b"after"]
        assert dish.codec.malformed == 1
        for s in (dish, radio):
            s.close()

    run(main())


def test_dgram_addresses_each_datagram() -> None:
    async def main() -> None:
        got: asyncio.Queue = asyncio.Queue()
        a = session(DGRAM, "127.0.0.1:0", True, got)
        b = session(DGRAM, "127.0.0.1:0", True, got)
        a.send([[udp.format_peer("127.0.0.1", b.address.port), b"ping"], [b"nowhere", b"x"]])
        assert a.unsendable == 1
        sender, body = await asyncio.wait_for(got.get(), WAIT)
        assert (sender, body) == (udp.format_peer("127.0.0.1", a.address.port), b"ping")
        b.send([[sender, b"pong"]])
        assert await asyncio.wait_for(got.get(), WAIT) == [
            udp.format_peer("127.0.0.1", b.address.port),
            b"pong",
        ]
        a.close()
        b.close()

    run(main())


def test_channel_queues_when_the_kernel_buffer_is_full_and_drops_refused() -> None:
    """Unix datagram sockets push back (their receive queue is short) where UDP over loopback
    would just drop: the channel must queue, keep order, and send it all once there is room."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        name = f"\0crossroads-test-{id(loop)}"
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(name)
        rx.setblocking(False)
        channel = DatagramChannel(loop, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), 64, None)
        sent = [str(i).encode() for i in range(300)]
        for data in sent:
            channel.sendto(data, name)  # type: ignore[arg-type]
        assert channel.queued > 0  # the receiver's queue filled up
        got: list[bytes] = []
        deadline = loop.time() + WAIT
        while len(got) < len(sent) and loop.time() < deadline:
            try:
                got.append(rx.recv(64))
            except BlockingIOError:
                await asyncio.sleep(0.001)  # let the channel's writer run
        assert got == sent and channel.queued == 0
        channel.close()
        channel.sendto(b"closed", name)  # type: ignore[arg-type]  # ignored, not raised
        rx.close()

        udp_channel = DatagramChannel(
            loop, socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 64, None
        )
        udp_channel.sendto(b"x", ("255.255.255.255", 9))  # broadcast without SO_BROADCAST
        assert udp_channel.send_dropped == 1 and udp_channel.last_send_error != 0
        udp_channel.close()

    run(main())


def test_bind_errors_say_why() -> None:
    async def main() -> None:
        with pytest.raises(Exception) as raised:
            session(DISH, "203.0.113.254:5555", True)  # not an address of this host
        assert "203.0.113.254" in str(raised.value)

    run(main())
