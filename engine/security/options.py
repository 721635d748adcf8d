"""The security socket options, with libzmq's semantics, and the mechanism they choose.

As in libzmq, the options pick the mechanism as a side effect: CURVE_SERVER=1 makes a CURVE
server and CURVE_SERVERKEY a CURVE client; PLAIN_SERVER=1 a PLAIN server and PLAIN_USERNAME or
PLAIN_PASSWORD a PLAIN client; CURVE_SERVER=0 or PLAIN_SERVER=0 go back to NULL. Keys are taken
as 32 raw bytes or 40 Z85 characters and read back as Z85 text.
"""

from __future__ import annotations

from typing import Any

from .. import constants as c
from ..errors import ZMQError
from ..options import check_c_int
from .curve import CurveClient, CurveServer
from .keys import key_bytes, public_of, sodium
from .mechanism import Mechanism, ZapSettings
from .null import NullMechanism
from .plain import MAX_CREDENTIAL, PlainClient, PlainServer
from .z85 import encode as z85_encode

#: RFC 27: the domain is a short string.
MAX_ZAP_DOMAIN = 255

SECURITY_OPTIONS = frozenset(
    {
        c.PLAIN_SERVER,
        c.PLAIN_USERNAME,
        c.PLAIN_PASSWORD,
        c.CURVE_SERVER,
        c.CURVE_PUBLICKEY,
        c.CURVE_SECRETKEY,
        c.CURVE_SERVERKEY,
        c.ZAP_DOMAIN,
        c.ZAP_ENFORCE_DOMAIN,
        c.MECHANISM,
    }
)
_KEY_FIELDS = {
    c.CURVE_PUBLICKEY: "curve_publickey",
    c.CURVE_SECRETKEY: "curve_secretkey",
    c.CURVE_SERVERKEY: "curve_serverkey",
}


def set_security_option(opts: Any, option: int, value: Any) -> None:
    """Set one of SECURITY_OPTIONS on an Options object (ZMQError EINVAL for bad values)."""
    if option == c.MECHANISM:
        raise ZMQError(c.EINVAL, "MECHANISM is read-only: set PLAIN_* or CURVE_* options")
    if option in (c.PLAIN_SERVER, c.CURVE_SERVER, c.ZAP_ENFORCE_DOMAIN):
        if not isinstance(value, int):  # True/False too: pyzmq code says curve_server = True
            raise TypeError(f"{c.SocketOption(option).name} takes an int")
        check_c_int(c.SocketOption(option).name, value)
        if option == c.ZAP_ENFORCE_DOMAIN:
            opts.zap_enforce_domain = int(bool(value))
            return
        if value not in (0, 1):  # libzmq takes exactly 0 or 1 here (True and False too)
            raise ZMQError(c.EINVAL, f"{c.SocketOption(option).name} takes 0 or 1, not {value}")
        mechanism = c.PLAIN if option == c.PLAIN_SERVER else c.CURVE
        if mechanism == c.CURVE:
            sodium()  # a clear ENOTSUP now, naming the extra, rather than at connect time
        opts.as_server = int(bool(value))
        opts.mechanism = mechanism if value else c.NULL
        return
    raw = _bytes(option, value)
    if not raw and option in (c.PLAIN_USERNAME, c.PLAIN_PASSWORD, c.ZAP_DOMAIN):
        # libzmq's answer to an empty value from pyzmq (its NULL-and-0 "unset" form cannot
        # be passed from Python).
        raise ZMQError(c.EINVAL, f"{c.SocketOption(option).name} takes 1 to 255 bytes")
    if option in (c.PLAIN_USERNAME, c.PLAIN_PASSWORD):
        if len(raw) > MAX_CREDENTIAL:
            raise ZMQError(c.EINVAL, "PLAIN user names and passwords are at most 255 bytes")
        if option == c.PLAIN_USERNAME:
            opts.plain_username = raw
        else:
            opts.plain_password = raw
        opts.as_server = 0
        opts.mechanism = c.PLAIN
    elif option in _KEY_FIELDS:
        sodium()
        try:
            key = key_bytes(raw, c.SocketOption(option).name)
        except ValueError as exc:
            raise ZMQError(c.EINVAL, str(exc)) from None
        setattr(opts, _KEY_FIELDS[option], key)
        if option == c.CURVE_SERVERKEY:
            opts.as_server = 0
        opts.mechanism = c.CURVE
    elif option == c.ZAP_DOMAIN:
        if len(raw) > MAX_ZAP_DOMAIN:
            raise ZMQError(c.EINVAL, "ZAP_DOMAIN is at most 255 bytes")
        opts.zap_domain = raw


def get_security_option(opts: Any, option: int) -> int | bytes:
    if option == c.MECHANISM:
        return opts.mechanism
    if option == c.PLAIN_SERVER:
        return int(bool(opts.as_server) and opts.mechanism == c.PLAIN)
    if option == c.CURVE_SERVER:
        return int(bool(opts.as_server) and opts.mechanism == c.CURVE)
    if option in _KEY_FIELDS:
        key = getattr(opts, _KEY_FIELDS[option])
        return z85_encode(key) if key else b""
    if option == c.PLAIN_USERNAME:
        return opts.plain_username
    if option == c.PLAIN_PASSWORD:
        return opts.plain_password
    if option == c.ZAP_DOMAIN:
        return opts.zap_domain
    return opts.zap_enforce_domain


def check_security(opts: Any) -> None:
    """At bind/connect: the chosen mechanism has what it needs (one clear ZMQError if not)."""
    if opts.mechanism != c.CURVE:
        return
    if opts.as_server:
        if not opts.curve_secretkey:
            raise ZMQError(c.EINVAL, "CURVE_SERVER needs CURVE_SECRETKEY (see curve_keypair())")
        return
    missing = [
        name
        for name, key in (
            ("CURVE_SERVERKEY", opts.curve_serverkey),
            ("CURVE_PUBLICKEY", opts.curve_publickey),
            ("CURVE_SECRETKEY", opts.curve_secretkey),
        )
        if not key
    ]
    if missing:
        raise ZMQError(c.EINVAL, f"a CURVE client needs {', '.join(missing)} (see curve_keypair())")


def server_public_key(opts: Any) -> bytes:
    """A CURVE server's public key: CURVE_PUBLICKEY if given, else derived from the secret."""
    return opts.curve_publickey or public_of(opts.curve_secretkey)


def make_mechanism(
    opts: Any, peer_address: str = "", server_public: bytes | None = None
) -> Mechanism:
    """A fresh mechanism for one connection, as the socket's options say.

    `server_public` lets a listener derive its CURVE public key once, not per connection.
    """
    zap = ZapSettings(
        domain=opts.zap_domain.decode("utf-8", "replace"),
        address=peer_address,
        routing_id=opts.routing_id,
        enforce=bool(opts.zap_enforce_domain),
    )
    if opts.mechanism == c.PLAIN:
        if opts.as_server:
            return PlainServer(zap=zap)
        return PlainClient(opts.plain_username, opts.plain_password, zap=zap)
    if opts.mechanism == c.CURVE:
        if opts.as_server:
            return CurveServer(
                opts.curve_secretkey, server_public or server_public_key(opts), zap=zap
            )
        return CurveClient(
            opts.curve_serverkey, opts.curve_publickey, opts.curve_secretkey, zap=zap
        )
    return NullMechanism(zap=zap)


def _bytes(option: int, value: Any) -> bytes:
    if isinstance(value, str):
        raise TypeError(f"{c.SocketOption(option).name} takes bytes (use setsockopt_string)")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{c.SocketOption(option).name} takes bytes")
    return bytes(value)
