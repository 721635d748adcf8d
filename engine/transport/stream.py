"""tcp:// and ipc:// on asyncio: listening, connecting and reconnecting with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import random
import socket as _socket
import stat
from typing import Any

from .. import constants as c
from ..accept_rules import ipc_admits, tcp_admits
from ..endpoint import Endpoint
from ..errors import ZMQError
from ..multicast_address import interface_address
from ..native import native_getaddrinfo, native_socket
from ..options import Options, snapshot
from ..pipe import Pipe
from .link import ZMTPLink
from .link_roles import LinkHost
from .raw_link import RawLink
from .rawsock import RawTransport

log = logging.getLogger(__name__)

#: Connections taken from the kernel's accept queue per loop pass. The queue itself is BACKLOG
#: long (a reconnect storm waits there rather than losing its SYNs), but each accepted
#: connection costs the loop a transport and a greeting: taking a thousand in one pass
#: stalled every other connection's traffic for 90 ms (`crossroads bench storm`). libzmq
#: accepts on its I/O thread as fast as the kernel hands them over; this is the pass's bound.
ACCEPT_BATCH = 100
#: Linux's option number where this Python's socket module does not name it.
TCP_USER_TIMEOUT = getattr(_socket, "TCP_USER_TIMEOUT", 18)


def _unix_path(address: str) -> str:
    # "@name" is Linux's abstract namespace: no file on disk.
    return "\0" + address[1:] if address.startswith("@") else address


def _place(sock: _socket.socket, opts: Options) -> None:
    """What a tcp socket needs before it binds or connects, as libzmq: BINDTODEVICE (an error
    such as ENODEV, or EPERM without the privilege, is the caller's) and TOS."""
    if opts.bindtodevice:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_BINDTODEVICE, opts.bindtodevice)
    if opts.tos:
        if sock.family == _socket.AF_INET6:
            sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_TCLASS, opts.tos)
        with contextlib.suppress(OSError):  # an IPv6-only socket has no IPv4 header to mark
            sock.setsockopt(_socket.IPPROTO_IP, _socket.IP_TOS, opts.tos)


def _bind_source(sock: _socket.socket, family: int, source: tuple[str, int]) -> None:
    """Bind a connecting socket to its endpoint's source address, as libzmq: a numeric
    address or an interface's name, never a DNS name (an OSError fails this attempt)."""
    host, port = source
    host = interface_address(host) or host
    try:
        numeric_only = _socket.AI_NUMERICHOST  # a source is never looked up in DNS
        infos = native_getaddrinfo(host, port, family, _socket.SOCK_STREAM, numeric_only)
    except _socket.gaierror:
        raise OSError(errno.EINVAL, f"not a source address for this target: {host!r}") from None
    if port:  # a fixed port again after a reconnect, past the last connection's TIME_WAIT
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    sock.bind(infos[0][4])


def _tune(sock: _socket.socket, opts: Options) -> None:
    if sock.family in (_socket.AF_INET, _socket.AF_INET6):
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        if opts.tcp_maxrt > 0:  # how long unacknowledged data may wait before the link drops
            sock.setsockopt(_socket.IPPROTO_TCP, TCP_USER_TIMEOUT, opts.tcp_maxrt)
        if opts.tcp_keepalive == 1:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
            for opt, value in (
                ("TCP_KEEPCNT", opts.tcp_keepalive_cnt),
                ("TCP_KEEPIDLE", opts.tcp_keepalive_idle),
                ("TCP_KEEPINTVL", opts.tcp_keepalive_intvl),
            ):
                if value > 0 and hasattr(_socket, opt):
                    sock.setsockopt(_socket.IPPROTO_TCP, getattr(_socket, opt), value)
    if opts.sndbuf > 0:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, opts.sndbuf)
    if opts.rcvbuf > 0:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, opts.rcvbuf)


class _Refused(asyncio.Protocol):
    """A connection over a listener's MAX_CONNECTIONS: closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()


class _Screened(asyncio.Protocol):
    """A connection to a listener with accept rules, on the asyncio face: the factory cannot
    see the peer, so the check comes here, and only an admitted peer becomes a link."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is None or not self.listener.admits(sock):
            transport.abort()
            return
        link = self.listener._new_link()
        transport.set_protocol(link)
        link.connection_made(transport)


def _bound_address(sock: _socket.socket, wildcard: bool) -> tuple[str, int]:
    """What LAST_ENDPOINT shows, as libzmq: the numeric address bound (a host name resolved),
    the wildcard as 0.0.0.0 or ::."""
    address, port = sock.getsockname()[:2]
    if wildcard:
        return ("::" if sock.family == _socket.AF_INET6 else "0.0.0.0"), port
    return _shown_host(address), port


def _shown_host(address: str) -> str:
    """A numeric address as libzmq shows it: an IPv4-mapped IPv6 one as IPv4."""
    if ":" not in address:
        return address
    mapped = ipaddress.IPv6Address(address.partition("%")[0]).ipv4_mapped
    return address if mapped is None else str(mapped)


def reconnect_wait(backoff_ms: int, reconnect_ivl: int, reconnect_ivl_max: int) -> tuple[int, int]:
    """The wait before the next attempt, and the backoff to keep for the one after (start a
    series of failed attempts with -1), as libzmq 4.3 reckons them. With RECONNECT_IVL_MAX
    set: RECONNECT_IVL, then twice the wait before, up to the maximum, exactly (a maximum
    under RECONNECT_IVL is every wait). Without: RECONNECT_IVL plus a random part of it each
    time, so that the peers of a server that restarts do not all come back in the same
    millisecond."""
    if reconnect_ivl_max > 0:
        wait = min(reconnect_ivl if backoff_ms < 0 else backoff_ms * 2, reconnect_ivl_max)
        return wait, wait
    if reconnect_ivl <= 0:
        return max(reconnect_ivl, 0), backoff_ms
    return reconnect_ivl + random.randrange(reconnect_ivl), backoff_ms


def resolved_endpoints(ep: Endpoint) -> list[str]:
    """The numeric forms a tcp endpoint may have been bound or connected under (unbind and
    disconnect look them up); none when its host does not resolve."""
    if ep.address == "*":
        hosts = ["0.0.0.0", "::"]
    else:
        host = interface_address(ep.address) or ep.address
        try:
            infos = native_getaddrinfo(host, ep.port, 0, _socket.SOCK_STREAM)
        except _socket.gaierror:
            return []
        hosts = [info[4][0] for info in infos]
    shown = [str(Endpoint("tcp", _shown_host(host), ep.port)) for host in hosts]
    return list(dict.fromkeys(shown))


class Listener:
    """A bound endpoint: accepts connections and gives each a ZMTPLink."""

    #: Accepted peers are named by the ROUTER itself (no CONNECT_ROUTING_ID here).
    routing_id = b""
    #: Accepted connections make their pipes at handshake; none outlives them.
    pipe: Pipe | None = None

    def __init__(self, host: LinkHost, endpoint: Endpoint) -> None:
        self.host = host
        self.requested = endpoint
        self.endpoint = str(endpoint)
        self.links: set[ZMTPLink] = set()
        self.security = snapshot(host.port.options)
        self._sock: _socket.socket | None = None
        self._server: asyncio.AbstractServer | None = None
        self._task: asyncio.Task | None = None
        self._path: str | None = None
        self._raw_listening = False
        #: Rules for this transport (TCP_ACCEPT_FILTER, IPC_FILTER_*): each peer is checked.
        rules = self.security
        self._screening = bool(
            rules.tcp_accept_filter
            if endpoint.transport == "tcp"
            else rules.ipc_filter_uid or rules.ipc_filter_gid or rules.ipc_filter_pid
        )

    def open(self) -> str:
        """Bind now (so LAST_ENDPOINT is known at once); accepting starts on the loop."""
        ep = self.requested
        try:
            if self.host.port.options.use_fd >= 0:
                sock = self._given_socket(ep)
            elif ep.transport == "tcp":
                sock = self._bind_tcp(ep)
            else:
                sock = self._bind_ipc(ep)
        except OSError as exc:
            # Python says "AF_UNIX path too long" with no errno; libzmq, ENAMETOOLONG.
            code = exc.errno or (errno.ENAMETOOLONG if ep.transport == "ipc" else c.EINVAL)
            self.host.emit(c.EVENT_BIND_FAILED, code, str(ep))
            if code == errno.ENOENT and ep.transport == "ipc":
                # The path, as pyzmq's message has it: its directory is what is missing.
                raise ZMQError(code, f"ipc path {ep.address}") from None
            raise ZMQError(code, f"{exc.strerror or exc}: {ep}") from None
        sock.setblocking(False)
        self._sock = sock
        self._task = self.host.loop.create_task(self._serve(sock))
        self.host.emit(c.EVENT_LISTENING, sock.fileno(), self.endpoint)
        return self.endpoint

    def _given_socket(self, ep: Endpoint) -> _socket.socket:
        """USE_FD: the descriptor the application bound (and may have listened on) itself,
        taken over as libzmq takes it (it closes it with the endpoint); the endpoint's own
        address is not bound, and LAST_ENDPOINT shows the descriptor's."""
        sock = _socket.socket(fileno=self.host.port.options.use_fd)
        try:
            sock.listen(max(1, self.host.port.options.backlog))
            if ep.transport == "tcp":
                self.endpoint = str(Endpoint("tcp", *_bound_address(sock, False)))
            else:
                path = sock.getsockname()  # bytes for Linux's abstract names, which start at NUL
                shown = "@" + path[1:].decode() if isinstance(path, bytes) else path
                self.endpoint = str(Endpoint("ipc", shown))
        except BaseException:
            sock.detach()  # not ours until it works: the application still holds it
            raise
        return sock

    def _bind_tcp(self, ep: Endpoint) -> _socket.socket:
        opts = self.host.port.options
        host = ep.address
        if host == "*":
            host = "::" if opts.ipv6 else "0.0.0.0"
        else:  # as libzmq, a network interface's name first (tcp://eth0:5555), then a host
            host = interface_address(host) or host
        family = _socket.AF_INET6 if ":" in host else _socket.AF_UNSPEC
        try:
            infos = native_getaddrinfo(
                host, ep.port, family, _socket.SOCK_STREAM, _socket.AI_PASSIVE
            )
        except _socket.gaierror:  # libzmq's errno for a name it cannot bind to
            raise OSError(errno.ENODEV, f"no interface or host named {host!r}") from None
        if not opts.ipv6:
            if any(i[0] == _socket.AF_INET for i in infos):
                infos = [i for i in infos if i[0] == _socket.AF_INET]
            elif not _ipv4_mapped(host):
                # libzmq looks for IPv4 addresses only without IPV6, and finds none here.
                raise OSError(errno.ENODEV, f"{host!r} is IPv6 only, and IPV6 is off")
        af, kind, proto, _, addr = infos[0]
        sock = native_socket(af, kind, proto)
        try:
            _place(sock, opts)
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if af == _socket.AF_INET6 and host == "::":
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 0)
            sock.bind(addr)
            sock.listen(max(1, self.host.port.options.backlog))
        except OSError:
            sock.close()
            raise
        self.endpoint = str(Endpoint("tcp", *_bound_address(sock, ep.address == "*")))
        return sock

    def _bind_ipc(self, ep: Endpoint) -> _socket.socket:
        path = _unix_path(ep.address)
        if not path.startswith("\0"):
            with contextlib.suppress(FileNotFoundError):
                # A socket file left by a dead process would make bind fail; libzmq removes it.
                if stat.S_ISSOCK(os.stat(path).st_mode):
                    os.unlink(path)
            self._path = path
        sock = native_socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(max(1, self.host.port.options.backlog))
        except OSError:
            sock.close()
            raise
        self.endpoint = str(ep)
        return sock

    async def _serve(self, sock: _socket.socket) -> None:
        loop = self.host.loop
        if not self.host.same_thread:
            # The sync face: raw sockets (engine.transport.rawsock), accepted here.
            loop.add_reader(sock.fileno(), self._accept_ready, sock)
            self._raw_listening = True
            return
        # asyncio listens again with the backlog it is given, and accepts up to that many
        # connections per loop pass: it is given the pass's bound, then the socket listens
        # again with its BACKLOG (Linux takes a second listen() as a new queue length).
        backlog = max(1, self.host.port.options.backlog)
        batch = min(backlog, ACCEPT_BATCH)
        if sock.family == _socket.AF_UNIX:
            self._server = await loop.create_unix_server(self._accepted, sock=sock, backlog=batch)
        else:
            self._server = await loop.create_server(self._accepted, sock=sock, backlog=batch)
        if backlog > batch:
            sock.listen(backlog)

    def _accept_ready(self, sock: _socket.socket) -> None:
        """Loop side: take the connections waiting (at most ACCEPT_BATCH per pass)."""
        for _ in range(max(1, min(self.host.port.options.backlog, ACCEPT_BATCH))):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, say: the next pass tries again
                log.warning("accept on %s failed: %s", self.endpoint, exc)
                return
            if self._over_cap() or (self._screening and not self.admits(conn)):
                conn.close()
                continue
            conn.setblocking(False)
            RawTransport(self.host.loop, conn, self._new_link())

    def _over_cap(self) -> bool:
        """MAX_CONNECTIONS: over the cap a connection is closed as soon as it is made, before a
        greeting is read or a byte of state is kept for it."""
        cap = self.host.port.options.max_connections
        if 0 < cap <= len(self.links):
            self.host.emit(c.EVENT_ACCEPT_FAILED, errno.EMFILE, self.endpoint)
            return True
        return False

    def admits(self, sock: Any) -> bool:
        """Do the rules the endpoint was bound with take this peer? If not, the monitor sees
        ACCEPT_FAILED (libzmq gives whatever errno it last had; EACCES says why)."""
        rules = self.security
        if sock.family == _socket.AF_UNIX:
            admitted = ipc_admits(
                rules.ipc_filter_uid, rules.ipc_filter_gid, rules.ipc_filter_pid, sock
            )
        else:
            try:
                peer = sock.getpeername()[0]
            except OSError:  # gone already
                peer = ""
            admitted = tcp_admits(rules.tcp_accept_filter, peer)
        if not admitted:
            self.host.emit(c.EVENT_ACCEPT_FAILED, errno.EACCES, self.endpoint)
        return admitted

    def _accepted(self) -> ZMTPLink | asyncio.Protocol:
        """The asyncio face's protocol factory: a link, a refusal over the cap, or a screen
        that makes the link once the peer passes the accept rules."""
        if self._over_cap():
            return _Refused()
        return _Screened(self) if self._screening else self._new_link()

    def _new_link(self) -> ZMTPLink | RawLink:
        link = _link_class(self.host)(self.host, self, None)
        self.links.add(link)
        return link

    def link_made(self, link: ZMTPLink | RawLink) -> None:
        # Tuned before ACCEPTED goes out, as libzmq: whoever the event tells of the descriptor
        # finds TCP_MAXRT and the rest on it already (not only once the handshake is done).
        _tune(link.transport.get_extra_info("socket"), self.host.port.options)
        self.host.emit(c.EVENT_ACCEPTED, link.fd, self.endpoint)

    def link_ready(self, link: ZMTPLink) -> None:
        pass  # tuned as it was accepted (link_made)

    def link_lost(self, link: ZMTPLink) -> None:
        self.links.discard(link)

    def close(self, drop_links: bool = True, linger_ms: int = 0) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        fd = self._sock.fileno() if self._sock is not None else 0  # the monitor's value
        if self._server is not None:
            self._server.close()
        elif self._sock is not None:
            if self._raw_listening:
                self.host.loop.remove_reader(self._sock.fileno())
            self._sock.close()
        self._sock = None
        if self._path:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
            self._path = None
        self.host.emit(c.EVENT_CLOSED, fd, self.endpoint)
        if drop_links:
            for link in list(self.links):
                link.end_here()


class Connecter:
    """A connected endpoint: keeps one connection up, reconnecting with backoff."""

    def __init__(self, host: LinkHost, endpoint: Endpoint, pipe: Pipe | None) -> None:
        self.host = host
        self.target = endpoint
        self.endpoint = str(endpoint)
        self.pipe = pipe
        opts = host.port.options
        self.security = snapshot(opts)
        self.routing_id = opts.connect_routing_id
        opts.connect_routing_id = b""  # it applies to the next connect only
        self.link: ZMTPLink | None = None
        self._task: asyncio.Task | None = None
        self._stopped = False
        self._lingering = False
        self._linger_deadline: float | None = None

    def open(self) -> None:
        self._task = self.host.loop.create_task(self._run())

    async def _connect_once(self) -> ZMTPLink:
        loop = self.host.loop
        ep = self.target

        link_class = _link_class(self.host)

        def factory() -> ZMTPLink | RawLink:
            return link_class(self.host, self, self.pipe)

        opts = self.host.port.options
        if not self.host.same_thread:
            conn = _raw_connect(loop, ep, factory, opts)
        elif ep.transport == "tcp" and (opts.bindtodevice or opts.tos or ep.source):
            conn = _placed_connect(loop, ep, factory, opts)
        elif ep.transport == "tcp":
            conn = loop.create_connection(factory, ep.address, ep.port)
        else:
            conn = loop.create_unix_connection(factory, _unix_path(ep.address))
        timeout = self.host.port.options.connect_timeout
        if timeout > 0:
            _, link = await asyncio.wait_for(conn, timeout / 1000)
        else:
            _, link = await conn
        return link

    async def _run(self) -> None:
        # The monitor hears what libzmq's connecter reports: CONNECT_DELAYED (EINPROGRESS)
        # as each tcp attempt starts, CONNECTED or CLOSED as it ends, and CONNECT_RETRIED
        # with the wait before the next one (after a failed attempt, or a lost connection).
        opts = self.host.port.options
        backoff = -1  # a series of failures starts (libzmq's connecter, made anew each time)
        emit = self.host.emit
        while not self._stopped:
            if self.target.transport == "tcp":  # an ipc connect ends at once, either way
                emit(c.EVENT_CONNECT_DELAYED, errno.EINPROGRESS, self.endpoint)
            try:
                link = await self._connect_once()
            except (TimeoutError, OSError) as exc:
                emit(c.EVENT_CLOSED, 0, self.endpoint)
                log.debug("connect to %s failed: %s", self.endpoint, exc)
                if opts.reconnect_ivl < 0:
                    return
                if isinstance(exc, ConnectionRefusedError) and (
                    opts.reconnect_stop & c.ReconnectStop.CONN_REFUSED
                ):
                    return
                wait, backoff = reconnect_wait(backoff, opts.reconnect_ivl, opts.reconnect_ivl_max)
                emit(c.EVENT_CONNECT_RETRIED, wait, self.endpoint)
                await asyncio.sleep(max(wait, 1) / 1000)
                continue
            self.link = link
            backoff = -1
            _tune(link.transport.get_extra_info("socket"), opts)
            emit(c.EVENT_CONNECTED, link.fd, self.endpoint)
            await asyncio.shield(link.lost)
            self.link = None
            if self._stopped or self._lingering:
                return
            if link.protocol_failed:
                self._give_up()
                return
            if opts.reconnect_ivl < 0:
                return
            if not link.ready and opts.reconnect_stop & c.ReconnectStop.HANDSHAKE_FAILED:
                return
            # (the first wait of a new series: refused attempts after it go on doubling)
            wait, backoff = reconnect_wait(backoff, opts.reconnect_ivl, opts.reconnect_ivl_max)
            emit(c.EVENT_CONNECT_RETRIED, wait, self.endpoint)
            await asyncio.sleep(max(wait, 1) / 1000)

    def _give_up(self) -> None:
        """The peer broke the protocol: as libzmq ends its session then, no redial, whatever
        RECONNECT_STOP says (a peer that sends what we cannot take, or refuses us, would
        only do it again). The endpoint stays until disconnect(); the pipe kept across
        connections goes now, with what it holds, so that a socket that shares its sends
        among its peers stops giving this one a share."""
        pipe = self.pipe
        self.pipe = None
        if pipe is not None and pipe.persistent:
            self.host.port.detach(pipe)

    def link_made(self, link: ZMTPLink | RawLink) -> None:
        pass  # CONNECTED goes out once the connect call has returned (see _run)

    def link_ready(self, link: ZMTPLink) -> None:
        if self._lingering:
            # The socket closed while we were still connecting: deliver, then finish.
            deadline = self._linger_deadline
            left = -1 if deadline is None else max(1, int((deadline - link.loop.time()) * 1000))
            link.finish(left)

    def link_lost(self, link: ZMTPLink) -> None:
        if self._lingering:
            self.host.links.discard(self)  # delivered (or gave up): nothing left to wait for

    def finish(self, linger_ms: int) -> None:
        """Closing already started lingering here (see close)."""

    def abort(self) -> None:
        self.close()

    def close(self, drop_links: bool = True, linger_ms: int = 0) -> None:
        pipe = self.pipe
        if not drop_links and linger_ms != 0 and self.link is None and pipe and pipe.outbox:
            # LINGER: keep trying to connect so that queued messages still get out.
            self._lingering = True
            self.host.links.add(self)  # term() waits for us like for a lingering link
            if linger_ms > 0:
                loop = self.host.loop
                self._linger_deadline = loop.time() + linger_ms / 1000
                loop.call_later(linger_ms / 1000, self.close)
            return
        self._stopped = True
        self.host.links.discard(self)
        if self._task is not None and not self._task.done() and self.link is None:
            self._task.cancel()
        if drop_links and self.link is not None:
            self.link.end_here()


def _ipv4_mapped(host: str) -> bool:
    """An IPv4 address written as IPv6 (::ffff:a.b.c.d), which libzmq binds without IPV6."""
    try:
        return ipaddress.IPv6Address(host).ipv4_mapped is not None
    except ValueError:
        return False


def _link_class(host: LinkHost) -> type[ZMTPLink] | type[RawLink]:
    """ZMTP for every socket type but STREAM and a ROUTER with ROUTER_RAW, whose connections
    carry the bytes as they are."""
    port = host.port
    return RawLink if port.socket_type == c.STREAM or port.options.router_raw else ZMTPLink


async def _dial(loop: asyncio.AbstractEventLoop, ep: Endpoint, opts: Options) -> _socket.socket:
    """A connected socket; tcp tries each address the name has, each socket placed first."""
    if ep.transport == "tcp":
        targets = [
            (info[0], info[4])
            for info in native_getaddrinfo(ep.address, ep.port, 0, _socket.SOCK_STREAM)
        ]
    else:
        targets = [(_socket.AF_UNIX, _unix_path(ep.address))]
    error: OSError | None = None
    for family, address in targets:
        sock = native_socket(family, _socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if family != _socket.AF_UNIX:
                _place(sock, opts)
                if ep.source is not None:
                    _bind_source(sock, family, ep.source)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error or OSError(c.EHOSTUNREACH, f"no address for {ep.address}")


async def _raw_connect(
    loop: asyncio.AbstractEventLoop, ep: Endpoint, factory: Any, opts: Options
) -> tuple[RawTransport, ZMTPLink]:
    """Connect a raw socket (the sync face's links)."""
    sock = await _dial(loop, ep, opts)
    link = factory()
    return RawTransport(loop, sock, link), link


async def _placed_connect(
    loop: asyncio.AbstractEventLoop, ep: Endpoint, factory: Any, opts: Options
) -> tuple[asyncio.BaseTransport, Any]:
    """The asyncio face's tcp connect when the socket must be placed before it connects
    (BINDTODEVICE, TOS, a source address): asyncio's own connect makes its socket too late."""
    sock = await _dial(loop, ep, opts)
    try:
        return await loop.create_connection(factory, sock=sock)
    except BaseException:
        sock.close()
        raise


def bind(host: LinkHost, endpoint: Endpoint) -> Listener:
    listener = Listener(host, endpoint)
    listener.open()
    return listener


def connect(host: LinkHost, endpoint: Endpoint) -> Connecter:
    port = host.port
    pipe = None
    if port.queues_before_connect and not port.options.immediate:
        # Messages sent before the peer is reachable wait in this pipe (no IMMEDIATE).
        pipe = port.new_pipe(persistent=True)
        port.attach(pipe)
    connecter = Connecter(host, endpoint, pipe)
    connecter.open()
    return connecter
