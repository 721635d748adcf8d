"""ZeroMQ constants under their pyzmq names, with libzmq's numeric values.

The numbers match libzmq so that code passing raw integers (as Guide examples do) behaves the same.
"""

from __future__ import annotations

import errno as _errno
from enum import IntEnum, IntFlag

# -- socket types -----------------------------------------------------------------------------


class SocketType(IntEnum):
    PAIR = 0
    PUB = 1
    SUB = 2
    REQ = 3
    REP = 4
    DEALER = 5
    ROUTER = 6
    PULL = 7
    PUSH = 8
    XPUB = 9
    XSUB = 10
    STREAM = 11  # raw bytes over tcp/ipc, no ZMTP: one routing id per connection
    # libzmq's draft socket types (thread-safe, single-frame; DGRAM is raw UDP).
    SERVER = 12
    CLIENT = 13
    RADIO = 14
    DISH = 15
    GATHER = 16
    SCATTER = 17
    DGRAM = 18
    PEER = 19
    CHANNEL = 20


PAIR, PUB, SUB, REQ, REP, DEALER, ROUTER, PULL, PUSH, XPUB, XSUB, STREAM = tuple(SocketType)[:12]
SERVER, CLIENT, RADIO, DISH, GATHER, SCATTER, DGRAM, PEER, CHANNEL = tuple(SocketType)[12:]
XREQ = DEALER
XREP = ROUTER

# The type names exactly as they travel in the READY command's Socket-Type property.
SOCKET_TYPE_NAMES: dict[int, bytes] = {t.value: t.name.encode() for t in SocketType}

# Which peer types each type may talk to (ZeroMQ RFC 37, "The Socket-Type Property").
COMPATIBLE_PEERS: dict[int, frozenset[int]] = {
    REQ: frozenset({REP, ROUTER}),
    REP: frozenset({REQ, DEALER}),
    DEALER: frozenset({REP, DEALER, ROUTER}),
    ROUTER: frozenset({REQ, DEALER, ROUTER}),
    PUB: frozenset({SUB, XSUB}),
    XPUB: frozenset({SUB, XSUB}),
    SUB: frozenset({PUB, XPUB}),
    XSUB: frozenset({PUB, XPUB}),
    PUSH: frozenset({PULL}),
    PULL: frozenset({PUSH}),
    PAIR: frozenset({PAIR}),
    SERVER: frozenset({CLIENT}),
    CLIENT: frozenset({SERVER}),
    RADIO: frozenset({DISH}),
    DISH: frozenset({RADIO}),
    GATHER: frozenset({SCATTER}),
    SCATTER: frozenset({GATHER}),
    PEER: frozenset({PEER}),
    CHANNEL: frozenset({CHANNEL}),
    DGRAM: frozenset(),
    STREAM: frozenset(),  # speaks no ZMTP: its peers are plain tcp/ipc programs
}

# -- socket options ---------------------------------------------------------------------------


class SocketOption(IntEnum):
    HWM = 1  # pyzmq's pseudo-option (libzmq 2's number): sets SNDHWM and RCVHWM together
    AFFINITY = 4
    ROUTING_ID = 5
    SUBSCRIBE = 6
    UNSUBSCRIBE = 7
    RATE = 8
    RECOVERY_IVL = 9
    SNDBUF = 11
    RCVBUF = 12
    RCVMORE = 13
    FD = 14
    EVENTS = 15
    TYPE = 16
    LINGER = 17
    RECONNECT_IVL = 18
    BACKLOG = 19
    RECONNECT_IVL_MAX = 21
    MAXMSGSIZE = 22
    SNDHWM = 23
    RCVHWM = 24
    MULTICAST_HOPS = 25
    RCVTIMEO = 27
    SNDTIMEO = 28
    LAST_ENDPOINT = 32
    ROUTER_MANDATORY = 33
    TCP_KEEPALIVE = 34
    TCP_KEEPALIVE_CNT = 35
    TCP_KEEPALIVE_IDLE = 36
    TCP_KEEPALIVE_INTVL = 37
    TCP_ACCEPT_FILTER = 38  # adds a rule "address[/bits]": only peers it admits are accepted
    IMMEDIATE = 39
    XPUB_VERBOSE = 40
    ROUTER_RAW = 41
    IPV6 = 42
    MECHANISM = 43
    PLAIN_SERVER = 44
    PLAIN_USERNAME = 45
    PLAIN_PASSWORD = 46
    CURVE_SERVER = 47
    CURVE_PUBLICKEY = 48
    CURVE_SECRETKEY = 49
    CURVE_SERVERKEY = 50
    ZAP_DOMAIN = 55
    ROUTER_HANDOVER = 56
    TOS = 57
    IPC_FILTER_PID = 58  # adds a process id an ipc listener accepts (SO_PEERCRED)
    IPC_FILTER_UID = 59  # adds a user id an ipc listener accepts
    IPC_FILTER_GID = 60  # adds a group id an ipc listener accepts (primary or member)
    CONNECT_ROUTING_ID = 61
    HANDSHAKE_IVL = 66
    XPUB_NODROP = 69
    BLOCKY = 70
    XPUB_MANUAL = 71
    XPUB_WELCOME_MSG = 72
    STREAM_NOTIFY = 73
    INVERT_MATCHING = 74
    HEARTBEAT_IVL = 75
    HEARTBEAT_TTL = 76
    HEARTBEAT_TIMEOUT = 77
    XPUB_VERBOSER = 78
    CONNECT_TIMEOUT = 79
    TCP_MAXRT = 80  # TCP_USER_TIMEOUT, ms, on each tcp connection (0: the kernel's)
    MULTICAST_MAXTPDU = 84
    USE_FD = 89  # bind() listens on this already bound descriptor (systemd socket activation)
    BINDTODEVICE = 92  # SO_BINDTODEVICE on tcp sockets: an interface's name, 1-16 bytes
    LOOPBACK_FASTPATH = 94  # Windows' loopback fast path: kept and answered, no effect here
    METADATA = 95  # adds a property "X-Name:value" to what the handshake tells each peer
    RECONNECT_STOP = 109  # ReconnectStop flags: when a connecting socket stops redialling
    TOPICS_COUNT = 116  # read-only, PUB/SUB types: distinct topics subscribed
    ZAP_ENFORCE_DOMAIN = 93
    MULTICAST_LOOP = 96
    CONFLATE = 54
    PROBE_ROUTER = 51
    IPV4ONLY = 31  # libzmq's older, inverted IPV6 (IPV4ONLY 0 is IPV6 1)
    THREAD_SAFE = 81  # read-only: 1 on the thread-safe draft types
    REQ_CORRELATE = 52
    REQ_RELAXED = 53


globals().update({o.name: o.value for o in SocketOption})


class EngineOption(IntEnum):
    """Socket options of this engine only (libzmq has none like them), numbered far above
    libzmq's: limits for sockets that bind where anybody can connect. 0 means no limit."""

    MAX_CONNECTIONS = 10001  # connections a bound endpoint holds at once; more are closed
    MAX_SUBSCRIPTIONS = 10002  # XPUB/PUB: distinct subscriptions kept per peer; more ignored


MAX_CONNECTIONS = EngineOption.MAX_CONNECTIONS.value
MAX_SUBSCRIPTIONS = EngineOption.MAX_SUBSCRIPTIONS.value
IDENTITY = ROUTING_ID  # noqa: F821 - defined just above through globals()
CONNECT_RID = CONNECT_ROUTING_ID  # noqa: F821
DELAY_ATTACH_ON_CONNECT = IMMEDIATE  # noqa: F821 - libzmq's older name, the same number
FAIL_UNROUTABLE = ROUTER_BEHAVIOR = ROUTER_MANDATORY  # noqa: F821 - the same, ROUTER_MANDATORY's


class ContextOption(IntEnum):
    IO_THREADS = 1
    MAX_SOCKETS = 2
    SOCKET_LIMIT = 3
    MAX_MSGSZ = 5
    MSG_T_SIZE = 6
    BLOCKY = 70


IO_THREADS = ContextOption.IO_THREADS.value
MAX_SOCKETS = ContextOption.MAX_SOCKETS.value
SOCKET_LIMIT = ContextOption.SOCKET_LIMIT.value
MAX_MSGSZ = ContextOption.MAX_MSGSZ.value
MSG_T_SIZE = ContextOption.MSG_T_SIZE.value

# -- send/recv flags and poll events ----------------------------------------------------------


class Flag(IntFlag):
    DONTWAIT = 1
    NOBLOCK = 1
    SNDMORE = 2


class ReconnectStop(IntEnum):
    """RECONNECT_STOP's bits (libzmq 4.3.5 answers the option); an IntEnum, as pyzmq's is, so
    two of them OR'ed are a plain int."""

    CONN_REFUSED = 1  # no redial after a refused connection
    HANDSHAKE_FAILED = 2  # none after a connection lost before its handshake completed
    AFTER_DISCONNECT = 4  # none once disconnect() was called: the engine never redials then


class PollEvent(IntFlag):
    POLLIN = 1
    POLLOUT = 2
    POLLERR = 4
    POLLPRI = 8


class MessageOption(IntEnum):
    """Message properties (zmq_msg_get): MORE is what the engine's Frame.get answers."""

    MORE = 1
    SRCFD = 2
    SHARED = 3


DONTWAIT = NOBLOCK = Flag.DONTWAIT.value
SNDMORE = Flag.SNDMORE.value
POLLIN, POLLOUT, POLLERR, POLLPRI = (e.value for e in PollEvent)
globals().update({f"RECONNECT_STOP_{e.name}": e for e in ReconnectStop})
#: A message property (zmq_msg_get): whether more frames follow (pyzmq's Frame.get(MORE)).
MORE = MessageOption.MORE.value
SRCFD, SHARED = MessageOption.SRCFD.value, MessageOption.SHARED.value  # Frame.get answers both

#: The longest ipc:// path a unix socket address holds here (sun_path, less its final NUL).
IPC_PATH_MAX_LEN = 107

#: pyzmq's size above which send(copy=False) avoids copying; the engine always hands the bytes
#: over as they are, so it only informs code that reads it.
COPY_THRESHOLD = 65536

# -- device types (zmq_device: every type forwards both ways, as zmq_proxy) ---------------------


class DeviceType(IntEnum):
    STREAMER = 1
    FORWARDER = 2
    QUEUE = 3


STREAMER, FORWARDER, QUEUE = (d.value for d in DeviceType)

# -- socket monitor events --------------------------------------------------------------------


class Event(IntFlag):
    """A flag class, as pyzmq's is: a monitor's mask is an OR of them."""

    CONNECTED = 0x0001
    CONNECT_DELAYED = 0x0002
    CONNECT_RETRIED = 0x0004
    LISTENING = 0x0008
    BIND_FAILED = 0x0010
    ACCEPTED = 0x0020
    ACCEPT_FAILED = 0x0040
    CLOSED = 0x0080
    CLOSE_FAILED = 0x0100
    DISCONNECTED = 0x0200
    MONITOR_STOPPED = 0x0400
    HANDSHAKE_FAILED_NO_DETAIL = 0x0800
    HANDSHAKE_SUCCEEDED = 0x1000
    HANDSHAKE_FAILED_PROTOCOL = 0x2000
    HANDSHAKE_FAILED_AUTH = 0x4000
    ALL = 0xFFFF
    PIPES_STATS = 0x10000
    # pyzmq lists these two here too; they are HANDSHAKE_FAILED_PROTOCOL values, not events.
    PROTOCOL_ERROR_ZMTP_UNSPECIFIED = 0x10000000
    PROTOCOL_ERROR_ZAP_UNSPECIFIED = 0x20000000


# By __members__: iterating a flag class skips its multi-bit members (ALL).
globals().update(
    {
        f"EVENT_{name}": e.value
        for name, e in Event.__members__.items()
        if not name.startswith("PROTOCOL")
    }
)
EVENT_ALL_V1 = Event.ALL.value
EVENT_ALL_V2 = EVENT_ALL_V1 | Event.PIPES_STATS

# -- security mechanisms and handshake failure details ----------------------------------------


class Mechanism(IntEnum):
    """The MECHANISM option's values: which ZMTP security mechanism a socket speaks."""

    NULL = 0
    PLAIN = 1
    CURVE = 2
    GSSAPI = 3


NULL, PLAIN, CURVE, GSSAPI = (m.value for m in Mechanism)
SecurityMechanism = Mechanism  # pyzmq's name for it


class ProtocolErrorCode(IntEnum):
    """The value of a HANDSHAKE_FAILED_PROTOCOL monitor event: what the peer got wrong."""

    ZMTP_UNSPECIFIED = 0x10000000
    ZMTP_UNEXPECTED_COMMAND = 0x10000001
    ZMTP_INVALID_SEQUENCE = 0x10000002
    ZMTP_KEY_EXCHANGE = 0x10000003
    ZMTP_MALFORMED_COMMAND_UNSPECIFIED = 0x10000011
    ZMTP_MALFORMED_COMMAND_MESSAGE = 0x10000012
    ZMTP_MALFORMED_COMMAND_HELLO = 0x10000013
    ZMTP_MALFORMED_COMMAND_INITIATE = 0x10000014
    ZMTP_MALFORMED_COMMAND_ERROR = 0x10000015
    ZMTP_MALFORMED_COMMAND_READY = 0x10000016
    ZMTP_MALFORMED_COMMAND_WELCOME = 0x10000017
    ZMTP_INVALID_METADATA = 0x10000018
    ZMTP_CRYPTOGRAPHIC = 0x11000001
    ZMTP_MECHANISM_MISMATCH = 0x11000002
    ZAP_UNSPECIFIED = 0x20000000
    ZAP_MALFORMED_REPLY = 0x20000001
    ZAP_BAD_REQUEST_ID = 0x20000002
    ZAP_BAD_VERSION = 0x20000003
    ZAP_INVALID_STATUS_CODE = 0x20000004
    ZAP_INVALID_METADATA = 0x20000005
    WS_UNSPECIFIED = 0x30000000


globals().update({f"PROTOCOL_ERROR_{e.name}": e.value for e in ProtocolErrorCode})

# -- error numbers ----------------------------------------------------------------------------

ZMQ_HAUSNUMERO = 156384712
EAGAIN = _errno.EAGAIN
EINVAL = _errno.EINVAL
EFAULT = _errno.EFAULT
ENOMEM = _errno.ENOMEM
ENODEV = _errno.ENODEV
EINTR = _errno.EINTR
EADDRINUSE = _errno.EADDRINUSE
EADDRNOTAVAIL = _errno.EADDRNOTAVAIL
ECONNREFUSED = _errno.ECONNREFUSED
EHOSTUNREACH = _errno.EHOSTUNREACH
ENOTSOCK = _errno.ENOTSOCK
EMSGSIZE = _errno.EMSGSIZE
ENOTSUP = _errno.ENOTSUP
EPROTONOSUPPORT = _errno.EPROTONOSUPPORT
ENOENT = _errno.ENOENT
ENOTCONN = _errno.ENOTCONN
ETIMEDOUT = _errno.ETIMEDOUT
ECONNRESET = _errno.ECONNRESET
ECONNABORTED = _errno.ECONNABORTED
ENETDOWN = _errno.ENETDOWN
ENOBUFS = _errno.ENOBUFS
EPERM = _errno.EPERM  # pgm:// without CAP_NET_RAW
EINPROGRESS = _errno.EINPROGRESS
EAFNOSUPPORT = _errno.EAFNOSUPPORT
ENETUNREACH = _errno.ENETUNREACH
ENETRESET = _errno.ENETRESET
EFSM = ZMQ_HAUSNUMERO + 51
ENOCOMPATPROTO = ZMQ_HAUSNUMERO + 52
ETERM = ZMQ_HAUSNUMERO + 53
EMTHREAD = ZMQ_HAUSNUMERO + 54


class Errno(IntEnum):
    """The error numbers libzmq reports, as pyzmq's enum (ZMQError.errno stays a plain int,
    equal to these)."""

    EAGAIN = EAGAIN
    EFAULT = EFAULT
    EINVAL = EINVAL
    ENOTSUP = ENOTSUP
    EPROTONOSUPPORT = EPROTONOSUPPORT
    ENOBUFS = ENOBUFS
    ENETDOWN = ENETDOWN
    EADDRINUSE = EADDRINUSE
    EADDRNOTAVAIL = EADDRNOTAVAIL
    ECONNREFUSED = ECONNREFUSED
    EINPROGRESS = EINPROGRESS
    ENOTSOCK = ENOTSOCK
    EMSGSIZE = EMSGSIZE
    EAFNOSUPPORT = EAFNOSUPPORT
    ENETUNREACH = ENETUNREACH
    ECONNABORTED = ECONNABORTED
    ECONNRESET = ECONNRESET
    ENOTCONN = ENOTCONN
    ETIMEDOUT = ETIMEDOUT
    EHOSTUNREACH = EHOSTUNREACH
    ENETRESET = ENETRESET
    EFSM = EFSM
    ENOCOMPATPROTO = ENOCOMPATPROTO
    ETERM = ETERM
    EMTHREAD = EMTHREAD


# -- version ----------------------------------------------------------------------------------

VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH = 4, 3, 5
VERSION = VERSION_MAJOR * 10000 + VERSION_MINOR * 100 + VERSION_PATCH

#: Every public name above, for `from engine.constants import *` and the package's own
#: `__all__`, so that `from engine import *` brings the constants, as `from zmq import *` does
#: (IntEnum and IntFlag too: pyzmq's top level has them).
__all__ = [name for name in list(globals()) if not name.startswith("_") and name != "annotations"]
