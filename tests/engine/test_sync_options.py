"""Socket options, attribute options, constants and errors, compared with real pyzmq.

`import engine as zmq` must offer pyzmq's names with libzmq's values, so code that passes the
constants (or raw numbers, as Guide examples do) behaves the same with either library.
"""

from __future__ import annotations

import pytest
import zmq as pyzmq
from enginekit import same_verdict_as_libzmq

import engine as zmq

pytestmark = pytest.mark.timeout(30)


# -- constants ------------------------------------------------------------------------------------

SOCKET_TYPES = [
    "PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB", "STREAM",
    "XREQ", "XREP",
    # the draft types
    "SERVER", "CLIENT", "RADIO", "DISH", "GATHER", "SCATTER", "DGRAM", "PEER", "CHANNEL",
]  # fmt: skip
FLAGS = ["DONTWAIT", "NOBLOCK", "SNDMORE", "RCVMORE", "POLLIN", "POLLOUT", "POLLERR", "POLLPRI"]
EVENTS = [
    "EVENT_CONNECTED", "EVENT_CONNECT_DELAYED", "EVENT_CONNECT_RETRIED", "EVENT_LISTENING",
    "EVENT_BIND_FAILED", "EVENT_ACCEPTED", "EVENT_ACCEPT_FAILED", "EVENT_CLOSED",
    "EVENT_CLOSE_FAILED", "EVENT_DISCONNECTED", "EVENT_MONITOR_STOPPED",
    "EVENT_HANDSHAKE_FAILED_NO_DETAIL", "EVENT_HANDSHAKE_SUCCEEDED",
    "EVENT_HANDSHAKE_FAILED_PROTOCOL", "EVENT_HANDSHAKE_FAILED_AUTH", "EVENT_ALL",
]  # fmt: skip
ERRNOS = [
    "EAGAIN", "EINVAL", "EFAULT", "EADDRINUSE", "EADDRNOTAVAIL", "ECONNREFUSED", "EHOSTUNREACH",
    "ENOTSOCK", "EMSGSIZE", "ENOTSUP", "EPROTONOSUPPORT", "EFSM", "ENOCOMPATPROTO", "ETERM",
    "EMTHREAD",
]  # fmt: skip
CONTEXT_OPTIONS = ["IO_THREADS", "MAX_SOCKETS", "SOCKET_LIMIT", "BLOCKY"]
#: Every socket option the engine implements, by its pyzmq name (aliases included).
SOCKET_OPTIONS = [o.name for o in zmq.SocketOption] + ["IDENTITY", "CONNECT_RID"]


@pytest.mark.parametrize(
    "name", SOCKET_TYPES + FLAGS + EVENTS + ERRNOS + CONTEXT_OPTIONS + SOCKET_OPTIONS
)
def test_constant_exists_with_pyzmqs_value(name: str) -> None:
    """`zmq.<name>` exists and equals pyzmq's value."""
    assert hasattr(pyzmq, name), f"test list error: pyzmq has no {name}"
    assert hasattr(zmq, name), f"engine lacks zmq.{name}"
    assert int(getattr(zmq, name)) == int(getattr(pyzmq, name))


def test_hwm_pseudo_option_has_pyzmqs_value() -> None:
    """pyzmq's HWM pseudo-option has the same number."""
    assert zmq.HWM == pyzmq.HWM


def test_socket_type_enum_matches_pyzmq() -> None:
    """zmq.SocketType has pyzmq's members and values."""
    assert {t.name: t.value for t in zmq.SocketType} == {
        t.name: t.value for t in pyzmq.SocketType if t.name in SOCKET_TYPES
    }


def test_errors_shaped_like_pyzmq() -> None:
    """The exception hierarchy, errno and strerror follow pyzmq."""
    assert issubclass(zmq.Again, zmq.ZMQError)
    assert issubclass(zmq.ContextTerminated, zmq.ZMQError)
    assert issubclass(zmq.ZMQError, zmq.ZMQBaseError)
    err = zmq.ZMQError(zmq.EFSM)
    assert err.errno == zmq.EFSM
    assert str(err) == pyzmq.strerror(pyzmq.EFSM) == err.strerror
    assert zmq.ContextTerminated().errno == zmq.ETERM
    assert zmq.Again().errno == zmq.EAGAIN


def test_version_functions() -> None:
    """zmq_version(), zmq_version_info() and has() exist."""
    assert zmq.zmq_version_info()[0] == 4
    assert zmq.zmq_version() == ".".join(map(str, zmq.zmq_version_info()))
    assert zmq.has("ipc") and zmq.has("pgm") and zmq.has("draft") and zmq.DRAFT_API
    assert not zmq.has("norm")


# -- setsockopt / getsockopt ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("LINGER", 0),
        ("LINGER", 250),
        ("SNDHWM", 5),
        ("RCVHWM", 7),
        ("RCVTIMEO", 123),
        ("SNDTIMEO", 456),
        ("RECONNECT_IVL", 50),
        ("RECONNECT_IVL_MAX", 500),
        ("BACKLOG", 10),
        ("MAXMSGSIZE", 1 << 20),
        ("IMMEDIATE", 1),
        ("TCP_KEEPALIVE", 1),
        ("HEARTBEAT_IVL", 1000),
        ("HANDSHAKE_IVL", 2000),
        ("SNDBUF", 65536),
        ("CONFLATE", 1),
    ],
)
def test_int_option_roundtrip(ctx: zmq.Context, option: str, value: int) -> None:
    """An integer option reads back as set (setsockopt, set, attribute)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(getattr(zmq, option), value)
    assert sock.getsockopt(getattr(zmq, option)) == value
    sock.set(getattr(zmq, option), value)
    assert sock.get(getattr(zmq, option)) == value
    assert getattr(sock, option.lower()) == value


def test_defaults_match_pyzmq(ctx: zmq.Context) -> None:
    """A fresh engine socket reports libzmq's defaults."""
    theirs_ctx = pyzmq.Context()
    try:
        for kind in (zmq.DEALER, zmq.SUB, zmq.ROUTER):
            ours, theirs = ctx.socket(kind), theirs_ctx.socket(kind)
            for name in ("SNDHWM", "RCVHWM", "RCVTIMEO", "SNDTIMEO", "RECONNECT_IVL", "BACKLOG"):
                assert ours.getsockopt(getattr(zmq, name)) == theirs.getsockopt(
                    getattr(pyzmq, name)
                ), name
            assert ours.getsockopt(zmq.TYPE) == theirs.getsockopt(pyzmq.TYPE) == kind
            assert ours.getsockopt(zmq.RCVMORE) == theirs.getsockopt(pyzmq.RCVMORE) == 0
            assert ours.getsockopt(zmq.LAST_ENDPOINT) == theirs.getsockopt(pyzmq.LAST_ENDPOINT)
            theirs.close(linger=0)
    finally:
        theirs_ctx.destroy(linger=0)


#: Socket types on which an option is libzmq's to judge (elsewhere libzmq refuses it whatever
#: the value, for its socket type, which is not what this compares).
OPTION_SOCKET = {"ROUTER_MANDATORY": "ROUTER", "ROUTER_HANDOVER": "ROUTER", "ROUTER_RAW": "ROUTER"}
OPTION_SOCKET |= {"XPUB_VERBOSE": "XPUB", "XPUB_VERBOSER": "XPUB", "XPUB_NODROP": "XPUB"}
OPTION_SOCKET |= {"REQ_RELAXED": "REQ", "REQ_CORRELATE": "REQ", "INVERT_MATCHING": "PUB"}
#: Around every bound libzmq has: -1 and 0 (infinite, off), 1 (booleans), 65,535 and the
#: HEARTBEAT_TTL edges (its 16-bit deciseconds), a large value.
PROBE_VALUES = [-200, -100, -99, -2, -1, 0, 1, 2, 65535, 6553599, 6553600, 1 << 30]
INT_OPTIONS = [
    "SNDHWM", "RCVHWM", "LINGER", "RCVTIMEO", "SNDTIMEO", "RECONNECT_IVL", "RECONNECT_IVL_MAX",
    "BACKLOG", "MAXMSGSIZE", "ROUTER_MANDATORY", "ROUTER_HANDOVER", "ROUTER_RAW", "IMMEDIATE",
    "CONFLATE", "XPUB_VERBOSE", "XPUB_VERBOSER", "XPUB_NODROP", "INVERT_MATCHING", "REQ_RELAXED",
    "REQ_CORRELATE", "HEARTBEAT_IVL", "HEARTBEAT_TTL", "HEARTBEAT_TIMEOUT", "HANDSHAKE_IVL",
    "CONNECT_TIMEOUT", "IPV6", "TCP_KEEPALIVE", "TCP_KEEPALIVE_CNT", "TCP_KEEPALIVE_IDLE",
    "TCP_KEEPALIVE_INTVL", "SNDBUF", "RCVBUF", "TOS", "RATE", "RECOVERY_IVL", "MULTICAST_HOPS",
    "MULTICAST_MAXTPDU", "MULTICAST_LOOP", "TCP_MAXRT", "LOOPBACK_FASTPATH",
]  # fmt: skip


@pytest.mark.parametrize("option", INT_OPTIONS)
def test_int_option_ranges_match_libzmq(ctx: zmq.Context, option: str) -> None:
    """Each value is taken by the engine exactly when libzmq takes it (EINVAL otherwise), so
    a mistaken setting fails at setsockopt in both, not later in one."""
    kind = OPTION_SOCKET.get(option, "DEALER")
    theirs_ctx = pyzmq.Context()
    try:
        ours, theirs = ctx.socket(getattr(zmq, kind)), theirs_ctx.socket(getattr(pyzmq, kind))
        for value in PROBE_VALUES:
            same_verdict_as_libzmq(
                f"{option} = {value}",
                lambda v=value: theirs.setsockopt(getattr(pyzmq, option), v),
                lambda v=value: ours.setsockopt(getattr(zmq, option), v),
            )
        theirs.close(linger=0)
    finally:
        theirs_ctx.destroy(linger=0)


CLASSIC_TYPES = ["PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB"]
CLASSIC_TYPES += ["XSUB"]
TYPE_OPTIONS = ["ROUTER_MANDATORY", "ROUTER_HANDOVER", "ROUTER_RAW", "XPUB_VERBOSE"]
TYPE_OPTIONS += ["XPUB_VERBOSER", "XPUB_NODROP", "XPUB_WELCOME_MSG", "REQ_RELAXED", "REQ_CORRELATE"]


@pytest.mark.parametrize("option", TYPE_OPTIONS)
def test_type_options_are_taken_by_the_socket_types_libzmq_takes_them_on(
    ctx: zmq.Context, option: str
) -> None:
    """ROUTER_MANDATORY on a DEALER, say: EINVAL in libzmq, and it used to be kept here."""
    value: int | bytes = b"hi" if option == "XPUB_WELCOME_MSG" else 1
    theirs_ctx = pyzmq.Context()
    try:
        for kind in CLASSIC_TYPES:
            theirs = theirs_ctx.socket(getattr(pyzmq, kind))
            ours = ctx.socket(getattr(zmq, kind))
            same_verdict_as_libzmq(
                f"{option} on {kind}",
                lambda s=theirs: s.setsockopt(getattr(pyzmq, option), value),
                lambda s=ours: s.setsockopt(getattr(zmq, option), value),
            )
            theirs.close(linger=0)
            ours.close(linger=0)
    finally:
        theirs_ctx.destroy(linger=0)


def test_a_context_default_a_socket_type_lacks_is_skipped_as_in_pyzmq() -> None:
    ctx = zmq.Context()
    try:
        ctx.setsockopt(zmq.ROUTER_MANDATORY, 1)
        ctx.setsockopt(zmq.SUBSCRIBE, b"")
        with pytest.raises(zmq.ZMQError) as info:  # ROUTER_MANDATORY (write-only) applies
            ctx.socket(zmq.ROUTER).send_multipart([b"nobody", b"x"])
        assert info.value.errno == zmq.EHOSTUNREACH
        ctx.socket(zmq.DEALER).close(linger=0)  # neither applies: skipped, not an error
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("option", ["IO_THREADS", "MAX_SOCKETS", "BLOCKY"])
def test_context_option_ranges_match_libzmq(option: str) -> None:
    for value in (-2, -1, 0, 1, 2, 100_000):
        theirs, ours = pyzmq.Context(), zmq.Context()
        try:
            same_verdict_as_libzmq(
                f"{option} = {value}",
                lambda c=theirs, v=value: c.set(getattr(pyzmq, option), v),
                lambda c=ours, v=value: c.set(getattr(zmq, option), v),
            )
        finally:
            theirs.destroy(linger=0)
            ours.destroy(linger=0)


def test_many_io_threads_are_made_only_as_sockets_need_them() -> None:
    """IO_THREADS 100,000 used to make every thread's selector at once: out of descriptors,
    a traceback, and the ones made so far never closed."""
    ctx = zmq.Context()
    try:
        ctx.set(zmq.IO_THREADS, 100_000)
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        b.bind("tcp://127.0.0.1:0")
        a.connect(b.last_endpoint)
        a.send(b"hi")
        assert b.recv() == b"hi"
        assert len(ctx._threads) == 2  # one per socket so far, round robin
        ctx.set(zmq.IO_THREADS, 1)  # once sockets exist, reported and changing nothing (libzmq)
        assert ctx.get(zmq.IO_THREADS) == 1
        c = ctx.socket(zmq.PAIR)
        c.connect(b.last_endpoint)
        assert len(ctx._threads) == 3
    finally:
        ctx.destroy(linger=0)


def test_string_options(ctx: zmq.Context) -> None:
    """setsockopt_string/getsockopt_string with encodings; str where bytes belong is TypeError."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt_string(zmq.IDENTITY, "spieler-ä")
    assert sock.getsockopt_string(zmq.IDENTITY) == "spieler-ä"
    assert sock.getsockopt(zmq.ROUTING_ID) == "spieler-ä".encode()
    sock.setsockopt_string(zmq.IDENTITY, "ñ", encoding="latin-1")
    assert sock.getsockopt(zmq.IDENTITY) == b"\xf1"
    assert sock.getsockopt_string(zmq.IDENTITY, encoding="latin-1") == "ñ"
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt_string(zmq.SUBSCRIBE, "topic")
    sub.setsockopt_string(zmq.UNSUBSCRIBE, "topic")
    with pytest.raises(TypeError):
        sub.setsockopt(zmq.SUBSCRIBE, "str needs setsockopt_string")
    with pytest.raises(TypeError):
        sock.getsockopt_string(zmq.LINGER)  # not a string option


def test_attribute_options(ctx: zmq.Context) -> None:
    """sock.linger, sock.identity, sock.sndhwm, sock.hwm, sock.rcvtimeo as pyzmq has them."""
    sock = ctx.socket(zmq.DEALER)
    assert sock.linger == -1
    sock.linger = 0
    assert sock.getsockopt(zmq.LINGER) == 0
    sock.identity = b"id-1"
    assert sock.identity == b"id-1" == sock.getsockopt(zmq.IDENTITY)
    sock.identity = "id-2"  # pyzmq encodes str for bytes options set as attributes
    assert sock.identity == b"id-2"
    sock.sndhwm = 11
    assert sock.getsockopt(zmq.SNDHWM) == 11
    sock.hwm = 42
    assert (sock.sndhwm, sock.rcvhwm, sock.hwm) == (42, 42, 42)
    sock.rcvtimeo = 5
    assert sock.getsockopt(zmq.RCVTIMEO) == 5
    with pytest.raises(zmq.Again):
        sock.recv()
    assert sock.type == zmq.DEALER == sock.socket_type
    with pytest.raises(AttributeError):
        _ = sock.no_such_option


def test_socket_kwargs_set_options(ctx: zmq.Context) -> None:
    """ctx.socket(type, **options) sets options by attribute name."""
    sock = ctx.socket(zmq.PUSH, linger=0, sndhwm=3)
    assert (sock.linger, sock.sndhwm) == (0, 3)


def test_bad_options_raise_einval(ctx: zmq.Context) -> None:
    """Unknown, read-only and wrong-type options raise EINVAL."""
    sock = ctx.socket(zmq.DEALER)
    with pytest.raises(zmq.ZMQError) as info:
        sock.setsockopt(9999, 1)
    assert info.value.errno == zmq.EINVAL
    with pytest.raises(zmq.ZMQError) as info:
        sock.setsockopt(zmq.TYPE, zmq.PUB)  # read-only
    assert info.value.errno == zmq.EINVAL
    with pytest.raises(zmq.ZMQError) as info:
        sock.setsockopt(zmq.SUBSCRIBE, b"x")  # only SUB/XSUB subscribe
    assert info.value.errno == zmq.EINVAL


def test_raw_numbers_work_like_constants(ctx: zmq.Context) -> None:
    """Guide code sometimes passes libzmq's numbers: 17 is LINGER, 3 is REQ."""
    sock = ctx.socket(3)
    assert sock.getsockopt(16) == zmq.REQ
    sock.setsockopt(17, 0)
    assert sock.linger == 0


def test_uppercase_option_attributes_work_as_in_pyzmq(ctx: zmq.Context) -> None:
    """pyzmq maps attributes to options case-insensitively (sock.LAST_ENDPOINT)."""
    sock = ctx.socket(zmq.PULL)
    endpoint = sock.bind("tcp://127.0.0.1:*")
    assert sock.last_endpoint == endpoint.encode()
    assert endpoint.encode() == sock.LAST_ENDPOINT
    sock.RCVTIMEO = 25
    assert sock.rcvtimeo == 25
