"""The sync face: pyzmq's blocking Context and Socket over the shared socket core.

Sockets live on an I/O thread's loop (background I/O, as libzmq); the user's thread calls the
core's non-blocking operations directly and, only when one would block, sleeps on the socket's
eventfd until the I/O thread signals a change. A burst of messages costs one such wake-up.
"""

from __future__ import annotations

import atexit
import os
import struct
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from . import constants as c
from . import transport
from .context import IOContext
from .errors import Again, ContextTerminated, ZMQError
from .face import SocketFace, as_frame
from .iothread import IOThread, IOThreadStopped, Signal

#: At interpreter exit, sockets left open get at most this long to flush, so exit never hangs.
EXIT_LINGER_MS = 1000
#: How often term() looks at whether lingering connections have finished.
TERM_POLL_S = 0.005


class MessageTracker:
    """pyzmq's tracker for `track=True`; frames are always copied here, so it is done at once."""

    done = True

    def wait(self, timeout: float | None = None) -> None:
        return None


_TRACKER = MessageTracker()


class Socket(SocketFace):
    """A blocking socket, driven from one thread at a time (sockets are not thread-safe)."""

    _face_name = "engine.Socket"

    def __init__(self, context: Context, socket_type: int) -> None:
        io = context._io_thread()
        core = context._io.create_socket(socket_type, io.loop, same_thread=False)
        super().__init__(core)
        signal = Signal()
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "_io_thread", io)
        object.__setattr__(self, "_signal", signal)
        core.set_waker(signal.set)
        for option, value in context._defaults.items():
            self.setsockopt(option, value)

    # -- waiting ------------------------------------------------------------------------------

    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._io_thread.call(fn, *args)

    def _wait(self, attempt: Callable[[], Any], flags: int, timeout_ms: int) -> Any:
        """Retry a non-blocking attempt at each change until it succeeds or times out."""
        if flags & c.DONTWAIT:
            raise Again()
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        signal, core = self._signal, self._core
        while True:
            signal.clear()
            core.arm()
            result = attempt()  # re-check after arming, or a wake-up could slip past
            if result is not None:
                return result
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise Again()
            signal.wait(remaining)
            self._check_open()

    def _check_open(self) -> None:
        if self._core.closed:
            if self.context._io.terminated:
                raise ContextTerminated()
            raise ZMQError(c.ENOTSOCK, "socket is closed")

    # -- sending and receiving ------------------------------------------------------------------

    def send(self, data: Any, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        if flags or self._send_parts or type(data) is not bytes:
            msg = self._gather(data, flags)
            if msg is None:
                return _TRACKER if track else None
        else:
            msg = [data]  # the common case: one bytes frame, no flags
        core = self._core
        if core.closed:
            self._check_open()
        if not core.send(msg):
            self._wait(lambda: True if core.send(msg) else None, flags, core.options.sndtimeo)
        return _TRACKER if track else None

    def send_multipart(self, msg_parts: Sequence[Any], flags: int = 0, **kw: Any) -> Any:
        msg = [as_frame(p) for p in msg_parts]
        if not msg:
            raise ZMQError(c.EINVAL, "cannot send an empty multipart message")
        if self._send_parts:
            msg = self._send_parts + msg
            object.__setattr__(self, "_send_parts", [])
        self._send_whole(msg, flags)
        return _TRACKER if kw.get("track") else None

    def _send_whole(self, msg: list[bytes], flags: int) -> None:
        core = self._core
        if core.closed:
            self._check_open()
        if not core.send(msg):
            self._wait(lambda: True if core.send(msg) else None, flags, core.options.sndtimeo)

    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        if self._recv_rest:
            return self._next_rest_frame(copy)
        core = self._core
        msg = None if core.closed else core.recv()
        if msg is None:
            msg = self._recv_blocking(flags)
        if copy and len(msg) == 1:
            return msg[0]
        return self._first_frame(msg, copy)

    def recv_multipart(self, flags: int = 0, copy: bool = True, track: bool = False) -> list:
        if self._recv_rest:
            rest = self._recv_rest
            object.__setattr__(self, "_recv_rest", [])
            return self._frames_out(rest, copy)
        core = self._core
        msg = None if core.closed else core.recv()
        if msg is None:
            msg = self._recv_blocking(flags)
        return self._frames_out(msg, copy)

    def _recv_blocking(self, flags: int) -> list[bytes]:
        self._check_open()
        core = self._core
        return self._wait(core.recv, flags, core.options.rcvtimeo)

    def _deserialize(self, result: Any, load: Callable[[Any], Any]) -> Any:
        return load(result)

    def poll(self, timeout: int | None = None, flags: int = c.POLLIN) -> int:
        """The events among `flags` that are ready, waiting up to `timeout` ms (None: forever)."""
        self._check_open()
        ready = self._events() & flags
        if ready or timeout == 0:
            return ready
        try:
            return self._wait(lambda: self._events() & flags or None, 0, _ms(timeout))
        except Again:
            return 0

    def _fd(self) -> int:
        # pyzmq's FD: readable when the socket's state may have changed; then read EVENTS.
        self._signal.clear()
        self._core.arm()
        return self._signal.fd

    # -- monitoring -----------------------------------------------------------------------------

    def get_monitor_socket(self, events: int = c.EVENT_ALL, addr: str | None = None) -> Socket:
        """A PAIR socket receiving this socket's events (see `recv_monitor_message`)."""
        self._check_open()
        addr = addr or f"inproc://monitor.{id(self):x}.{time.monotonic_ns():x}"
        sink = self.context.socket(c.PAIR)
        sink.bind(addr)
        sink.linger = 0
        watcher = self.context.socket(c.PAIR)
        watcher.connect(addr)
        sink_core = sink._core
        pack = struct.Struct("<HI").pack

        def report(event: int, value: int, endpoint: str) -> None:
            # Runs on the I/O thread, the only user of the sink socket.
            if event & events and not sink_core.closed:
                sink_core.send([pack(event, value & 0xFFFFFFFF), endpoint.encode()])

        self._core.monitor = report
        object.__setattr__(self, "_monitor_sink", sink)
        return watcher

    def disable_monitor(self) -> None:
        self._core.monitor = None
        sink = self.__dict__.get("_monitor_sink")
        if sink is not None:
            sink.close()

    # -- lifetime -------------------------------------------------------------------------------

    def close(self, linger: int | None = None) -> None:
        core = self._core
        if core.closed:
            return
        core.closed = True
        if linger is None:
            linger = core.options.linger
        try:
            self._io_thread.call(transport.shutdown, core, linger)
        except IOThreadStopped:
            pass  # term() in another thread got there first; its loop took the connections
        finally:
            self.context._io.forget(core)
            self._signal.set()  # wake any thread blocked on this socket
            sink = self.__dict__.get("_monitor_sink")
            if sink is not None:
                sink.close()

    def __del__(self) -> None:
        try:
            if not self._core.closed and not self.context._io.terminated:
                self.close()
            self._signal.close()
        except Exception:
            pass  # interpreter shutdown, or a half-built socket


def _ms(timeout: float | None) -> int:
    return -1 if timeout is None or timeout < 0 else int(timeout)


class Context:
    """Owns the I/O threads; sockets of one context can talk over inproc:// across threads."""

    _instance: Context | None = None
    _instance_pid = -1
    _socket_class = Socket

    def __init__(self, io_threads: int = 1, **kwargs: Any) -> None:
        self._io = IOContext()
        self._threads = [IOThread(f"engine-io-{i}") for i in range(max(1, io_threads))]
        self._next = 0
        self._sockets: weakref.WeakSet[Socket] = weakref.WeakSet()
        self._defaults: dict[int, Any] = {}
        self._pid = os.getpid()
        _contexts.add(self)

    @classmethod
    def instance(cls, io_threads: int = 1) -> Context:
        """The process-wide context; a forked child gets a fresh one."""
        inst = cls._instance
        if inst is None or inst.closed or cls._instance_pid != os.getpid():
            inst = cls(io_threads)
            cls._instance = inst
            cls._instance_pid = os.getpid()
        return inst

    def _io_thread(self) -> IOThread:
        if self._io.terminated:
            raise ContextTerminated()
        io = self._threads[self._next % len(self._threads)]
        self._next += 1
        io.start()
        return io

    @property
    def closed(self) -> bool:
        return self._io.terminated

    def socket(self, socket_type: int, socket_class: type | None = None, **options: Any) -> Any:
        cls = socket_class or self._socket_class
        sock = cls(self, socket_type)
        for name, value in options.items():
            setattr(sock, name, value)
        self._sockets.add(sock)
        return sock

    # -- options --------------------------------------------------------------------------------

    def set(self, option: int, value: Any) -> None:
        if option == c.IO_THREADS:
            if any(t._started for t in self._threads):
                raise ZMQError(c.EINVAL, "IO_THREADS must be set before creating sockets")
            self._threads = [IOThread(f"engine-io-{i}") for i in range(max(1, int(value)))]
        elif option in (c.MAX_SOCKETS, c.SOCKET_LIMIT):
            self._io.max_sockets = int(value)
        elif option == c.BLOCKY:
            pass
        else:
            self._defaults[option] = value  # a default for sockets created from now on

    def get(self, option: int) -> Any:
        if option == c.IO_THREADS:
            return len(self._threads)
        if option in (c.MAX_SOCKETS, c.SOCKET_LIMIT):
            return self._io.max_sockets
        return self._defaults.get(option, 0)

    setsockopt = set
    getsockopt = get

    def __setattr__(self, name: str, value: Any) -> None:
        option = getattr(c, name.upper(), None) if not name.startswith("_") else None
        if isinstance(option, int) and name.upper() in c.SocketOption.__members__:
            self._defaults[option] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        option = getattr(c, name.upper(), None) if not name.startswith("_") else None
        if isinstance(option, int) and option in self.__dict__.get("_defaults", {}):
            return self._defaults[option]
        raise AttributeError(name)

    # -- lifetime -------------------------------------------------------------------------------

    def term(self) -> None:
        """Close what is left open (blocked calls in other threads raise ETERM), let lingering
        messages go out, and stop the I/O threads."""
        self._shutdown(None)

    def destroy(self, linger: int | None = None) -> None:
        """term(), closing every socket with `linger` (None: each socket's own LINGER)."""
        self._shutdown(linger)

    def _shutdown(self, linger: int | None, max_linger_ms: int | None = None) -> None:
        if self._io.terminated:
            return
        self._io.terminated = True  # first, so that calls woken by the closes see ETERM
        for sock in list(self._sockets):
            if sock.closed:
                continue
            ms = sock._core.options.linger if linger is None else linger
            if max_linger_ms is not None and (ms < 0 or ms > max_linger_ms):
                ms = max_linger_ms
            sock.close(ms)
        self._await_lingering()
        for io in self._threads:
            io.stop()
        _contexts.discard(self)

    def _await_lingering(self) -> None:
        for io in self._threads:
            if not io._started:
                continue
            while io.call(_has_links, io):
                time.sleep(TERM_POLL_S)

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.term()

    def __repr__(self) -> str:
        return f"<engine.Context {'terminated' if self.closed else 'open'}>"


def _has_links(io: IOThread) -> bool:
    """Runs on the loop: is any connection of a socket on `io` still open (lingering)?"""
    for ctx in list(_contexts):
        for sock in list(ctx._sockets):
            if sock._io_thread is io and sock._core.links:
                return True
    return False


_contexts: weakref.WeakSet[Context] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The parent's I/O threads do not exist in the child: forget its contexts.
    Context._instance = None
    _contexts.clear()


def _at_exit() -> None:
    for ctx in list(_contexts):
        if ctx._pid == os.getpid():
            try:
                ctx._shutdown(None, max_linger_ms=EXIT_LINGER_MS)
            except Exception:
                pass


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
