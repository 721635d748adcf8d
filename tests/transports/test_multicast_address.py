"""udp://, pgm:// and epgm:// addresses, read as libzmq reads them; bad ones get a clear error."""

from __future__ import annotations

import pytest

from engine import constants as c
from engine.errors import ZMQError
from engine.multicast_address import (
    ANY,
    DatagramAddress,
    interface_address,
    parse_pgm,
    parse_udp,
)


def udp(rest: str, binding: bool) -> DatagramAddress:
    return parse_udp(f"udp://{rest}", rest, binding)


def test_udp_unicast() -> None:
    assert udp("127.0.0.1:5555", True) == DatagramAddress("udp", "127.0.0.1", 5555, ANY, False)
    assert udp("*:0", True) == DatagramAddress("udp", ANY, 0, ANY, False)
    assert udp("localhost:5555", False).host == "127.0.0.1"  # names resolve when sending
    assert str(udp("127.0.0.1:5555", False)) == "udp://127.0.0.1:5555"


def test_udp_multicast_with_interface() -> None:
    by_name = udp("lo;239.1.2.3:5555", True)
    assert by_name == DatagramAddress("udp", "239.1.2.3", 5555, "127.0.0.1", True)
    assert udp("127.0.0.1;239.1.2.3:5555", False) == by_name
    assert udp("*;239.1.2.3:5555", True).interface == ANY
    assert udp("239.1.2.3:5555", True).interface == ANY
    assert str(by_name) == "udp://127.0.0.1;239.1.2.3:5555"


@pytest.mark.parametrize(
    ("rest", "binding", "errno"),
    [
        ("127.0.0.1;127.0.0.2:5555", True, c.EINVAL),  # interface without a group
        ("239.1.1.1;239.1.2.3:5555", True, c.EINVAL),  # multicast interface
        ("nosuchif0;239.1.2.3:5555", True, c.ENODEV),
        ("127.0.0.1", True, c.EINVAL),
        ("127.0.0.1:99999", True, c.EINVAL),
        ("127.0.0.1:x", True, c.EINVAL),
        ("127.0.0.1:0", False, c.EINVAL),
        ("*:5555", False, c.EINVAL),
        ("localhost:5555", True, c.EINVAL),  # binding takes addresses, as libzmq's
    ],
)
def test_udp_refusals(rest: str, binding: bool, errno: int) -> None:
    with pytest.raises(ZMQError) as raised:
        udp(rest, binding)
    assert raised.value.errno == errno
    assert rest.split(";")[-1].split(":")[0] in str(raised.value) or rest in str(raised.value)


def test_pgm_addresses() -> None:
    got = parse_pgm("epgm://lo;239.192.1.1:5555", "epgm", "lo;239.192.1.1:5555")
    assert got == DatagramAddress("epgm", "239.192.1.1", 5555, "127.0.0.1", True)
    assert str(got) == "epgm://127.0.0.1;239.192.1.1:5555"
    # No interface: the one the kernel routes the group through (it must be a real address).
    try:
        routed = parse_pgm("pgm://239.192.1.1:5555", "pgm", "239.192.1.1:5555")
    except ZMQError as exc:  # a host with no route for the group says so
        assert exc.errno == c.ENODEV and "no route" in str(exc)
    else:
        assert routed.interface != ANY
    for bad in ("lo;10.0.0.1:5555", "lo;239.192.1.1", "lo;239.192.1.1:0"):
        with pytest.raises(ZMQError):
            parse_pgm(f"pgm://{bad}", "pgm", bad)


def test_interface_address() -> None:
    assert interface_address("lo") == "127.0.0.1"
    assert interface_address("") is None
    assert interface_address("x" * 40) is None
    assert interface_address("nosuchif0") is None
