"""RECONNECT_STOP, which libzmq 4.3.5 answers, and the monitor's events around a failed
handshake, compared with libzmq (pyzmq). The engine had no RECONNECT_STOP (AttributeError;
EINVAL by number) and redialled a refusing peer or a failing handshake whatever was asked;
after a failed handshake it reported no DISCONNECTED, where libzmq reports one each time."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from enginekit import monitor_events, same_option_verdicts_as_libzmq

from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

#: How long a stopped connecter is watched for a redial it must not make: five of its
#: RECONNECT_IVL (the redial, if any, comes after one).
QUIET_MS = 250
RECONNECT_IVL_MS = 50


def test_reconnect_stop_takes_what_libzmq_takes() -> None:
    same_option_verdicts_as_libzmq("RECONNECT_STOP", ("DEALER", "SUB"), (0, 1, 2, 4, 7, 8, -1))


def _closed_port() -> int:
    """A loopback port nothing listens on (bound and let go: refused until someone binds)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@LIBS
@pytest.mark.parametrize("stop", [0, 1], ids=["redials", "stops"])
def test_a_refused_connection_is_redialled_unless_asked_not_to(lib: Any, stop: int) -> None:
    ctx = lib.Context()
    try:
        dealer = ctx.socket(lib.DEALER)
        dealer.setsockopt(lib.RECONNECT_IVL, RECONNECT_IVL_MS)
        dealer.setsockopt(lib.RECONNECT_STOP, stop * lib.RECONNECT_STOP_CONN_REFUSED)
        monitor = dealer.get_monitor_socket()
        dealer.connect(f"tcp://127.0.0.1:{_closed_port()}")
        assert monitor_events(lib, monitor, "CLOSED", 10)[-1] == "CLOSED"
        after = monitor_events(lib, monitor, "CONNECT_RETRIED", 10 if not stop else QUIET_MS / 1000)
        assert after == ([] if stop else ["CONNECT_RETRIED"])
    finally:
        ctx.destroy(linger=0)


@LIBS
@pytest.mark.parametrize("stop", [0, 2], ids=["redials", "stops"])
def test_a_failed_handshake_is_reported_then_disconnected(lib: Any, stop: int) -> None:
    """A CURVE client with the wrong server key: the server drops it mid-handshake. libzmq
    reports the failure and DISCONNECTED each time, and redials unless RECONNECT_STOP has
    HANDSHAKE_FAILED."""
    ctx = lib.Context()
    try:
        server = ctx.socket(lib.ROUTER)
        server.curve_server = True
        server.curve_publickey, server.curve_secretkey = lib.curve_keypair()
        server.bind("tcp://127.0.0.1:0")
        client = ctx.socket(lib.DEALER)
        client.setsockopt(lib.RECONNECT_IVL, RECONNECT_IVL_MS)
        client.setsockopt(lib.RECONNECT_STOP, stop)
        client.curve_serverkey = lib.curve_keypair()[0]  # not the server's
        client.curve_publickey, client.curve_secretkey = lib.curve_keypair()
        monitor = client.get_monitor_socket()
        client.connect(server.getsockopt(lib.LAST_ENDPOINT).decode())
        names = monitor_events(lib, monitor, "DISCONNECTED", 10)
        assert names[-2:] == ["HANDSHAKE_FAILED_NO_DETAIL", "DISCONNECTED"], names
        after = monitor_events(lib, monitor, "CONNECT_RETRIED", 10 if not stop else QUIET_MS / 1000)
        assert after == ([] if stop else ["CONNECT_RETRIED"])
    finally:
        ctx.destroy(linger=0)
