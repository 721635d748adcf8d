"""Socket options: defaults as in libzmq, validation, and get/set by option number."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from . import constants as c
from .errors import ZMQError

#: A count no queue reaches: what a high-water mark of 0 ("no limit") and other absent limits
#: become, so that hot paths compare against a number instead of testing for "no limit".
UNBOUNDED = 1 << 62


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
    xpub_welcome_msg: bytes = b""
    invert_matching: int = 0
    req_relaxed: int = 0
    req_correlate: int = 0
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
    blocky: int = 1
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
}
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
}


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
    name = option_name(option)
    if name not in _FIELDS:
        raise ZMQError(c.EINVAL, f"option {name.upper()} cannot be set")
    if option in _BYTES_OPTIONS:
        if isinstance(value, str):
            raise TypeError(f"{name.upper()} takes bytes, not str (use setsockopt_string)")
        value = bytes(value)
        if option in (c.ROUTING_ID, c.CONNECT_ROUTING_ID) and (
            not 0 < len(value) <= 255 or value[:1] == b"\x00"
        ):
            if option == c.ROUTING_ID and value == b"":
                setattr(opts, name, value)
                return
            raise ZMQError(c.EINVAL, "routing id must be 1-255 bytes and not start with 0x00")
    else:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name.upper()} takes an int, not {type(value).__name__}")
    setattr(opts, name, value)


def get_option(opts: Options, option: int) -> int | bytes:
    name = option_name(option)
    if name not in _FIELDS:
        raise ZMQError(c.EINVAL, f"option {name.upper()} cannot be read")
    return getattr(opts, name)


def heartbeat_timeout(opts: Options) -> int:
    """HEARTBEAT_TIMEOUT defaults to HEARTBEAT_IVL, as in libzmq."""
    return opts.heartbeat_timeout if opts.heartbeat_timeout >= 0 else opts.heartbeat_ivl
