"""Endpoint strings: tcp://host:port, ipc://path, inproc://name, and udp/pgm/epgm addresses."""

from __future__ import annotations

import errno
import os
import tempfile
import uuid
from dataclasses import dataclass

from . import constants as c
from .errors import ZMQError


@dataclass(frozen=True, slots=True)
class Endpoint:
    transport: str  # "tcp", "ipc" or "inproc"
    address: str  # host for tcp, path for ipc, name for inproc
    port: int = 0  # tcp only; 0 means "any free port" when binding
    #: tcp connect only: the local (host, port) to connect from ("tcp://SOURCE;TARGET"),
    #: resolved when each attempt dials, as libzmq (a host is a numeric address or an
    #: interface's name; port 0 lets the kernel choose).
    source: tuple[str, int] | None = None

    def __str__(self) -> str:
        if self.transport == "tcp":
            host = f"[{self.address}]" if ":" in self.address else self.address
            return f"tcp://{host}:{self.port}"
        return f"{self.transport}://{self.address}"


#: Longest ipc:// path: a Unix socket address holds 108 bytes, the last a NUL (Linux).
MAX_IPC_PATH_BYTES = c.IPC_PATH_MAX_LEN


def parse(endpoint: str, binding: bool) -> Endpoint:
    # (Text by now: the face turns bytes into text and refuses other types, face.endpoint_text.)
    scheme, sep, rest = endpoint.partition("://")
    if not sep or not rest:
        raise ZMQError(c.EINVAL, f"invalid endpoint {endpoint!r}")
    if scheme == "tcp":
        return _parse_tcp(endpoint, rest, binding)
    if scheme == "ipc":
        if rest == "@":  # libzmq: an abstract socket needs a name
            raise ZMQError(c.EINVAL, f"an abstract ipc name cannot be empty: {endpoint!r}")
        if rest == "*" and binding:
            rest = os.path.join(tempfile.gettempdir(), f"crossroads-{uuid.uuid4().hex[:12]}.ipc")
        if len(os.fsencode(rest)) > MAX_IPC_PATH_BYTES:
            # Refused here for connect() too, as libzmq does: a dial to such a path would
            # otherwise fail out of sight on every retry.
            raise ZMQError(
                errno.ENAMETOOLONG,
                f"ipc path of {len(os.fsencode(rest))} bytes (at most {MAX_IPC_PATH_BYTES}): "
                f"{endpoint[:80]!r}",
            )
        return Endpoint("ipc", rest)
    if scheme == "inproc":
        return Endpoint("inproc", rest)
    if scheme in ("udp", "pgm", "epgm"):
        # The datagram transports read their own address forms (engine.multicast_address).
        return Endpoint(scheme, rest)
    raise ZMQError(c.EPROTONOSUPPORT, f"unsupported transport {scheme!r} in {endpoint!r}")


def _parse_tcp(endpoint: str, rest: str, binding: bool) -> Endpoint:
    source = None
    if ";" in rest:  # "source;target": where a connect comes from
        source_text, _, rest = rest.rpartition(";")
        source = _tcp_source(endpoint, source_text)
        if binding:
            source = None  # as libzmq: checked, then the target alone is bound
    host, sep, port_text = rest.rpartition(":")
    if sep and not host and binding:
        # libzmq reads a bind's host as an interface's name first: an empty one names none.
        raise ZMQError(errno.ENODEV, f"no interface or host named '': {endpoint!r}")
    if not sep or not host:
        raise ZMQError(c.EINVAL, f"invalid tcp endpoint {endpoint!r} (expected host:port)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if port_text in ("*", "0"):
        if not binding:
            raise ZMQError(c.EINVAL, f"cannot connect to a wildcard port: {endpoint!r}")
        port = 0
    else:
        try:
            port = int(port_text)
        except ValueError:
            raise ZMQError(c.EINVAL, f"invalid port in {endpoint!r}") from None
        if not 0 < port < 65536:
            raise ZMQError(c.EINVAL, f"port out of range in {endpoint!r}")
    if host == "*" and not binding:
        raise ZMQError(c.EINVAL, f"cannot connect to a wildcard host: {endpoint!r}")
    return Endpoint("tcp", host, port, source)


def _tcp_source(endpoint: str, text: str) -> tuple[str, int]:
    """The source of "tcp://SOURCE;TARGET": HOST:PORT, HOST an address or an interface's name,
    PORT a number, "*" or 0 (any). libzmq takes some malformed ones and fails every attempt
    out of sight; they are refused here at once."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = 0 if port_text == "*" else int(port_text) if port_text.isdigit() else -1
    if not sep or not host or host == "*" or not 0 <= port < 65536:  # (libzmq: "*" EINVAL)
        raise ZMQError(c.EINVAL, f"a source address is HOST:PORT (PORT * for any): {endpoint!r}")
    return host, port
