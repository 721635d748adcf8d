"""USE_FD, compared with libzmq (pyzmq): bind() listens on a descriptor the application bound
itself (as under systemd's socket activation), and LAST_ENDPOINT shows that descriptor's
address, not the one bind() was given. The engine had no USE_FD (AttributeError; EINVAL by
number)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from enginekit import same_option_verdicts_as_libzmq

from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)


def test_use_fd_takes_what_libzmq_takes() -> None:
    same_option_verdicts_as_libzmq("USE_FD", ("ROUTER", "PULL"), (-1, 0, 5, -2))


def _served(lib: Any, listening: socket.socket, given: str, connect_to: str) -> str:
    """Bind a ROUTER to ``listening``'s descriptor (``given`` as the endpoint), have a DEALER
    connect to ``connect_to`` and send; the ROUTER's LAST_ENDPOINT."""
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.setsockopt(lib.USE_FD, listening.detach())  # the socket takes it over
        router.bind(given)
        dealer = ctx.socket(lib.DEALER)
        dealer.connect(connect_to)
        dealer.send(b"over the given descriptor")
        router.rcvtimeo = 10_000
        assert router.recv_multipart()[1] == b"over the given descriptor"
        return router.getsockopt(lib.LAST_ENDPOINT).decode()
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_tcp_listener_of_the_applications_own(lib: Any) -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(10)
    port = listening.getsockname()[1]
    shown = _served(lib, listening, "tcp://127.0.0.1:1", f"tcp://127.0.0.1:{port}")
    assert shown == f"tcp://127.0.0.1:{port}"


@LIBS
def test_an_ipc_listener_of_the_applications_own(lib: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "given.sock")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(path)
    listening.listen(10)
    shown = _served(lib, listening, f"ipc://{tmp_path / 'ignored.sock'}", f"ipc://{path}")
    assert shown == f"ipc://{path}"
