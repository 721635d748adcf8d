"""SocketFace: the pyzmq-shaped API, written once for the sync and the asyncio faces.

Everything here is shared: multipart assembly for SNDMORE/RCVMORE, send, recv and their
multipart forms, poll, options, endpoints, the socket monitor (face_monitor), serialisation
helpers and close.
A face (engine.sync, engine.asyncio) supplies only how to wait and how to hand back a result:

* `_run(steps, waiter)` drives the steps of a blocking call (engine.waiting), sleeping on
  `waiter`; `_waiter()` makes one for a call on this socket, `_wake()` wakes them;
* `_done(value)` and `_then(result, fn)` hand back a value, or `fn` applied to a result: plain
  values on the sync face, awaitables on the asyncio face;
* `_call_on_loop(fn, *args)` runs endpoint work on the socket's I/O loop.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

from . import constants as c
from . import face_draft
from .endpoint import parse as parse_endpoint
from .errors import Again, ContextTerminated, LoopGone, ZMQBindError, ZMQError
from .face_endpoint import EndpointContext
from .face_frame import DONE_TRACKER, Frame, as_frame
from .face_monitor import MonitoringFace
from .face_options import SocketOptions
from .face_recv import ReceivedFrames
from .face_serial import SerialisingFace
from .sockets.base import Traffic
from .waiting import NOTHING, Steps, Waiter, timeout_ms, wait_steps


def _raise_again() -> Any:
    raise Again()


def _nothing_ready() -> int:
    return 0


def _same(value: Any) -> Any:
    return value


class SocketFace(ReceivedFrames, SocketOptions, SerialisingFace, MonitoringFace):
    """Shared by engine.Socket (sync) and engine.asyncio.Socket."""

    _face_name = "engine socket"
    #: pyzmq's: a smaller frame sent with copy=False is copied anyway. The engine copies every
    #: frame, so setting it is accepted and changes nothing.
    copy_threshold: int = c.COPY_THRESHOLD

    def __init__(self, context: Any, socket_type: int, loop: Any, same_thread: bool) -> None:
        if isinstance(socket_type, str | bytes) or socket_type is None:
            # pyzmq's TypeError: `ctx.socket("PUB")` is a mistake in the code, not a bad value
            raise TypeError(f"a socket type is a number (zmq.PUB), not {socket_type!r}")
        core, endpoints = context._io.create_socket(socket_type, loop, same_thread)
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "_core", core)
        object.__setattr__(self, "_endpoints", endpoints)
        object.__setattr__(self, "_send_parts", [])
        object.__setattr__(self, "_recv_rest", [])
        object.__setattr__(self, "_rest_source", None)
        object.__setattr__(self, "_monitor_sink", None)
        #: What get_monitor_socket() handed out, handed out again while open (as pyzmq's).
        object.__setattr__(self, "_monitor_watcher", None)

    def _start(self, options: dict[str, Any]) -> None:
        """The face is built: take wake-ups, the context's defaults for new sockets, then the
        options the constructor was given by name (an engine extension: what pyzmq's
        `ctx.socket(zmq.PUB, **kwargs)` hands a socket class's constructor reaches the
        engine's as options, `linger=0`); one it refuses closes the socket and raises."""
        self._core.set_waker(self._core_waker())
        for option, value in self.context._socket_defaults().items():
            # As pyzmq: a context default this socket type does not have (SUBSCRIBE on a
            # PUB, ROUTER_MANDATORY on a DEALER) is skipped, not an error at ctx.socket().
            with contextlib.suppress(ZMQError):
                self.setsockopt(option, value)
        try:
            for name, value in options.items():
                setattr(self, name, value)
        except BaseException:
            self.close(linger=0)
            raise

    # -- supplied by each face ------------------------------------------------------------------

    def _wake(self) -> None:
        raise NotImplementedError

    def _core_waker(self) -> Callable[[], None]:
        """What the core calls to wake this face. A strong hold here: the I/O loop holds the
        core while it has connections, and so the face, as pyzmq's asyncio socket is held by
        its loop's reader (a receiving task nobody else keeps stays alive)."""
        return self._wake

    def _waiter(self, reading: bool = False) -> Waiter:
        """How a blocked call on this socket sleeps; `reading` for a recv."""
        raise NotImplementedError

    def _run(self, steps: Steps, waiter: Any) -> Any:
        raise NotImplementedError

    def _done(self, value: Any) -> Any:
        raise NotImplementedError

    def _then(self, result: Any, fn: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    # -- waiting --------------------------------------------------------------------------------

    def _blocking(
        self,
        attempt: Callable[[], Any],
        flags: int,
        timeout_ms: int,
        on_timeout: Any = None,
        reading: bool = False,
        nothing: Any = NOTHING,
    ) -> Any:
        """The face's run of the wait algorithm on this socket (after one attempt failed, or
        found nothing to attempt)."""
        if flags & c.DONTWAIT:
            raise Again()
        waiter = self._waiter(reading)
        steps = wait_steps(
            (self._core,),
            attempt,
            timeout_ms,
            waiter,
            self._check_still_open,
            on_timeout or _raise_again,
            nothing,
        )
        return self._run(steps, waiter)

    def _check_open(self) -> None:
        """A call on a closed socket: ENOTSOCK; ETERM when term() closed it, as libzmq says
        to a socket the application had not closed. After destroy(), which closes every
        socket first as pyzmq's does, ENOTSOCK (pyzmq's answer once its sockets are closed)."""
        if self._core.closed:
            if self._closed_by_term():
                raise ContextTerminated()
            raise ZMQError(c.ENOTSOCK, "socket is closed")

    def _closed_by_term(self) -> bool:
        """Was this closed socket closed by its context's term(), not by the application?
        After destroy(), which closes every socket first as pyzmq's does, it counts as the
        application's close."""
        io = self.context._io
        return io.terminated and not io.destroyed

    def _check_still_open(self) -> None:
        """A call that waited while its socket was closed: ETERM when the context's term()
        or destroy() closed it (libzmq wakes such calls with ETERM), else ENOTSOCK."""
        if self._core.closed:
            if self.context._io.terminated:
                raise ContextTerminated()
            raise ZMQError(c.ENOTSOCK, "socket is closed")

    # -- sending and receiving --------------------------------------------------------------------

    def send(
        self,
        data: Any,
        flags: int = 0,
        copy: bool = True,
        track: bool = False,
        routing_id: int | None = None,
        group: str | bytes | None = None,
    ) -> Any:
        # As pyzmq: a tracker only for copy=False (a copied message needs no tracking).
        track = track and not copy
        core = self._core
        if core.thread_safe:  # draft types: one frame, with its group or routing id
            face_draft.single_frame(flags, 1)
            msg = face_draft.outgoing(core.metadata, data, as_frame(data), group, routing_id)
            return self._send_whole(msg, flags, track)
        frame = as_frame(data)
        parts = self._send_parts
        if flags & c.SNDMORE:
            if not parts:
                return self._start_message([frame], flags, track)
            parts.append(frame)  # it waits for the rest of its message
            return self._done(DONE_TRACKER if track else None)
        if parts:  # parts given earlier with SNDMORE come first
            parts.append(frame)
            object.__setattr__(self, "_send_parts", [])
            return self._send_whole(parts, flags, track)
        return self._send_whole([frame], flags, track)

    def send_multipart(
        self, msg_parts: Sequence[Any], flags: int = 0, copy: bool = True, track: bool = False
    ) -> Any:
        msg = [as_frame(p) for p in msg_parts]
        if not msg:
            raise ZMQError(c.EINVAL, "cannot send an empty multipart message")
        track = track and not copy
        core = self._core
        if core.thread_safe:
            face_draft.single_frame(flags, len(msg))
            msg = face_draft.outgoing(core.metadata, msg_parts[0], msg[0], None, None)
            return self._send_whole(msg, flags, track)
        if flags & c.SNDMORE:  # as pyzmq: these parts wait for the rest of the message
            if not self._send_parts:
                return self._start_message(msg, flags, track)
            object.__setattr__(self, "_send_parts", self._send_parts + msg)
            return self._done(DONE_TRACKER if track else None)
        if self._send_parts:  # parts given earlier with SNDMORE come first
            msg = self._send_parts + msg
            object.__setattr__(self, "_send_parts", [])
        return self._send_whole(msg, flags, track)

    def _send_whole(self, msg: list[bytes], flags: int, track: bool) -> Any:
        """Queued whole or not at all: a cancelled or timed-out send sends nothing."""
        core = self._core
        if core.closed:
            self._check_open()
        tracker = DONE_TRACKER if track else None
        if core.send(msg):
            return self._done(tracker)

        def attempt() -> Any:
            return tracker if core.send(msg) else NOTHING

        return self._blocking(attempt, flags, core.options.sndtimeo)

    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        core = self._core
        if core.thread_safe:
            meta = core.metadata
            if not copy:  # a Frame: taken with its pipe, for its connection's metadata
                return self._recv_sourced(
                    flags, lambda msg, pipe: face_draft.incoming(meta, msg, Frame, False, pipe)
                )
            msg = self._recv_whole(flags)
            if type(msg) is list:
                return self._done(face_draft.incoming(meta, msg, Frame, copy))
            return self._then(msg, lambda m: face_draft.incoming(meta, m, Frame, copy))
        if self._recv_rest:
            return self._done(self._next_rest_frame(copy))
        if core.closed:
            self._check_open()
        if copy:
            msg = core.recv()
            if msg is not None:
                # (copy=True: only the rest of a multipart message needs its pipe)
                source = self._source() if len(msg) > 1 else None
                return self._done(self._first_frame(msg, True, source))
        else:
            got = self._take_sourced()  # a Frame reads its pipe's metadata: taken with it
            if got is not None:
                return self._done(self._first_frame(got[0], False, got[1]))

        def attempt() -> Any:
            # Split at the take, with the pipe taken with the message: on the asyncio face
            # several recv()s may wait at once, and the next one to wake must find the rest of
            # a multipart message that an earlier one took, as in pyzmq, where each frame is
            # its own receive.
            if self._recv_rest:
                return self._next_rest_frame(copy)
            got = self._take_sourced()
            return NOTHING if got is None else self._first_frame(got[0], copy, got[1])

        # (through _then: a cancel of the asyncio face's future takes effect at once, as
        # pyzmq's, where the task it waits on would finish cancelling a loop pass later)
        return self._then(
            self._blocking(attempt, flags, core.options.rcvtimeo, reading=True), _same
        )

    def recv_multipart(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        if self._core.thread_safe:
            return self._then(self.recv(flags, copy, track), lambda frame: [frame])
        rest = self._recv_rest
        if rest:
            source = self._rest_source
            self._keep_rest([])
            return self._done(self._frames_out(rest, copy, source))
        core = self._core
        if core.closed:
            self._check_open()
        if copy:
            msg = core.recv()
            if msg is not None:
                return self._done(msg)
        else:
            got = self._take_sourced()  # Frames read their pipe's metadata: taken with it
            if got is not None:
                return self._done(self._frames_out(got[0], False, got[1]))

        def attempt() -> Any:
            # What a recv() left of a message comes first (see recv).
            rest = self._recv_rest
            if rest:
                source = self._rest_source
                self._keep_rest([])
                return self._frames_out(rest, copy, source)
            if copy:
                msg = core.recv()
                return NOTHING if msg is None else msg
            got = self._take_sourced()
            return NOTHING if got is None else self._frames_out(got[0], False, got[1])

        return self._then(
            self._blocking(attempt, flags, core.options.rcvtimeo, reading=True), _same
        )

    def _recv_whole(self, flags: int) -> Any:
        """A message taken now (a list), or the face's way to wait for one."""
        core = self._core
        if core.closed:
            self._check_open()
        msg = core.recv()
        if msg is not None:
            return msg
        return self._recv_wait(flags)

    def _recv_sourced(self, flags: int, build: Callable[[list[bytes], Any], Any]) -> Any:
        """A copy=False receive: the message taken together with its pipe (now, or once the
        face's wait finds one), then `build` makes its Frames."""
        core = self._core
        if core.closed:
            self._check_open()
        got = self._take_sourced()
        if got is None:
            got = self._blocking(
                self._take_sourced, flags, core.options.rcvtimeo, reading=True, nothing=None
            )
        if type(got) is tuple:
            return self._done(build(*got))
        return self._then(got, lambda taken: build(*taken))

    def _recv_wait(self, flags: int) -> Any:
        """The face's way to wait for a message (an attempt just found none)."""
        core = self._core
        return self._blocking(core.recv, flags, core.options.rcvtimeo, reading=True, nothing=None)

    def traffic(self) -> Any:
        """Start counting this socket's messages and bytes in and out (from now on); returns
        the live counters (msgs_in, bytes_in, msgs_out, bytes_out). An engine extension."""
        core = self._core
        if core.traffic is None:
            core.traffic = Traffic()
            core.refresh_direct()
        return core.traffic

    def peer_address(self, routing_id: bytes) -> str:
        """A ROUTER's peer's address, as ZAP names it (tcp: the IP; ipc: the process), for the
        routing id its messages carry; "" for a peer that is gone. An engine extension, as
        libzmq's "Peer-Address" message property: budgets per address need it."""
        core = self._core
        lookup = getattr(core, "peer_address", None)
        if lookup is None:
            raise ZMQError(c.ENOTSUP, "peer_address is for ROUTER sockets")
        return lookup(routing_id)

    def poll(self, timeout: int | None = None, flags: int = c.POLLIN) -> Any:
        """The events among `flags` that are ready, waiting up to `timeout` ms (None: forever)."""
        if self._core.closed:
            if self._closed_by_term():
                # ETERM, as libzmq answers every call on such a socket, so a loop that stops
                # on ContextTerminated stops here too.
                raise ContextTerminated()
            # pyzmq asks before libzmq does, and answers ENOTSUP
            raise ZMQError(c.ENOTSUP, "poll on a closed socket")
        wait_ms = timeout_ms(timeout)  # first: a str timeout is TypeError even when ready
        ready = self._events() & flags
        if ready or wait_ms == 0:
            return self._done(ready)

        def attempt() -> Any:
            return self._events() & flags or NOTHING

        return self._blocking(attempt, 0, wait_ms, _nothing_ready)

    # -- multipart bookkeeping --------------------------------------------------------------------

    def _start_message(self, parts: list[bytes], flags: int, track: bool) -> Any:
        """The first parts of a message given with SNDMORE, kept (for the rest to join) once
        the socket could take a message now: as in libzmq, which takes a message a frame at
        a time, a socket with no room waits, or says Again, at the first frame, and has
        taken nothing then (the engine took the frame and failed at the last, losing the
        parts given before)."""
        core = self._core
        if core.closed:
            self._check_open()
        tracker = DONE_TRACKER if track else None

        def keep() -> Any:
            object.__setattr__(self, "_send_parts", parts)  # (a list of the caller's making)
            return tracker

        if core.start_message(parts[0]):
            return self._done(keep())

        def attempt() -> Any:
            return keep() if core.start_message(parts[0]) else NOTHING

        return self._blocking(attempt, flags, core.options.sndtimeo)

    # -- state --------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def socket_type(self) -> int:
        return self._core.socket_type

    type = socket_type

    @property
    def rcvmore(self) -> int:
        return int(bool(self._recv_rest))  # 0 or 1, as pyzmq's RCVMORE

    # -- endpoints ----------------------------------------------------------------------------

    def bind(self, addr: str | bytes) -> EndpointContext:
        """The endpoint bound (its port resolved), as text; `with` unbinds it at the end."""
        self._check_open()
        endpoint = self._call_on_loop(self._endpoints.bind, endpoint_text(addr))
        self._core.process_commands()  # inproc peers waiting for this name join now
        return EndpointContext(endpoint, self, self.unbind)

    def connect(self, addr: str | bytes) -> EndpointContext:
        """The endpoint, as text; `with` disconnects it at the end."""
        self._check_open()
        text = endpoint_text(addr)
        self._call_on_loop(self._endpoints.connect, text)
        # Take the new pipe in now, so a SUB's subscriptions go out without waiting for
        # the next send or recv.
        self._core.process_commands()
        return EndpointContext(text, self, self.disconnect)

    def unbind(self, addr: str | bytes) -> None:
        self._check_open()
        self._call_on_loop(self._endpoints.remove, endpoint_text(addr))

    disconnect = unbind

    # -- draft sockets --------------------------------------------------------------------------

    def join(self, group: str | bytes) -> None:
        """DISH: receive the messages of `group` (exact name, up to 255 bytes)."""
        self._check_open()
        join = getattr(self._core, "join", None)
        if join is None:
            raise ZMQError(c.ENOTSUP, "only DISH sockets join groups")
        join(face_draft.group_bytes(group))

    def leave(self, group: str | bytes) -> None:
        """DISH: stop receiving `group`."""
        self._check_open()
        leave = getattr(self._core, "leave", None)
        if leave is None:
            raise ZMQError(c.ENOTSUP, "only DISH sockets leave groups")
        leave(face_draft.group_bytes(group))

    def connect_peer(self, addr: str | bytes) -> int:
        """PEER: connect, and return the routing id that names the new peer."""
        if self._core.socket_type != c.PEER:
            raise ZMQError(c.ENOTSUP, "only PEER sockets connect_peer")
        if self._core.options.immediate:
            raise ZMQError(c.EFAULT, "connect_peer needs IMMEDIATE off (the peer is named now)")
        self.connect(addr)
        return self._core.last_id

    def bind_to_random_port(
        self, addr: str, min_port: int = 49152, max_port: int = 65536, max_tries: int = 100
    ) -> int:
        if not addr.startswith("tcp://"):
            # What bind() would say first: a malformed address is EINVAL, a transport the
            # engine does not know EPROTONOSUPPORT (as pyzmq's bind_to_random_port passes on).
            parse_endpoint(addr, binding=True)
            # Only tcp has ports: pyzmq binds `ipc:///path:*` (a file named so) and then fails
            # reading a port from it; refused here before anything is bound.
            raise ZMQError(c.EINVAL, f"bind_to_random_port takes a tcp address, not {addr!r}")
        if min_port == 49152 and max_port == 65536:
            return int(self.bind(f"{addr}:0").rsplit(":", 1)[1])
        for _ in range(max_tries):
            port = random.randrange(min_port, max_port)
            try:
                self.bind(f"{addr}:{port}")
            except ZMQError as exc:
                if exc.errno != c.EADDRINUSE:
                    raise
                continue
            return port
        raise ZMQBindError("Could not bind socket to random port.")  # pyzmq's words

    # -- lifetime -----------------------------------------------------------------------------

    def close(self, linger: int | None = None) -> None:
        """Stop the socket's endpoints and let its connections linger; blocked calls on it
        wake with ENOTSOCK (or ETERM when the context is being terminated)."""
        core = self._core
        if core.closed or self.context._pid != os.getpid():
            # Inherited across fork(): its connections and I/O thread are the parent's, and
            # stay the parent's (libzmq's close in a child does nothing either; a wait for
            # the parent's thread here would never end).
            return
        core.closing()
        core.closed = True
        core.refresh_direct()
        if linger is None:
            linger = core.options.linger
        try:
            self._call_on_loop(self._endpoints.shutdown, linger)
        except LoopGone:
            pass  # term() in another thread got there first; its loop took the connections
        finally:
            self.context._forget(self)
            self._wake()  # whoever is blocked on this socket sees it closed
            self.disable_monitor()

    def __enter__(self) -> SocketFace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = c.SocketType(self._core.socket_type).name
        return f"<{self._face_name} {name} {'closed' if self.closed else 'open'}>"


def endpoint_text(addr: object) -> str:
    """An endpoint as text. pyzmq takes bytes too (UTF-8), and LAST_ENDPOINT is bytes there and
    here, so `connect(other.getsockopt(zmq.LAST_ENDPOINT))` must work."""
    if isinstance(addr, str):
        return addr
    if isinstance(addr, bytes):
        try:
            return addr.decode("utf-8")
        except UnicodeDecodeError:
            raise ZMQError(c.EINVAL, f"invalid endpoint {addr!r} (not UTF-8)") from None
    raise TypeError(f"Expected addr to be str, got addr={addr!r}")
