"""After connect(), LAST_ENDPOINT is the endpoint as the application wrote it, as libzmq keeps
it: a source address before the `;` and a port's leading zeros stay (the engine showed its
own normalised form, `tcp://127.0.0.1:5999` for `tcp://127.0.0.1:0;127.0.0.1:5999`), and
disconnect() finds the connection under that text. The port is held bound and not listening, so
connects to it are refused and no other test can take it meanwhile."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engine.libkit import LIBS

AS_WRITTEN = [
    "tcp://127.0.0.1:0;127.0.0.1:{port}",
    "tcp://127.0.0.1:0{port}",
    "tcp://localhost:{port}",
    "tcp://127.0.0.1:{port}",
]


@pytest.fixture
def refusing_port() -> Iterator[int]:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    yield held.getsockname()[1]
    held.close()


@LIBS
@pytest.mark.parametrize("form", AS_WRITTEN)
def test_last_endpoint_is_the_connect_as_written(lib: Any, form: str, refusing_port: int) -> None:
    endpoint = form.format(port=refusing_port)
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PULL)
        sock.connect(endpoint)
        assert sock.getsockopt(lib.LAST_ENDPOINT) == endpoint.encode()
        sock.disconnect(endpoint)
        with pytest.raises(lib.ZMQError) as gone:
            sock.disconnect(endpoint)
        assert gone.value.errno == errno.ENOENT
    finally:
        ctx.destroy(linger=0)
