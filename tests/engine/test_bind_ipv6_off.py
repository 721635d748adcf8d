"""Binding an IPv6 address with the IPV6 option off (the default) fails with ENODEV, as in
libzmq, which then looks for IPv4 addresses only; an IPv4 address written as IPv6
(::ffff:a.b.c.d) still binds, as there. The engine bound the IPv6 address anyway.

And a socket type given as a str (`ctx.socket("PUB")`) or None is TypeError, as in pyzmq,
where the engine said ZMQError(EINVAL).
"""

from __future__ import annotations

import errno
from typing import Any

import pytest

from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)


@LIBS
@pytest.mark.parametrize("address", ["[::1]", "[::]"])
def test_ipv6_address_without_ipv6_is_enodev(lib: Any, address: str) -> None:
    ctx = lib.Context()
    try:
        pull = ctx.socket(lib.PULL)
        with pytest.raises(lib.ZMQError) as refused:
            pull.bind(f"tcp://{address}:0")
        assert refused.value.errno == errno.ENODEV
    finally:
        ctx.destroy(0)


@LIBS
def test_ipv4_mapped_address_binds_without_ipv6(lib: Any) -> None:
    ctx = lib.Context()
    try:
        pull = ctx.socket(lib.PULL)
        pull.bind("tcp://[::ffff:127.0.0.1]:0")
        endpoint = pull.getsockopt(lib.LAST_ENDPOINT).decode()
        assert endpoint.startswith("tcp://127.0.0.1:")
        push = ctx.socket(lib.PUSH)
        push.connect(endpoint)
        push.send(b"over v4")
        assert pull.poll(10_000) and pull.recv() == b"over v4"
    finally:
        ctx.destroy(0)


@LIBS
@pytest.mark.parametrize("kind", ["PUB", b"PUB", None])
def test_socket_type_of_the_wrong_kind_is_type_error(lib: Any, kind: Any) -> None:
    ctx = lib.Context()
    try:
        with pytest.raises(TypeError):
            ctx.socket(kind)
    finally:
        ctx.destroy(0)
