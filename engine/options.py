"""Socket options: defaults as in libzmq, validation, and get/set by option number."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from . import constants as c
from .accept_rules import AcceptNetwork, parse_tcp_rule
from .errors import ZMQError

#: A count no queue reaches: what a high-water mark of 0 ("no limit") and other absent limits
#: become, so that hot paths compare against a number instead of testing for "no limit".
UNBOUNDED = 1 << 62


def queue_limit(hwm: int) -> int:
    """What a pipe compares its queue against for a high-water mark: 0 means no limit."""
    return hwm if hwm > 0 else UNBOUNDED


@dataclass(slots=True)
class Options:
    sndhwm: int = 1000
    rcvhwm: int = 1000
    linger: int = -1
    rcvtimeo: int = -1
    sndtimeo: int = -1
    reconnect_ivl: int = 100
    reconnect_ivl_max: int = 0
    backlog: int = 100
    maxmsgsize: int = -1
    routing_id: bytes = b""
    connect_routing_id: bytes = b""
    router_mandatory: int = 0
    router_handover: int = 0
    immediate: int = 0
    conflate: int = 0
    xpub_verbose: int = 0
    xpub_verboser: int = 0
    xpub_nodrop: int = 0
    xpub_manual: int = 0
    stream_notify: int = 1
    xpub_welcome_msg: bytes = b""
    invert_matching: int = 0
    req_relaxed: int = 0
    req_correlate: int = 0
    probe_router: int = 0
    heartbeat_ivl: int = 0
    heartbeat_ttl: int = 0
    heartbeat_timeout: int = -1
    handshake_ivl: int = 30000
    connect_timeout: int = 0
    ipv6: int = 0
    tcp_keepalive: int = -1
    tcp_keepalive_cnt: int = -1
    tcp_keepalive_idle: int = -1
    tcp_keepalive_intvl: int = -1
    tcp_maxrt: int = 0
    bindtodevice: bytes = b""
    loopback_fastpath: int = 0
    reconnect_stop: int = 0
    #: METADATA: the properties the handshake adds to Socket-Type and Identity, in order.
    app_metadata: tuple[tuple[str, bytes], ...] = ()
    # Who a listener accepts (engine/accept_rules.py): each set adds a rule.
    tcp_accept_filter: tuple[AcceptNetwork, ...] = ()
    ipc_filter_uid: frozenset[int] = frozenset()
    ipc_filter_gid: frozenset[int] = frozenset()
    ipc_filter_pid: frozenset[int] = frozenset()
    use_fd: int = -1
    sndbuf: int = -1
    rcvbuf: int = -1
    tos: int = 0
    affinity: int = 0
    rate: int = 100
    recovery_ivl: int = 10000
    multicast_hops: int = 1
    multicast_maxtpdu: int = 1500
    multicast_loop: int = 1
    router_raw: int = 0
    # Engine extensions: 0 = no limit (see constants.MAX_CONNECTIONS / MAX_SUBSCRIPTIONS).
    max_connections: int = 0
    max_subscriptions: int = 0
    # Security: engine/security/options.py sets and reads these, with libzmq's side effects.
    mechanism: int = c.NULL
    as_server: int = 0
    plain_username: bytes = b""
    plain_password: bytes = b""
    curve_publickey: bytes = b""  # raw 32 bytes once set
    curve_secretkey: bytes = b""
    curve_serverkey: bytes = b""
    zap_domain: bytes = b""
    zap_enforce_domain: int = 0


def snapshot(opts: Options) -> Options:
    """A copy of `opts` as they are now: what bind() and connect() keep for their endpoint's
    connections, as libzmq does (its listener and session copy the socket's options)."""
    return replace(opts)


_FIELDS = {f.name for f in fields(Options)}
#: Options that hold bytes; every other settable option is an integer.
_BYTES_OPTIONS = {
    c.ROUTING_ID,
    c.CONNECT_ROUTING_ID,
    c.XPUB_WELCOME_MSG,
    c.PLAIN_USERNAME,
    c.PLAIN_PASSWORD,
    c.CURVE_PUBLICKEY,
    c.CURVE_SECRETKEY,
    c.CURVE_SERVERKEY,
    c.ZAP_DOMAIN,
    c.BINDTODEVICE,
    c.TCP_ACCEPT_FILTER,
}
#: Options whose value is a byte string, as pyzmq's `bytes_sockopts`; every other one takes
#: an int.
BYTES_VALUED = frozenset({*_BYTES_OPTIONS, c.SUBSCRIBE, c.UNSUBSCRIBE, c.METADATA})


def check_value_kind(option: int, value: object) -> None:
    """TypeError for a value of the wrong kind, as pyzmq raises before libzmq sees the option
    (so before an option this socket type does not take is refused): a byte-string option
    takes `bytes` only (the engine made five zero bytes of the int 5), any other an int
    (True and False included)."""
    if option in BYTES_VALUED:
        if not isinstance(value, bytes):
            hint = " (use setsockopt_string)" if isinstance(value, str) else ""
            raise TypeError(f"{_shown_name(option)} takes bytes, not {type(value).__name__}{hint}")
    elif not isinstance(value, int):
        raise TypeError(f"{_shown_name(option)} takes an int, not {type(value).__name__}")


#: The longest BINDTODEVICE libzmq takes: Linux's IFNAMSIZ, 16 octets. A real interface's name
#: is at most 15 (the 16th is its NUL), so a 16-octet one is taken here and fails at bind.
MAX_DEVICE_NAME = 16

#: Options the socket implements itself (read-only state, or actions like SUBSCRIBE).
SOCKET_HANDLED = {
    c.SUBSCRIBE,
    c.UNSUBSCRIBE,
    c.TYPE,
    c.RCVMORE,
    c.EVENTS,
    c.FD,
    c.LAST_ENDPOINT,
    c.HWM,
    c.THREAD_SAFE,
    c.TOPICS_COUNT,
}


#: The integers libzmq 4.3 accepts for each option, (lowest, highest), None for no bound;
#: anything else is EINVAL, as there (probed against libzmq 4.3.5). An option not listed takes
#: any integer (the engine's own MAX_CONNECTIONS and MAX_SUBSCRIPTIONS: 0 or less is no
#: limit). Without these a negative HANDSHAKE_IVL, say, was kept and failed every handshake
#: at once, where libzmq refuses it at setsockopt.
_INT_RANGES: dict[int, tuple[int | None, int | None]] = {
    c.SNDHWM: (0, None),
    c.RCVHWM: (0, None),
    c.LINGER: (-1, None),
    c.RCVTIMEO: (-1, None),
    c.SNDTIMEO: (-1, None),
    c.RECONNECT_IVL: (-1, None),
    c.RECONNECT_IVL_MAX: (0, None),
    c.BACKLOG: (0, None),
    c.ROUTER_MANDATORY: (0, None),
    c.ROUTER_HANDOVER: (0, None),
    c.ROUTER_RAW: (0, None),
    c.IMMEDIATE: (0, 1),
    c.CONFLATE: (0, 1),
    c.XPUB_VERBOSE: (0, None),
    c.XPUB_VERBOSER: (0, None),
    c.XPUB_NODROP: (0, None),
    c.XPUB_MANUAL: (0, None),
    c.STREAM_NOTIFY: (0, 1),
    c.REQ_RELAXED: (0, None),
    c.REQ_CORRELATE: (0, None),
    c.PROBE_ROUTER: (0, None),
    c.HEARTBEAT_IVL: (0, None),
    # Sent in deciseconds in a 16-bit field: libzmq divides by 100 (towards zero) and checks
    # the quotient, so -99 counts as 0 and 6,553,599 as 65,535.
    c.HEARTBEAT_TTL: (-99, 65535 * 100 + 99),
    c.HEARTBEAT_TIMEOUT: (0, None),
    c.HANDSHAKE_IVL: (0, None),
    c.CONNECT_TIMEOUT: (0, None),
    c.IPV6: (0, 1),
    c.TCP_KEEPALIVE: (-1, 1),
    c.TCP_KEEPALIVE_CNT: (-1, None),
    c.TCP_KEEPALIVE_IDLE: (-1, None),
    c.TCP_KEEPALIVE_INTVL: (-1, None),
    c.TCP_MAXRT: (0, None),
    c.USE_FD: (-1, None),
    c.SNDBUF: (-1, None),
    c.RCVBUF: (-1, None),
    c.TOS: (0, None),
    c.RATE: (1, None),
    c.RECOVERY_IVL: (0, None),
    c.MULTICAST_HOPS: (1, None),
    c.MULTICAST_MAXTPDU: (1, None),
}


#: Options libzmq takes only on some of its classic socket types (EINVAL on the others,
#: whatever the value; probed against libzmq 4.3.5): REP is a ROUTER inside libzmq, PUB an
#: XPUB. The draft types are left alone (pyzmq cannot probe them; RADIO, for one, takes
#: XPUB_NODROP).
_ONLY_ON: dict[int, frozenset[int]] = {
    **dict.fromkeys(
        (c.ROUTER_MANDATORY, c.ROUTER_HANDOVER, c.ROUTER_RAW), frozenset({c.ROUTER, c.REP})
    ),
    **dict.fromkeys(
        (c.XPUB_VERBOSE, c.XPUB_VERBOSER, c.XPUB_NODROP, c.XPUB_MANUAL, c.XPUB_WELCOME_MSG),
        frozenset({c.PUB, c.XPUB}),
    ),
    **dict.fromkeys((c.REQ_RELAXED, c.REQ_CORRELATE), frozenset({c.REQ})),
    c.PROBE_ROUTER: frozenset({c.ROUTER, c.DEALER, c.REQ, c.REP}),
    c.STREAM_NOTIFY: frozenset({c.STREAM}),
    c.CONNECT_ROUTING_ID: frozenset({c.ROUTER, c.REP, c.STREAM}),
}
#: Options libzmq 4.3.5 takes and never answers (getsockopt is EINVAL): a program reads
#: them from libzmq nowhere, so the engine answers them nowhere either.
_WRITE_ONLY = frozenset(
    {
        c.PROBE_ROUTER,
        c.XPUB_MANUAL,
        c.STREAM_NOTIFY,
        c.ROUTER_MANDATORY,
        c.ROUTER_HANDOVER,
        c.ROUTER_RAW,
        c.REQ_RELAXED,
        c.REQ_CORRELATE,
        c.XPUB_VERBOSE,
        c.XPUB_VERBOSER,
        c.XPUB_NODROP,
        c.XPUB_WELCOME_MSG,
        c.CONNECT_ROUTING_ID,
        c.TCP_ACCEPT_FILTER,
        c.IPC_FILTER_UID,
        c.IPC_FILTER_GID,
        c.IPC_FILTER_PID,
    }
)
_CLASSIC_TYPES = frozenset(range(c.PAIR, c.STREAM + 1))


def check_socket_type(option: int, socket_type: int) -> None:
    """EINVAL, as libzmq, for an option this socket type does not have."""
    types = _ONLY_ON.get(option)
    if types is not None and socket_type in _CLASSIC_TYPES and socket_type not in types:
        name = option_name(option).upper()
        raise ZMQError(c.EINVAL, f"{name} is not an option of {c.SocketType(socket_type).name}")


def _check_range(option: int, name: str, value: int) -> None:
    bounds = _INT_RANGES.get(option)
    if bounds is None:
        return
    low, high = bounds
    if (low is not None and value < low) or (high is not None and value > high):
        allowed = f"{low} or more" if high is None else f"{low} to {high}"
        raise ZMQError(c.EINVAL, f"{name.upper()} takes {allowed}, not {value}")


def option_name(option: int) -> str:
    try:
        return c.SocketOption(option).name.lower()
    except ValueError:
        pass
    try:
        return c.EngineOption(option).name.lower()
    except ValueError:
        raise ZMQError(c.EINVAL, f"unknown socket option {option}") from None


def is_bytes_option(option: int) -> bool:
    return option in _BYTES_OPTIONS


def set_option(opts: Options, option: int, value: int | bytes) -> None:
    """Set one option, its value of the right kind already (the face ran check_value_kind
    first, before the checks that depend on the socket type)."""
    if isinstance(value, int) and option not in _BYTES_OPTIONS:
        # Before anything else, as pyzmq converts the value before libzmq sees the option.
        check_c_int(_shown_name(option), value, option in _INT64_OPTIONS)
    if option == c.IPV4ONLY:  # libzmq's older, inverted IPV6
        if not isinstance(value, int) or value not in (0, 1):
            raise ZMQError(c.EINVAL, f"IPV4ONLY takes 0 or 1, not {value!r}")
        opts.ipv6 = 1 - value
        return
    if option in _ADDING:
        _add_rule(opts, option, value)
        return
    name = option_name(option)
    if name not in _FIELDS:
        raise ZMQError(c.EINVAL, f"option {name.upper()} cannot be set")
    if option in _BYTES_OPTIONS:
        assert isinstance(value, bytes)  # check_value_kind, above
        # libzmq takes 1-255 bytes (empty is EINVAL there too); a CONNECT_ROUTING_ID, which
        # names a connection locally and never travels, may be longer, as there. It also
        # takes a leading zero byte, which its documentation reserves: a ROUTER's own ids
        # begin with one, so a peer that chose such an id could collide with another's. The
        # engine refuses it here and in a peer's handshake.
        if option in (c.ROUTING_ID, c.CONNECT_ROUTING_ID) and (
            not value or (option == c.ROUTING_ID and len(value) > 255) or value[:1] == b"\x00"
        ):
            raise ZMQError(
                c.EINVAL,
                "a routing id is 1-255 bytes (a CONNECT_ROUTING_ID 1 or more) and does not "
                "start with 0x00",
            )
        if option == c.BINDTODEVICE and not 0 < len(value) <= MAX_DEVICE_NAME:
            raise ZMQError(c.EINVAL, f"BINDTODEVICE takes 1-{MAX_DEVICE_NAME} bytes")
    else:
        value = int(value)  # True and False as 1 and 0 (pyzmq takes them: bool is an int)
        _check_range(option, name, value)
        if option in _RELAXED_FLAGS:  # flags, as libzmq keeps them: any other value is 1
            value = int(value != 0)
        elif option == c.HEARTBEAT_TTL:  # kept in deciseconds (towards zero), read back in ms
            value = int(value / 100) * 100
    setattr(opts, name, value)


#: Flags libzmq reads as "not 0" (any integer taken, read back as 0 or 1).
_RELAXED_FLAGS = frozenset({c.LOOPBACK_FASTPATH, c.INVERT_MATCHING, c.MULTICAST_LOOP})
#: Options pyzmq passes as a 64-bit integer; every other integer option is a C int.
_INT64_OPTIONS = frozenset({c.AFFINITY, c.MAXMSGSIZE})


def _shown_name(option: int) -> str:
    """The option's name for a message (its number if it has none)."""
    try:
        return option_name(option).upper()
    except ZMQError:
        return f"option {option}"


def check_c_int(what: str, value: int, int64: bool = False) -> None:
    """OverflowError, as pyzmq raises before libzmq sees the value, for an integer that does
    not fit the C type the option is passed as (a C int; int64_t for AFFINITY, MAXMSGSIZE):
    the engine took 2**31 for SNDHWM, where a program on libzmq fails at once."""
    bits = 63 if int64 else 31
    if not -(1 << bits) <= value < (1 << bits):
        kind = "a 64-bit integer" if int64 else "a C int"
        raise OverflowError(f"{what}: {value} does not fit {kind}")


#: Options each set of which adds to a listener's accept rules, as libzmq's (which a NULL
#: value clears, a value pyzmq cannot pass: neither can the engine's setsockopt).
_ADDING = frozenset(
    {c.TCP_ACCEPT_FILTER, c.IPC_FILTER_UID, c.IPC_FILTER_GID, c.IPC_FILTER_PID, c.METADATA}
)

#: What METADATA takes, as RFC 23 spells a property's name (1-255 of letters, digits and
#: "-_.+"), behind the "X-" libzmq asks of an application's own, then ":" and a value that
#: is not empty. libzmq takes any byte in the name; the engine's handshake refuses a peer's
#: name that is not ASCII, so it sends none either.
_METADATA_PROPERTY = re.compile(rb"(X-[A-Za-z0-9._+-]{1,253}):(.+)", re.DOTALL)


def _add_metadata(opts: Options, value: bytes) -> None:
    """METADATA: one more property for the handshake. The first value given a name stays,
    as in libzmq (a map insert); libzmq reads the option as a C string, so it ends at a NUL."""
    found = _METADATA_PROPERTY.fullmatch(value.split(b"\x00", 1)[0])
    if found is None:
        raise ZMQError(
            c.EINVAL,
            'METADATA takes b"X-Name:value" (a name of 1-253 of A-Z a-z 0-9 . _ + - after "X-")',
        )
    name = found.group(1).decode("ascii")
    if all(name != kept for kept, _ in opts.app_metadata):
        opts.app_metadata = (*opts.app_metadata, (name, found.group(2)))


def _add_rule(opts: Options, option: int, value: int | bytes) -> None:
    if option == c.METADATA:
        assert isinstance(value, bytes)  # check_value_kind
        _add_metadata(opts, value)
        return
    if option == c.TCP_ACCEPT_FILTER:
        if isinstance(value, str):
            raise TypeError("TCP_ACCEPT_FILTER takes bytes, not str (use setsockopt_string)")
        try:
            rule = parse_tcp_rule(bytes(value), bool(opts.ipv6))
        except ValueError as exc:
            raise ZMQError(c.EINVAL, f"TCP_ACCEPT_FILTER: {exc}") from None
        opts.tcp_accept_filter = (*opts.tcp_accept_filter, rule)
        return
    name = option_name(option)
    if not isinstance(value, int):
        raise TypeError(f"{name.upper()} takes an int, not {type(value).__name__}")
    # libzmq keeps a uid or gid as an unsigned 32-bit number, a pid as a signed one.
    kept = int(value) if option == c.IPC_FILTER_PID else int(value) & 0xFFFFFFFF
    setattr(opts, name, getattr(opts, name) | {kept})


def get_option(opts: Options, option: int) -> int | bytes:
    if option == c.IPV4ONLY:
        return 1 - opts.ipv6
    name = option_name(option)
    if name not in _FIELDS or option in _WRITE_ONLY:
        raise ZMQError(c.EINVAL, f"option {name.upper()} cannot be read")
    return getattr(opts, name)


def heartbeat_timeout(opts: Options) -> int:
    """HEARTBEAT_TIMEOUT defaults to HEARTBEAT_IVL, as in libzmq."""
    return opts.heartbeat_timeout if opts.heartbeat_timeout >= 0 else opts.heartbeat_ivl
