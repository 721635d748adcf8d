"""PROBE_ROUTER, and how sockets and contexts take attribute options, compared with pyzmq.

Each was a gap found by running the same lines against both: PROBE_ROUTER did not exist (an
AttributeError), `sock.lingr = 0` was kept as a plain attribute where pyzmq reports the typo,
and `setsockopt(IMMEDIATE, True)` was a TypeError where pyzmq takes a bool as the int it is.
"""

from __future__ import annotations

import errno
import importlib
import json
import threading
import time
from typing import Any

import pytest
import zmq as pyzmq
from enginekit import same_option_verdicts_as_libzmq

import engine
from engine.utils.monitor import recv_monitor_message
from tests.engine.libkit import LIBS, tcp_pull_and_push

pytestmark = pytest.mark.timeout(60)

CLASSIC = ("PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB")


def test_probe_router_is_taken_where_libzmq_takes_it_and_never_read() -> None:
    same_option_verdicts_as_libzmq("PROBE_ROUTER", CLASSIC, (0, 1, 5, -1))


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_a_probing_dealer_is_known_to_a_libzmq_router_before_it_sends(transport: str) -> None:
    """The engine's DEALER probes a pyzmq ROUTER over tcp (an engine ROUTER over inproc):
    the router hears [id, b""] first, then the DEALER's own messages."""
    ours = engine.Context()
    theirs = pyzmq.Context()
    try:
        if transport == "tcp":
            router: Any = theirs.socket(pyzmq.ROUTER)
            router.bind("tcp://127.0.0.1:0")
            endpoint = router.getsockopt(pyzmq.LAST_ENDPOINT).decode()
        else:
            router = ours.socket(engine.ROUTER)
            endpoint = router.bind(f"inproc://probe-{id(router)}")
        router.setsockopt(pyzmq.RCVTIMEO, 10_000)
        dealer = ours.socket(engine.DEALER)
        dealer.setsockopt(engine.PROBE_ROUTER, 1)
        dealer.setsockopt(engine.ROUTING_ID, b"scout")
        dealer.connect(endpoint)
        assert router.recv_multipart() == [b"scout", b""]
        dealer.send(b"then this")
        assert router.recv_multipart() == [b"scout", b"then this"]
    finally:
        ours.destroy(linger=0)
        theirs.destroy(linger=0)


def test_probes_come_from_routers_and_bound_sockets_too_and_once_a_pipe() -> None:
    """A connecting ROUTER probes a libzmq DEALER; a bound DEALER probes each peer it accepts;
    a DEALER whose router restarted does not probe the new one (its pipe outlived the
    connection, as libzmq's does)."""
    ours = engine.Context()
    theirs = pyzmq.Context()
    try:
        dealer = theirs.socket(pyzmq.DEALER)
        dealer.setsockopt(pyzmq.RCVTIMEO, 10_000)
        dealer.bind("tcp://127.0.0.1:0")
        router = ours.socket(engine.ROUTER)
        router.setsockopt(engine.PROBE_ROUTER, 1)
        router.connect(dealer.getsockopt(pyzmq.LAST_ENDPOINT).decode())
        assert dealer.recv_multipart() == [b""]

        bound = ours.socket(engine.DEALER)
        bound.setsockopt(engine.PROBE_ROUTER, 1)
        their_router = theirs.socket(pyzmq.ROUTER)
        their_router.setsockopt(pyzmq.RCVTIMEO, 10_000)
        their_router.connect(bound.bind("tcp://127.0.0.1:0"))
        bound.poll(10)  # the engine, as libzmq, takes the new peer when the socket is used
        peer, probe = their_router.recv_multipart()
        assert probe == b"" and peer

        first = theirs.socket(pyzmq.ROUTER)
        first.setsockopt(pyzmq.RCVTIMEO, 10_000)
        first.bind("tcp://127.0.0.1:0")
        endpoint = first.getsockopt(pyzmq.LAST_ENDPOINT).decode()
        scout = ours.socket(engine.DEALER)
        scout.setsockopt(engine.PROBE_ROUTER, 1)
        scout.setsockopt(engine.ROUTING_ID, b"scout")
        scout.setsockopt(engine.RECONNECT_IVL, 20)
        events = scout.get_monitor_socket(engine.EVENT_HANDSHAKE_SUCCEEDED)
        events.setsockopt(engine.RCVTIMEO, 10_000)
        scout.connect(endpoint)
        assert first.recv_multipart() == [b"scout", b""]
        recv_monitor_message(events)
        first.close(linger=0)
        second = theirs.socket(pyzmq.ROUTER)
        second.setsockopt(pyzmq.RCVTIMEO, 10_000)
        _bind_when_free(second, endpoint)
        recv_monitor_message(events)  # on the new router (a send before may die with the old)
        scout.send(b"still here")
        assert second.recv_multipart() == [b"scout", b"still here"]
    finally:
        ours.destroy(linger=0)
        theirs.destroy(linger=0)


def _bind_when_free(sock: Any, endpoint: str) -> None:
    """libzmq closes a listener on its I/O thread after close() returns: retry the port."""
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.bind(endpoint)
            return
        except pyzmq.ZMQError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@LIBS
def test_an_option_typo_as_an_attribute_is_an_error(lib: Any) -> None:
    """`sock.lingr = 0` raises AttributeError on sockets and contexts, as in pyzmq; options
    and attributes a subclass declares still go through."""

    class Tagged(lib.Socket):  # type: ignore[misc,name-defined]
        tag: str

    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.DEALER)
        with pytest.raises(AttributeError, match="LINGR"):
            sock.lingr = 0
        with pytest.raises(AttributeError, match="LINGR"):
            ctx.lingr = 0
        sock.linger = 0
        assert sock.linger == 0
        tagged = Tagged(ctx, lib.DEALER)
        tagged.tag = "kept"
        assert tagged.tag == "kept"
        tagged.close()
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_bools_are_taken_as_the_ints_they_are(lib: Any) -> None:
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.REP)
        sock.setsockopt(lib.IMMEDIATE, True)
        sock.curve_server = True
        sock.setsockopt(lib.CONFLATE, False)
        assert (sock.getsockopt(lib.IMMEDIATE), sock.curve_server, sock.conflate) == (1, 1, 0)
    finally:
        ctx.destroy(linger=0)


@LIBS
@pytest.mark.parametrize(
    ("kind", "option", "value"),
    [
        ("SUB", "SUBSCRIBE", 5),  # the engine subscribed to five zero bytes
        ("SUB", "UNSUBSCRIBE", True),
        ("SUB", "SUBSCRIBE", bytearray(b"ab")),
        ("DEALER", "BINDTODEVICE", 5),  # the engine kept five zero bytes
        ("XPUB", "XPUB_WELCOME_MSG", 0),  # ...and an empty welcome message
        ("DEALER", "XPUB_WELCOME_MSG", 5),  # the kind is checked before the socket type
        ("DEALER", "ROUTING_ID", 7),
        ("DEALER", "CURVE_SERVERKEY", memoryview(b"x" * 32)),
        ("DEALER", "TCP_ACCEPT_FILTER", 1),
        ("DEALER", "LINGER", b"5"),
        ("DEALER", "SNDHWM", 2.5),
        ("SUB", "XPUB_VERBOSE", "1"),
    ],
)
def test_a_value_of_the_wrong_kind_is_a_type_error(
    lib: Any, kind: str, option: str, value: Any
) -> None:
    """pyzmq takes a byte-string option's value as `bytes` only and any other option's as an
    int, and says so (TypeError) before libzmq sees the option; the engine made `bytes(5)`
    of an int, and checked the socket type first."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(getattr(lib, kind))
        with pytest.raises(TypeError):
            sock.setsockopt(getattr(lib, option), value)
        with pytest.raises(TypeError):
            sock.setsockopt_string(lib.ROUTING_ID, b"already bytes")
        if option == "SUBSCRIBE":
            assert sock.getsockopt(lib.EVENTS) == 0  # nothing was subscribed
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("sub_lib", [engine, pyzmq], ids=["engine-sub", "pyzmq-sub"])
@LIBS
def test_a_repeated_subscribe_travels_and_a_verbose_xpub_shows_it(lib: Any, sub_lib: Any) -> None:
    """libzmq's SUB sends every subscribe upstream, a repeated one too, and a cancel when the
    last reference goes: an XPUB_VERBOSE publisher shows both subscribes, one cancel."""
    ctx, sub_ctx = lib.Context(), sub_lib.Context()
    try:
        xpub = ctx.socket(lib.XPUB)
        xpub.setsockopt(lib.XPUB_VERBOSE, 1)
        xpub.rcvtimeo = 5000
        xpub.bind("tcp://127.0.0.1:0")
        sub = sub_ctx.socket(sub_lib.SUB)
        sub.connect(xpub.getsockopt(lib.LAST_ENDPOINT).decode())
        for topic in (b"a", b"a"):
            sub.subscribe(topic)
        for topic in (b"a", b"a"):
            sub.unsubscribe(topic)
        sub.subscribe(b"end")  # a marker: everything before it has arrived
        seen = [xpub.recv()]
        while seen[-1] != b"\x01end":
            seen.append(xpub.recv())
        assert seen == [b"\x01a", b"\x01a", b"\x00a", b"\x01end"]
    finally:
        ctx.destroy(linger=0)
        sub_ctx.destroy(linger=0)


@LIBS
def test_context_options_are_libzmqs_and_socket_options_are_not_among_them(lib: Any) -> None:
    """zmq_ctx_get/set: SOCKET_LIMIT and MSG_T_SIZE are libzmq's figures, a socket option or an
    unknown number is EINVAL (socket defaults go through setsockopt, or attributes), and
    IO_THREADS and MAX_SOCKETS set after the first socket are reported and change nothing."""
    ctx = lib.Context()
    try:
        assert (ctx.get(lib.SOCKET_LIMIT), ctx.get(lib.MSG_T_SIZE)) == (65535, 64)
        assert (ctx.get(lib.MAX_MSGSZ), ctx.get(lib.BLOCKY), ctx.get(lib.IPV6)) == (2**31 - 1, 1, 0)
        for option in (lib.LINGER, 9999):
            with pytest.raises(lib.ZMQError) as info:
                ctx.get(option)
            assert info.value.errno == errno.EINVAL
            with pytest.raises(lib.ZMQError) as info:
                ctx.set(option, 1)
            assert info.value.errno == errno.EINVAL
        for option, value in ((lib.MSG_T_SIZE, 8), (lib.MAX_SOCKETS, 0), (lib.MAX_MSGSZ, -1)):
            with pytest.raises(lib.ZMQError) as info:
                ctx.set(option, value)
            assert info.value.errno == errno.EINVAL
        ctx.set(lib.SOCKET_LIMIT, 5)
        ctx.set(lib.BLOCKY, 7)
        assert (ctx.get(lib.SOCKET_LIMIT), ctx.get(lib.BLOCKY)) == (65535, 1)
        ctx.linger = 3  # an attribute that is a socket option: a default for new sockets
        assert (ctx.getsockopt(lib.LINGER), ctx.sockopts) == (3, {lib.LINGER: 3})
        ctx.max_sockets = 50  # one that is a context option: ctx.set
        assert (ctx.get(lib.MAX_SOCKETS), ctx.io_threads) == (50, 1)
        first = ctx.socket(lib.PUSH)
        assert first.linger == 3
        ctx.set(lib.MAX_SOCKETS, 1)
        ctx.set(lib.IO_THREADS, 4)
        assert (ctx.max_sockets, ctx.get(lib.IO_THREADS)) == (1, 4)
        others = [ctx.socket(lib.PUSH) for _ in range(3)]  # the first socket fixed the limit
        assert len(others) == 3
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_blocky_0_gives_new_sockets_linger_0_and_ipv6_their_ipv6(lib: Any) -> None:
    """libzmq takes a new socket's LINGER from BLOCKY (-1, or 0 once BLOCKY is 0) and its IPV6
    from the context's IPV6; a default given with setsockopt comes on top."""
    ctx = lib.Context()
    try:
        assert (ctx.socket(lib.PUSH).linger, ctx.socket(lib.PUSH).ipv6) == (-1, 0)
        ctx.set(lib.BLOCKY, 0)
        ctx.set(lib.IPV6, 1)
        assert (ctx.socket(lib.PUSH).linger, ctx.socket(lib.PUSH).ipv6) == (0, 1)
        ctx.setsockopt(lib.LINGER, 9)
        assert ctx.socket(lib.PUSH).linger == 9
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_terminated_context_makes_no_socket_enotsup(lib: Any) -> None:
    ctx = lib.Context()
    ctx.term()
    with pytest.raises(lib.ZMQError) as info:
        ctx.socket(lib.PUSH)
    assert info.value.errno == errno.ENOTSUP


@LIBS
def test_a_bound_endpoint_is_shown_numeric_and_found_again_by_its_name(lib: Any) -> None:
    """libzmq binds a network interface's name (tcp://lo:0) or a host name, shows LAST_ENDPOINT
    as the numeric address bound (an IPv4-mapped one as IPv4), and unbind resolves the name it
    is given before it looks; a name that is neither is ENODEV, a bad transport EPROTONOSUPPORT."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PULL)
        for given in (
            "tcp://lo:0",
            "tcp://localhost:0",
            "tcp://127.1:0",
            "tcp://[::ffff:127.0.0.1]:0",
        ):
            sock.bind(given)
            shown = sock.getsockopt(lib.LAST_ENDPOINT).decode()
            assert shown.startswith("tcp://127.0.0.1:"), (given, shown)
            sock.unbind("tcp://localhost:" + shown.rsplit(":", 1)[1])
            with pytest.raises(lib.ZMQError) as info:
                sock.unbind(shown)  # gone already
            assert info.value.errno == errno.ENOENT
        for given in ("tcp://no-such-interface-or-host.invalid:0", "tcp://256.0.0.1:0"):
            with pytest.raises(lib.ZMQError) as info:
                sock.bind(given)
            assert info.value.errno == errno.ENODEV, given
        for call in (sock.unbind, sock.disconnect):
            with pytest.raises(lib.ZMQError) as info:
                call("nosuch://x")
            assert info.value.errno == errno.EPROTONOSUPPORT
        for call in (sock.bind, sock.connect):
            with pytest.raises(lib.ZMQError) as info:
                call("ipc://@")  # an abstract socket needs a name
            assert info.value.errno == errno.EINVAL
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_recv_into_stores_what_fits_and_returns_the_frames_size(lib: Any) -> None:
    """pyzmq 26.4's recv_into: up to nbytes (or the buffer) of the next frame, its whole size
    back; a read-only or strided buffer is BufferError and a bad nbytes ValueError, before
    anything is taken; an empty buffer drops a frame."""
    ctx = lib.Context()
    try:
        pull, push = tcp_pull_and_push(lib, ctx)
        pull.rcvtimeo = 5000
        for frames in ([b"0123456789"], [b"dropped"], [b"first", b"second"], [b"ab"]):
            push.send_multipart(frames)
        buffer = bytearray(4)
        with pytest.raises(ValueError):
            pull.recv_into(buffer, nbytes=8)
        with pytest.raises(BufferError):
            pull.recv_into(bytes(4))
        with pytest.raises(BufferError):
            pull.recv_into(memoryview(bytearray(8))[::2])
        assert (pull.recv_into(buffer, nbytes=3), buffer) == (10, bytearray(b"012\0"))
        assert pull.recv_into(bytearray()) == 7
        assert (pull.recv_into(buffer), buffer, pull.rcvmore) == (5, bytearray(b"firs"), 1)
        assert pull.recv() == b"second"
        assert (pull.recv_into(buffer), buffer[:2]) == (2, bytearray(b"ab"))
        pull.copy_threshold = 10  # pyzmq's knob: taken
        assert pull.copy_threshold == 10
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_monitor_event_is_named_by_the_event_enum(lib: Any) -> None:
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PULL)
        monitor = sock.get_monitor_socket(lib.EVENT_LISTENING)
        monitor.rcvtimeo = 5000
        sock.bind("tcp://127.0.0.1:0")
        if lib is pyzmq:
            from zmq.utils.monitor import recv_monitor_message as recv_event
        else:
            recv_event = recv_monitor_message
        event = recv_event(monitor)["event"]
        assert (event, event.name) == (lib.EVENT_LISTENING, "LISTENING")
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_get_monitor_socket_hands_out_the_same_socket_while_it_is_open(lib: Any) -> None:
    """As pyzmq's: asked again, the socket already handed out (the engine made a second
    monitor, and the first socket heard nothing more); after disable_monitor, its
    MONITOR_STOPPED."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PULL)
        first = sock.get_monitor_socket()
        assert sock.get_monitor_socket() is first
        first.rcvtimeo = 5000
        sock.bind("tcp://127.0.0.1:0")
        if lib is pyzmq:
            from zmq.utils.monitor import recv_monitor_message as recv_event
        else:
            recv_event = recv_monitor_message
        assert recv_event(first)["event"] == lib.EVENT_LISTENING
        sock.disable_monitor()
        assert recv_event(first)["event"] == lib.EVENT_MONITOR_STOPPED
        # (Asked again now, pyzmq makes a new one at the same inproc name, which libzmq
        # sometimes still holds: EADDRINUSE. Not compared.)
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_type_and_rcvmore_read_as_pyzmqs(lib: Any) -> None:
    """getsockopt(TYPE) is a plain number and `.type` the SocketType; RCVMORE, as an option or
    the attribute, is 0 or 1 (pyzmq's ints, not bools)."""
    ctx = lib.Context()
    try:
        pull, push = tcp_pull_and_push(lib, ctx)
        push.send_multipart([b"a", b"b"])
        assert type(pull.getsockopt(lib.TYPE)) is int
        assert (pull.type, pull.type.name) == (lib.PULL, "PULL")
        pull.recv()
        assert (type(pull.rcvmore), pull.rcvmore, pull.getsockopt(lib.RCVMORE)) == (int, 1, 1)
        pull.recv()
        assert (type(pull.rcvmore), pull.rcvmore) == (int, 0)
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_jsonapi_is_json_as_utf8_bytes(lib: Any) -> None:
    from importlib import import_module

    jsonapi = import_module(f"{lib.__name__}.utils.jsonapi")
    assert jsonapi.dumps({"a": "é", "b": [1]}) == b'{"a": "\\u00e9", "b": [1]}'
    assert jsonapi.dumps({"a": "é"}, ensure_ascii=False) == '{"a": "é"}'.encode()
    assert jsonapi.loads(b'{"a": 1}') == jsonapi.loads('{"a": 1}') == {"a": 1}
    assert jsonapi.jsonmod is json  # (pyzmq's test helpers read it)


@LIBS
def test_a_poll_does_not_move_req_and_rep_on(lib: Any) -> None:
    """A poll that finds a request (REP) or a reply (REQ) waiting leaves the application to
    receive it: EVENTS says POLLIN alone and a send is EFSM until it has. The engine's poll took
    the message ahead and moved the socket on: a REP sent a reply to a request its application
    had never read."""
    ctx = lib.Context()
    try:
        rep, req = ctx.socket(lib.REP), ctx.socket(lib.REQ)
        rep.rcvtimeo = req.rcvtimeo = 5000
        port = rep.bind_to_random_port("tcp://127.0.0.1")
        req.connect(f"tcp://127.0.0.1:{port}")
        req.send(b"q1")
        assert rep.poll(5000) == lib.POLLIN
        assert rep.getsockopt(lib.EVENTS) == lib.POLLIN
        with pytest.raises(lib.ZMQError) as info:
            rep.send(b"unasked")
        assert info.value.errno == lib.EFSM
        assert rep.recv() == b"q1"
        assert rep.getsockopt(lib.EVENTS) == lib.POLLOUT
        rep.send(b"r1")
        assert req.poll(5000) == lib.POLLIN
        assert req.getsockopt(lib.EVENTS) == lib.POLLIN
        with pytest.raises(lib.ZMQError) as info:
            req.send(b"again")
        assert info.value.errno == lib.EFSM
        assert req.recv() == b"r1"
        assert req.getsockopt(lib.EVENTS) == lib.POLLOUT
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_relaxed_req_may_ask_again_past_a_polled_reply(lib: Any) -> None:
    """REQ_RELAXED with REQ_CORRELATE: a reply a poll saw, but nobody read, is stale once a new
    request goes; the next recv is the new request's reply."""
    ctx = lib.Context()
    try:
        rep, req = ctx.socket(lib.REP), ctx.socket(lib.REQ)
        rep.rcvtimeo = req.rcvtimeo = 5000
        req.setsockopt(lib.REQ_RELAXED, 1)
        req.setsockopt(lib.REQ_CORRELATE, 1)
        port = rep.bind_to_random_port("tcp://127.0.0.1")
        req.connect(f"tcp://127.0.0.1:{port}")
        req.send(b"q1")
        rep.send(rep.recv().replace(b"q", b"r"))
        assert req.poll(5000) == lib.POLLIN
        assert req.getsockopt(lib.EVENTS) == lib.POLLIN | lib.POLLOUT
        req.send(b"q2")
        rep.send(rep.recv().replace(b"q", b"r"))
        assert req.recv() == b"r2"
    finally:
        ctx.destroy(linger=0)


def _zmtp_push_bytes(*messages: bytes) -> bytes:
    """A NULL-mechanism PUSH peer's whole side of a connection, written by hand: greeting,
    READY, then one short frame per message."""
    greeting = b"\xff" + bytes(8) + b"\x7f" + bytes((3, 1)) + b"NULL".ljust(20, b"\0")
    greeting += b"\0" + bytes(31)
    ready = b"\x05READY" + b"\x0bSocket-Type" + (4).to_bytes(4, "big") + b"PUSH"
    frames = b"\x04" + bytes((len(ready),)) + ready
    for body in messages:
        frames += b"\x00" + bytes((len(body),)) + body
    return greeting + frames


@LIBS
def test_messages_before_a_fault_in_the_same_read_are_delivered(lib: Any) -> None:
    """A peer's good message and an oversized one (MAXMSGSIZE) in one write: libzmq delivers
    the first, reports the handshake as succeeded, and drops the connection at the second. The
    engine dropped both and reported a failed handshake."""
    import socket

    ctx = lib.Context()
    try:
        pull = ctx.socket(lib.PULL)
        pull.maxmsgsize = 100
        pull.rcvtimeo = 5000
        events = pull.get_monitor_socket()
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        with socket.create_connection(("127.0.0.1", port)) as peer:
            ours = _zmtp_push_bytes(b"first", b"x" * 200)
            peer.sendall(ours[:64])  # the greeting; libzmq wants it apart from what follows
            theirs = b""
            while len(theirs) < 64:  # its greeting: the handshake goes on
                theirs += peer.recv(64 - len(theirs))
            peer.sendall(ours[64:])  # READY and both messages, in one write
            assert pull.recv() == b"first"
            seen = _events_of(lib, events, 4)
        assert seen == ["LISTENING", "ACCEPTED", "HANDSHAKE_SUCCEEDED", "DISCONNECTED"]
    finally:
        ctx.destroy(linger=0)


def _events_of(lib: Any, monitor: Any, count: int) -> list[str]:
    reader = recv_monitor_message if lib is engine else _pyzmq_recv_event
    monitor.rcvtimeo = 5000
    return [lib.Event(reader(monitor)["event"]).name for _ in range(count)]


def _pyzmq_recv_event(monitor: Any) -> dict[str, Any]:
    from zmq.utils.monitor import recv_monitor_message as recv_event

    return recv_event(monitor)


@pytest.mark.parametrize(
    ("option", "types", "value"),
    [
        ("ROUTER_MANDATORY", ("ROUTER",), 1),
        ("ROUTER_HANDOVER", ("ROUTER",), 1),
        ("ROUTER_RAW", ("ROUTER",), 1),
        ("REQ_RELAXED", ("REQ",), 1),
        ("REQ_CORRELATE", ("REQ",), 1),
        ("XPUB_VERBOSE", ("XPUB",), 1),
        ("XPUB_VERBOSER", ("XPUB",), 1),
        ("XPUB_NODROP", ("XPUB", "PUB"), 1),
        ("XPUB_WELCOME_MSG", ("XPUB",), b"hi"),
        ("CONNECT_ROUTING_ID", ("ROUTER", "REP", "STREAM", "DEALER", "PUB", "REQ"), b"peer"),
    ],
)
def test_options_libzmq_never_answers_are_not_answered(
    option: str, types: tuple[str, ...], value: Any
) -> None:
    """Set, then read back: libzmq 4.3.5 takes these and answers none (EINVAL); the engine used
    to answer them, so code that read one worked here and failed on libzmq. CONNECT_ROUTING_ID
    it takes on ROUTER, REP and STREAM only; the engine took it everywhere."""
    same_option_verdicts_as_libzmq(option, types, (value,))


@LIBS
def test_a_native_source_comes_back_as_its_descriptor(lib: Any) -> None:
    """pyzmq's Poller and select report a native socket (or any object with fileno()) by its
    descriptor, so pyzmq code looks for `sock.fileno()` in the result; the engine gave the
    object back, and that code found nothing."""
    import socket

    reader, writer = socket.socketpair()
    try:
        writer.send(b"x")
        poller = lib.Poller()
        poller.register(reader, lib.POLLIN)
        assert poller.poll(5000) == [(reader.fileno(), lib.POLLIN)]
        assert lib.select([reader], [writer], [], 5) == (
            [reader.fileno()],
            [writer.fileno()],
            [],
        )
    finally:
        reader.close()
        writer.close()


@LIBS
def test_poll_on_a_closed_socket_is_enotsup_on_both_faces(lib: Any) -> None:
    """pyzmq checks a socket is open before it asks libzmq, and answers ENOTSUP; the engine
    said ENOTSOCK, as for other calls (which pyzmq leaves to libzmq: ENOTSOCK there too). On
    the asyncio face pyzmq raises at once, the engine through the awaitable, as every other
    error there."""
    import asyncio

    def closed(ctx: Any) -> Any:
        sock = ctx.socket(lib.DEALER)
        sock.close()
        return sock

    ctx = lib.Context()
    with pytest.raises(lib.ZMQError) as exc:
        closed(ctx).poll(0)
    assert exc.value.errno == errno.ENOTSUP
    ctx.term()
    async_face = engine.asyncio if lib is engine else importlib.import_module("zmq.asyncio")

    async def on_the_loop() -> int:
        ctx = async_face.Context()
        try:
            await closed(ctx).poll(0)
        except lib.ZMQError as exc:
            return exc.errno
        finally:
            ctx.term()
        return 0

    assert asyncio.run(on_the_loop()) == errno.ENOTSUP


@LIBS
def test_a_routing_id_is_one_to_255_bytes_and_an_empty_one_is_refused(lib: Any) -> None:
    """libzmq takes a ROUTING_ID of 1-255 bytes and refuses an empty one (the engine took it)."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.DEALER)
        for too_long_or_empty in (b"", b"x" * 256):
            with pytest.raises(lib.ZMQError) as refused:
                sock.setsockopt(lib.ROUTING_ID, too_long_or_empty)
            assert refused.value.errno == errno.EINVAL
        sock.setsockopt(lib.ROUTING_ID, b"x" * 255)
        sock.setsockopt(lib.ROUTING_ID, b"kept")
        assert sock.getsockopt(lib.ROUTING_ID) == b"kept"
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_connect_routing_id_may_be_longer_than_255_bytes(lib: Any) -> None:
    """A CONNECT_ROUTING_ID names a connection locally and never travels: libzmq takes one
    over 255 bytes (the engine refused it), and routes by it; an empty one is EINVAL."""
    ctx = lib.Context()
    try:
        dealer = ctx.socket(lib.DEALER)
        dealer.bind("tcp://127.0.0.1:0")
        router = ctx.socket(lib.ROUTER)
        with pytest.raises(lib.ZMQError) as empty:
            router.setsockopt(lib.CONNECT_ROUTING_ID, b"")
        assert empty.value.errno == errno.EINVAL
        long_name = b"n" * 300
        router.setsockopt(lib.CONNECT_ROUTING_ID, long_name)
        router.setsockopt(lib.ROUTER_MANDATORY, 1)
        events = router.get_monitor_socket(lib.EVENT_HANDSHAKE_SUCCEEDED)
        router.connect(dealer.getsockopt(lib.LAST_ENDPOINT).decode())
        assert events.poll(10_000), "the connection never came up"
        router.send_multipart([long_name, b"by its long name"])  # EHOSTUNREACH if unknown
        assert dealer.poll(10_000) and dealer.recv() == b"by its long name"
    finally:
        ctx.destroy(linger=0)


def test_a_routing_id_beginning_with_a_zero_byte_is_refused_unlike_libzmq() -> None:
    """A ROUTER's own ids begin with a zero byte (libzmq's documentation reserves them), so a
    peer naming itself so could collide with another: the engine refuses such an id at
    setsockopt and in a peer's handshake, where libzmq 4.3.5 takes both (the README says so)."""
    theirs = pyzmq.Context()
    ours = engine.Context()
    try:
        pyzmq_dealer = theirs.socket(pyzmq.DEALER)
        pyzmq_dealer.setsockopt(pyzmq.ROUTING_ID, b"\x00abc")  # libzmq takes it
        assert pyzmq_dealer.getsockopt(pyzmq.ROUTING_ID) == b"\x00abc"
        with pytest.raises(engine.ZMQError) as refused:
            ours.socket(engine.DEALER).setsockopt(engine.ROUTING_ID, b"\x00abc")
        assert refused.value.errno == errno.EINVAL
        router = ours.socket(engine.ROUTER)
        router.rcvtimeo = 5000
        endpoint = router.bind("tcp://127.0.0.1:0")
        monitor = router.get_monitor_socket(engine.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        monitor.rcvtimeo = 5000
        pyzmq_dealer.connect(endpoint)
        pyzmq_dealer.send(b"as someone reserved", pyzmq.NOBLOCK)
        failed = recv_monitor_message(monitor)
        assert failed["event"] == engine.EVENT_HANDSHAKE_FAILED_PROTOCOL
        plain = theirs.socket(pyzmq.DEALER)
        plain.connect(endpoint)
        plain.send(b"as itself")
        assert router.recv_multipart()[1:] == [b"as itself"]  # nothing of the refused one
    finally:
        ours.destroy(linger=0)
        theirs.destroy(linger=0)


@LIBS
def test_a_socket_past_max_sockets_is_emfile(lib: Any) -> None:
    """libzmq answers EMFILE when MAX_SOCKETS are open (the engine said EMTHREAD)."""
    ctx = lib.Context()
    try:
        ctx.set(lib.MAX_SOCKETS, 2)
        # (kept: pyzmq closes a socket it collects, and libzmq's reaper then frees its place)
        kept = [ctx.socket(lib.PAIR), ctx.socket(lib.PAIR)]
        with pytest.raises(lib.ZMQError) as refused:
            ctx.socket(lib.PAIR)
        assert refused.value.errno == errno.EMFILE
        assert all(not sock.closed for sock in kept)
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_io_threads_and_context_options_are_checked_as_pyzmq_checks_them(lib: Any) -> None:
    """Context(-1) fails (libzmq refuses it) and a str is a TypeError; ctx.set takes an int
    only (the engine took -1, "2" and 2.0 by int())."""
    with pytest.raises(lib.ZMQError) as negative:
        lib.Context(-1)
    assert negative.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        lib.Context("2")
    ctx = lib.Context(2.0)  # (a float with an int's value passes, in both)
    try:
        assert ctx.get(lib.IO_THREADS) == 2
        for value in (2.0, "2", None):
            with pytest.raises(TypeError):
                ctx.set(lib.IO_THREADS, value)
        ctx.set(lib.IO_THREADS, True)
        assert ctx.get(lib.IO_THREADS) == 1
    finally:
        ctx.term()


@LIBS
def test_a_bind_to_an_empty_host_names_no_device(lib: Any) -> None:
    """libzmq reads a bind's host as an interface's name first, so `tcp://:0` is ENODEV (the
    engine said EINVAL); `tcp://*:` (no port) is EINVAL in both."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PULL)
        with pytest.raises(lib.ZMQError) as empty_host:
            sock.bind("tcp://:0")
        assert empty_host.value.errno == errno.ENODEV
        with pytest.raises(lib.ZMQError) as no_port:
            sock.bind("tcp://*:")
        assert no_port.value.errno == errno.EINVAL
    finally:
        ctx.destroy(linger=0)


@LIBS
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_a_peer_handed_over_stays_connected_unheard(
    lib: Any, transport: str, tmp_path: Any
) -> None:
    """ROUTER_HANDOVER: the newcomer takes the id for good. The engine closed the old peer's
    connection, so the old peer redialled at once, took the id back, and the two traded it
    every reconnect interval (its messages arriving under the id the newcomer now holds).
    libzmq keeps the old connection open and reads nothing more from it."""
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.setsockopt(lib.ROUTER_HANDOVER, 1)
        router.rcvtimeo = 10_000
        where = "tcp://127.0.0.1:0" if transport == "tcp" else f"ipc://{tmp_path}/router"
        router.bind(where)
        endpoint = router.getsockopt(lib.LAST_ENDPOINT).decode()
        first, second = ctx.socket(lib.DEALER), ctx.socket(lib.DEALER)
        for dealer in (first, second):
            dealer.setsockopt(lib.ROUTING_ID, b"player")
            dealer.setsockopt(lib.RECONNECT_IVL, 10)
        first.connect(endpoint)
        first.send(b"one")
        assert router.recv_multipart() == [b"player", b"one"]
        second.connect(endpoint)
        second.send(b"two")
        assert router.recv_multipart() == [b"player", b"two"]
        first.send(b"stale")
        assert router.poll(300) == 0  # 30 of the old peer's reconnect intervals
        router.send_multipart([b"player", b"to-new"])
        assert second.poll(10_000) and second.recv() == b"to-new"
        assert first.poll(100) == 0
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_mandatory_router_is_writable_only_while_a_peer_has_room(lib: Any) -> None:
    """libzmq's ROUTER is always writable, but under ROUTER_MANDATORY only while some peer
    can take a message: with no peer at all it is not (the engine said POLLOUT)."""
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        assert router.poll(0, lib.POLLOUT) == lib.POLLOUT
        router.setsockopt(lib.ROUTER_MANDATORY, 1)
        assert router.poll(0, lib.POLLOUT) == 0
        router.bind("tcp://127.0.0.1:0")
        dealer = ctx.socket(lib.DEALER)
        dealer.connect(router.getsockopt(lib.LAST_ENDPOINT).decode())
        dealer.send(b"here")
        assert router.poll(10_000) and router.recv_multipart()[1] == b"here"
        assert router.poll(0, lib.POLLOUT) == lib.POLLOUT
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_message_refused_is_refused_at_its_first_frame(lib: Any) -> None:
    """libzmq takes a message a frame at a time, so a refusal comes at the first frame given
    with SNDMORE: REQ and REP out of turn (EFSM), a receive-only type (ENOTSUP), a ROUTER_
    MANDATORY id with no peer (EHOSTUNREACH). The engine took the first frame and refused
    at the last. A message routed at its first frame whose peer leaves before the last is
    dropped quietly."""
    ctx = lib.Context()
    try:
        rep = ctx.socket(lib.REP)
        rep.bind("tcp://127.0.0.1:0")
        req = ctx.socket(lib.REQ)
        req.connect(rep.getsockopt(lib.LAST_ENDPOINT).decode())
        req.send(b"ask")
        for sock in (req, rep):  # REQ asked already; REP has received nothing
            with pytest.raises(lib.ZMQError) as out_of_turn:
                sock.send(b"first", lib.SNDMORE)
            assert out_of_turn.value.errno == lib.EFSM
        for kind in (lib.PULL, lib.SUB):
            with pytest.raises(lib.ZMQError) as cannot:
                ctx.socket(kind).send(b"first", lib.SNDMORE)
            assert cannot.value.errno == lib.ENOTSUP
        router = ctx.socket(lib.ROUTER)
        router.setsockopt(lib.ROUTER_MANDATORY, 1)
        router.bind("tcp://127.0.0.1:0")
        with pytest.raises(lib.ZMQError) as nobody:
            router.send(b"nobody", lib.SNDMORE)
        assert nobody.value.errno == lib.EHOSTUNREACH
        router.send(b"alone")  # a lone frame names a peer and carries nothing: dropped

        dealer = ctx.socket(lib.DEALER)
        dealer.setsockopt(lib.ROUTING_ID, b"leaves")
        dealer.connect(router.getsockopt(lib.LAST_ENDPOINT).decode())
        dealer.send(b"here")
        assert router.poll(10_000) and router.recv_multipart() == [b"leaves", b"here"]
        events = router.get_monitor_socket(lib.EVENT_DISCONNECTED)
        router.send(b"leaves", lib.SNDMORE)
        dealer.close(linger=0)
        assert events.poll(10_000), "the router never saw its peer leave"
        monitor = importlib.import_module(f"{lib.__name__}.utils.monitor")
        assert monitor.recv_monitor_message(events)["event"] == lib.EVENT_DISCONNECTED
        router.send(b"last")  # its peer left after its first frame: dropped, no error
    finally:
        if lib is engine:
            ctx.destroy(linger=0)
        else:
            _destroy_despite_libzmq_hang(ctx)


#: How long libzmq's context is given to end before the test leaves it to its thread.
LIBZMQ_TERM_WAIT_S = 10.0


def _destroy_despite_libzmq_hang(ctx: Any) -> None:
    """libzmq 4.3.5's term can wait for ever after a ROUTER completed a message whose peer
    left after its first frame: called in the test's own thread, as the other tests do, it
    hung in each of three loops of 300-600 runs of this test (a CI run's 60 s timeout caught
    it once), and in none of 600 without the last frame. From a thread of its own it has not
    hung here (3,800 runs); should it, every check above has run, the sockets are closed, and
    the thread is left to it after LIBZMQ_TERM_WAIT_S rather than hang the suite."""
    ender = threading.Thread(target=ctx.destroy, kwargs={"linger": 0}, daemon=True)
    ender.start()
    ender.join(LIBZMQ_TERM_WAIT_S)


@LIBS
# (pyzmq warns that its socket_type is deprecated when the mock reads every attribute)
@pytest.mark.filterwarnings("ignore:Socket.socket_type is deprecated:DeprecationWarning")
def test_an_option_that_cannot_be_read_is_no_attribute_to_read(lib: Any) -> None:
    """As pyzmq: reading a write-only option as an attribute is an AttributeError, so
    getattr with a default and mock.Mock(spec=sock), which reads every name dir() lists, work
    (the engine's EINVAL broke both); getsockopt still says EINVAL."""
    from unittest import mock

    ctx = lib.Context()
    try:
        sub = ctx.socket(lib.SUB)
        assert getattr(sub, "SUBSCRIBE", "unreadable") == "unreadable"
        with pytest.raises(lib.ZMQError) as refused:
            sub.getsockopt(lib.SUBSCRIBE)
        assert refused.value.errno == errno.EINVAL
        double = mock.Mock(spec=sub)
        double.send(b"x")
        double.send.assert_called_once_with(b"x")
    finally:
        ctx.destroy(linger=0)
