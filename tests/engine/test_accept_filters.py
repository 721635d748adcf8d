"""TCP_ACCEPT_FILTER and IPC_FILTER_UID / GID / PID, compared with libzmq (pyzmq): each set adds
a rule; a listener keeps the rules it was bound with and closes, as it accepts it, a peer that
no rule for its transport admits (ACCEPT_FAILED on its monitor; the peer sees its handshake
fail). The engine had none of these options (AttributeError; EINVAL by number), so a program
that fenced its endpoint with them ran unfenced or not at all."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
import zmq as pyzmq
from enginekit import async_test
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
import engine.asyncio as ezmq
from engine.accept_rules import parse_tcp_rule, tcp_admits
from engine.utils.monitor import recv_monitor_message
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(120)

#: How long a test waits for an event that must come (a bound, not a pause).
WAIT_MS = 10_000

TCP_RULES = [
    *(b"127.0.0.1", b"127.0.0.1/8", b"127.0.0.1/0", b"127.0.0.1/32", b"127.0.0.1/33"),
    *(b"127.0.0.1/", b"127.0.0.1/8x", b"127.0.0.1/-1", b"127.0.0.1/abc", b"127.0.0.1/00"),
    *(b"127.0.0.1/ 8", b"127.0.0.1/+8", b"127.0.0.1//8", b"127.0.0.1/8/8", b"127.0.0.1\0/8"),
    *(b"::1", b"::1/128", b"::1/129", b"[::1]", b"[::1]/64", b"[::1/64]", b"fe80::1%lo"),
    *(b"localhost", b"lo", b"", b"*", b"127.0.0.1:5555", b" 127.0.0.1", b"1.2.3", b"127.1"),
    *(b"0x7f.1", b"1", b"0.0.0.0/0", b"::/0", b"::ffff:127.0.0.1/120"),
    *(b"127.0.0.1/" + b"0" * 244 + b"8", b"127.0.0.1/" + b"0" * 245 + b"8"),  # 255, 256 bytes
]


def _verdict(lib: Any, sock: Any, option: int, value: Any) -> str:
    try:
        sock.setsockopt(option, value)
    except lib.ZMQError as exc:
        return f"errno {exc.errno}"
    except (TypeError, OverflowError) as exc:
        return type(exc).__name__
    return "taken"


def _verdicts(lib: Any) -> list[tuple[Any, ...]]:
    """What setsockopt and getsockopt say to each value, with IPV6 off and on."""
    ctx = lib.Context()
    try:
        out: list[tuple[Any, ...]] = []
        for ipv6 in (0, 1):
            sock = ctx.socket(lib.ROUTER)
            sock.ipv6 = ipv6
            out += [(ipv6, r, _verdict(lib, sock, lib.TCP_ACCEPT_FILTER, r)) for r in TCP_RULES]
        for name in ("IPC_FILTER_UID", "IPC_FILTER_GID", "IPC_FILTER_PID"):
            for value in (0, 1000, -1, -(2**31), 2**31, -(2**31) - 1, True, b"", b"\1\0\0\0"):
                out.append((name, value, _verdict(lib, sock, getattr(lib, name), value)))
        for name in ("TCP_ACCEPT_FILTER", "IPC_FILTER_UID", "IPC_FILTER_GID", "IPC_FILTER_PID"):
            try:
                sock.getsockopt(getattr(lib, name))
                out.append((name, "read"))
            except lib.ZMQError as exc:
                out.append((name, "read", exc.errno))
        for kind in ("PUB", "SUB", "REQ", "STREAM", "PAIR"):
            other = ctx.socket(getattr(lib, kind))
            out.append((kind, _verdict(lib, other, lib.TCP_ACCEPT_FILTER, b"10.0.0.0/8")))
            out.append((kind, _verdict(lib, other, lib.IPC_FILTER_UID, 5)))
        return out
    finally:
        ctx.destroy(linger=0)


def test_the_rules_are_taken_and_refused_as_libzmq_does() -> None:
    assert _verdicts(engine) == _verdicts(pyzmq)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=40),
        st.from_regex(rb"\A\[?[0-9a-fx.:]{0,20}\]?(/[ +\-0-9a-z/]{0,5})?\Z"),
    ),
    st.booleans(),
)
def test_any_rule_is_taken_or_refused_as_libzmq_does(rule: bytes, ipv6: bool) -> None:
    """Whatever the bytes, the engine takes exactly the rules libzmq takes, and a refusal is
    EINVAL, never another error."""
    theirs, ours = pyzmq.Context.instance(), engine.Context.instance()
    their_sock, our_sock = theirs.socket(pyzmq.ROUTER), ours.socket(engine.ROUTER)
    try:
        their_sock.ipv6 = our_sock.ipv6 = int(ipv6)
        expected = _verdict(pyzmq, their_sock, pyzmq.TCP_ACCEPT_FILTER, rule)
        assert _verdict(engine, our_sock, engine.TCP_ACCEPT_FILTER, rule) == expected, rule
    finally:
        their_sock.close(linger=0)
        our_sock.close(linger=0)


def test_a_rule_admits_what_its_bits_cover() -> None:
    v4 = (parse_tcp_rule(b"10.1.2.3/16", False),)
    assert tcp_admits(v4, "10.1.200.9") and not tcp_admits(v4, "10.2.0.1")
    assert not tcp_admits(v4, "::ffff:10.1.0.1")  # another family, as libzmq compares them
    mapped = (parse_tcp_rule(b"127.0.0.1", True),)  # with IPV6: kept IPv4-mapped
    assert tcp_admits(mapped, "127.0.0.1") and tcp_admits(mapped, "::ffff:127.0.0.1")
    assert not tcp_admits(mapped, "127.0.0.2") and not tcp_admits(mapped, "not an address")
    everyone = (parse_tcp_rule(b"10.0.0.0/0", False),)
    assert tcp_admits(everyone, "192.0.2.7") and not tcp_admits(everyone, "::1")


def _events_until(lib: Any, monitor: Any, last: str | None = None) -> list[str]:
    """Event names up to and including ``last`` (None: the first one), or what came, if it
    never does."""
    if lib is engine:
        read = recv_monitor_message
    else:
        from zmq.utils.monitor import recv_monitor_message as read
    monitor.rcvtimeo = WAIT_MS
    names: list[str] = []
    while not names or (last is not None and names[-1] != last):
        try:
            names.append(lib.Event(read(monitor)["event"]).name)
        except lib.Again:
            break
    return names


def _fence(lib: Any, endpoint: str, rules: list[tuple[str, Any]], ipv6: int = 0) -> list[str]:
    """Bind a ROUTER with ``rules`` to ``endpoint``; a DEALER connects and sends. What the
    ROUTER's monitor saw up to ACCEPTED or ACCEPT_FAILED, then "delivered" if the message
    came, or what the DEALER's monitor saw up to DISCONNECTED if it was turned away."""
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.ipv6 = ipv6
        for name, value in rules:
            router.setsockopt(getattr(lib, name), value)
        router.bind(endpoint)
        # Watching only the two outcomes, each the last: the first is the one that came.
        watch = router.get_monitor_socket(lib.EVENT_ACCEPTED | lib.EVENT_ACCEPT_FAILED)
        dealer = ctx.socket(lib.DEALER)
        dealer.linger = 0
        dealer_watch = dealer.get_monitor_socket()
        bound = router.getsockopt(lib.LAST_ENDPOINT).decode()
        dealer.connect(bound.replace("[::]", "127.0.0.1").replace("0.0.0.0", "127.0.0.1"))
        dealer.send(b"knock")
        seen = _events_until(lib, watch)
        if seen == ["ACCEPTED"]:
            router.rcvtimeo = WAIT_MS
            seen.append("delivered" if router.recv_multipart()[1] == b"knock" else "garbled")
        elif seen == ["ACCEPT_FAILED"]:
            told = _events_until(lib, dealer_watch, "DISCONNECTED")
            seen += [
                name for name in told if name in ("HANDSHAKE_FAILED_NO_DETAIL", "DISCONNECTED")
            ]
        return seen
    finally:
        ctx.destroy(linger=0)


TURNED_AWAY = ["ACCEPT_FAILED", "HANDSHAKE_FAILED_NO_DETAIL", "DISCONNECTED"]
LET_IN = ["ACCEPTED", "delivered"]


@LIBS
def test_tcp_rules_fence_a_tcp_endpoint(lib: Any) -> None:
    ep = "tcp://127.0.0.1:0"
    assert _fence(lib, ep, [("TCP_ACCEPT_FILTER", b"10.0.0.0/8")]) == TURNED_AWAY
    allowed = [("TCP_ACCEPT_FILTER", b"10.0.0.0/8"), ("TCP_ACCEPT_FILTER", b"127.9.9.9/8")]
    assert _fence(lib, ep, allowed) == LET_IN
    assert _fence(lib, ep, [("TCP_ACCEPT_FILTER", b"10.0.0.0/0")]) == LET_IN
    # With IPV6 the rule is an IPv4-mapped address, which an IPv4 peer meets.
    assert _fence(lib, ep, [("TCP_ACCEPT_FILTER", b"127.0.0.1")], ipv6=1) == LET_IN
    assert _fence(lib, "tcp://*:0", [("TCP_ACCEPT_FILTER", b"127.0.0.1")], ipv6=1) == LET_IN
    assert _fence(lib, "tcp://*:0", [("TCP_ACCEPT_FILTER", b"::1")], ipv6=1) == TURNED_AWAY
    # IPC rules do not fence tcp.
    assert _fence(lib, ep, [("IPC_FILTER_UID", os.getuid() + 7)]) == LET_IN


@LIBS
def test_ipc_rules_fence_an_ipc_endpoint(lib: Any, tmp_path: Path) -> None:
    uid, gid, pid = os.getuid(), os.getgid(), os.getpid()
    cases = [
        ([("IPC_FILTER_UID", uid + 7)], TURNED_AWAY),
        ([("IPC_FILTER_UID", uid + 7), ("IPC_FILTER_PID", pid)], LET_IN),
        ([("IPC_FILTER_PID", pid + 100_000)], TURNED_AWAY),
        ([("IPC_FILTER_GID", gid)], LET_IN),
        ([("IPC_FILTER_UID", uid)], LET_IN),
        ([("TCP_ACCEPT_FILTER", b"10.0.0.0/8")], LET_IN),  # tcp rules do not fence ipc
    ]
    for index, (rules, outcome) in enumerate(cases):
        assert _fence(lib, f"ipc://{tmp_path}/{index}", rules) == outcome, rules


@LIBS
def test_a_listener_keeps_the_rules_it_was_bound_with(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.bind("tcp://127.0.0.1:0")
        router.setsockopt(lib.TCP_ACCEPT_FILTER, b"10.0.0.0/8")  # for later binds only
        dealer = ctx.socket(lib.DEALER)
        dealer.connect(router.getsockopt(lib.LAST_ENDPOINT).decode())
        dealer.send(b"before the rule")
        router.rcvtimeo = WAIT_MS
        assert router.recv_multipart()[1] == b"before the rule"
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
@async_test()
async def test_the_asyncio_face_turns_away_whom_the_rules_refuse(
    tmp_path: Path, transport: str
) -> None:
    """The asyncio face accepts through asyncio's own servers, whose protocol factory cannot
    see the peer: the check comes once the connection is made, before a link exists."""
    if transport == "ipc":
        option, refused, admitted = engine.IPC_FILTER_PID, os.getpid() + 100_000, os.getpid()
        endpoints = (f"ipc://{tmp_path}/fenced", f"ipc://{tmp_path}/open")
    else:
        option, refused, admitted = engine.TCP_ACCEPT_FILTER, b"10.0.0.0/8", b"127.0.0.0/8"
        endpoints = ("tcp://127.0.0.1:0", "tcp://127.0.0.1:0")
    ctx = ezmq.Context()
    try:
        fenced = ctx.socket(engine.ROUTER)
        fenced.setsockopt(option, refused)
        fenced.bind(endpoints[0])
        watch = fenced.get_monitor_socket(engine.EVENT_ACCEPTED | engine.EVENT_ACCEPT_FAILED)
        open_ = ctx.socket(engine.ROUTER)
        open_.setsockopt(option, admitted)
        open_.bind(endpoints[1])
        for router in (fenced, open_):
            dealer = ctx.socket(engine.DEALER)
            dealer.linger = 0
            dealer.connect(router.getsockopt(engine.LAST_ENDPOINT).decode())
            await dealer.send(b"knock")
        assert (await asyncio.wait_for(open_.recv_multipart(), WAIT_MS / 1000))[1] == b"knock"
        frames = await asyncio.wait_for(watch.recv_multipart(), WAIT_MS / 1000)
        event, value = struct.unpack("=hi", frames[0][:6])
        assert (event, value) == (engine.EVENT_ACCEPT_FAILED, 13)  # EACCES: why, said
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_peer_that_closes_mid_handshake_is_epipe(lib: Any) -> None:
    """libzmq reports a connection that the peer ends cleanly before the handshake is done as
    HANDSHAKE_FAILED_NO_DETAIL with EPIPE (its reads turn an orderly close into EPIPE); the
    engine said 0."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        ctx = lib.Context()
        try:
            dealer = ctx.socket(lib.DEALER)
            dealer.setsockopt(lib.RECONNECT_STOP, lib.RECONNECT_STOP_HANDSHAKE_FAILED)
            watch = dealer.get_monitor_socket(lib.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            dealer.connect(f"tcp://127.0.0.1:{listening.getsockname()[1]}")
            conn, _ = listening.accept()
            with conn:
                # An orderly end (FIN) whatever of the greeting is unread (a close would
                # reset the connection then), kept open until the report came.
                conn.shutdown(socket.SHUT_WR)
                watch.rcvtimeo = WAIT_MS
                frames = watch.recv_multipart()
            reported = struct.unpack("=hi", frames[0][:6])
            assert reported == (lib.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32)
        finally:
            ctx.destroy(linger=0)
