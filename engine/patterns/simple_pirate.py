"""Simple Pirate (ZeroMQ Guide, chapter 4): a least-recently-used worker queue.

Clients (REQ or Lazy Pirate) talk to a ROUTER frontend; workers (REQ) connect to a ROUTER
backend and announce themselves with a one-frame READY (`\\x01`). Each request goes to the
worker that has waited longest; its reply is the worker's next request, which marks it ready
again. There is no heartbeating: a dead worker is noticed only when a request cannot be routed
to it, and otherwise the client's retry (Lazy Pirate) recovers. See paranoid_pirate for more.

`SimplePirateBroker` is the queue's logic without I/O; `SimplePirateQueue` and
`SimplePirateWorker` are its sync faces.

Run standalone: `python -m engine.patterns.simple_pirate queue|worker --help`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import deque
from collections.abc import Callable, Sequence

from .. import Context, Poller, Socket
from .. import constants as c
from ..errors import ZMQError
from .demo_cli import check_connect, setup_logging, startup, stop_on_signals, verbose_option

log = logging.getLogger(__name__)

#: The worker's "ready for work" frame, as in the Guide's LRU queue.
WORKER_READY = b"\x01"
#: Longest a blocking loop waits before re-checking stop(): bounds SIGTERM/SIGINT exit latency.
STOP_POLL_S = 0.2

DELIMITER = b""

#: Turns a request body into a reply body.
Handler = Callable[[list[bytes]], list[bytes]]


def echo(body: list[bytes]) -> list[bytes]:
    """The demo handler: the reply is the request."""
    return body


def split_envelope(msg: Sequence[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(address stack up to and including the first empty frame, body). No delimiter: ([], msg)."""
    try:
        i = msg.index(DELIMITER)
    except ValueError:
        return [], list(msg)
    return list(msg[: i + 1]), list(msg[i + 1 :])


def show_id(identity: bytes) -> str:
    """A routing id for logs: printable ones as text, generated (binary) ones in hex."""
    if identity.isascii() and identity.decode().isprintable():
        return identity.decode()
    return "0x" + identity.hex()


class SimplePirateBroker:
    """The queue's logic with no I/O: messages in, messages to send out.

    Frontend messages are `[client, ..., b"", *body]`; backend ones `[worker, b"", *payload]`
    (REQ workers). Outgoing backend messages are `[worker, b"", client, ..., b"", *body]`.
    """

    def __init__(self) -> None:
        self.workers: deque[bytes] = deque()  # ready workers, longest-waiting first
        self.pending: deque[list[bytes]] = deque()  # requests read but not yet dispatched

    @property
    def accepting(self) -> bool:
        """Read the frontend only when a request can go straight out (backpressure)."""
        return bool(self.workers) and not self.pending

    def from_frontend(self, msg: list[bytes]) -> list[list[bytes]]:
        """A client request; returns the backend messages to send."""
        self.pending.append(msg)
        return self.dispatch()

    def from_backend(self, msg: list[bytes]) -> tuple[list[list[bytes]], list[list[bytes]]]:
        """A worker message; returns (frontend messages, backend messages) to send."""
        if len(msg) < 3 or msg[1] != DELIMITER:
            log.warning("dropped malformed worker message (%d frames)", len(msg))
            return [], []
        worker, payload = msg[0], msg[2:]
        ready = payload == [WORKER_READY]
        if worker in self.workers:
            self.workers.remove(worker)  # a repeated READY must not double its share of work
        elif ready:
            log.info("worker-ready %s", show_id(worker))
        self.workers.append(worker)
        return ([] if ready else [payload]), self.dispatch()

    def dispatch(self) -> list[list[bytes]]:
        out = []
        while self.workers and self.pending:
            out.append([self.workers.popleft(), DELIMITER, *self.pending.popleft()])
        return out

    def unroutable(self, msg: list[bytes]) -> list[list[bytes]]:
        """A backend send found its worker gone: retry the request on the next worker."""
        log.info("worker-lost %s", show_id(msg[0]))
        self.pending.appendleft(msg[2:])
        return self.dispatch()


def _send_backend(sock: Socket, broker: SimplePirateBroker, out: list[list[bytes]]) -> None:
    while out:
        msg = out.pop(0)
        try:
            sock.send_multipart(msg, c.DONTWAIT)
        except ZMQError as exc:  # EAGAIN: not reading; EHOSTUNREACH: gone. Dead either way.
            if exc.errno not in (c.EAGAIN, c.EHOSTUNREACH):
                raise
            out.extend(broker.unroutable(msg))


class QueueSockets:
    """What both Pirate queues share: a client ROUTER and a worker ROUTER, bound at once."""

    def __init__(self, frontend: str, backend: str, context: Context | None) -> None:
        self.context = context or Context.instance()
        self.frontend = self.context.socket(c.ROUTER)
        self.backend = self.context.socket(c.ROUTER)
        for sock in (self.frontend, self.backend):
            sock.linger = 0
        # Sends to a vanished worker must fail loudly, so the request can go to another one.
        self.backend.setsockopt(c.ROUTER_MANDATORY, 1)
        self.frontend_endpoint = self.frontend.bind(frontend)
        self.backend_endpoint = self.backend.bind(backend)
        self._running = False

    def _pollers(self) -> tuple[Poller, Poller]:
        """(backend only, both): the frontend is read only while requests are accepted."""
        log.info("listening frontend=%s backend=%s", self.frontend_endpoint, self.backend_endpoint)
        backend_only, both = Poller(), Poller()
        backend_only.register(self.backend, c.POLLIN)
        both.register(self.backend, c.POLLIN)
        both.register(self.frontend, c.POLLIN)
        return backend_only, both

    def stop(self) -> None:
        """Ask run() to return; safe from a signal handler."""
        self._running = False

    def close(self) -> None:
        self.frontend.close(linger=0)
        self.backend.close(linger=0)


class SimplePirateQueue(QueueSockets):
    """The sync queue: binds both ROUTERs at construction, then `run()` until `stop()`."""

    def __init__(self, frontend: str, backend: str, *, context: Context | None = None) -> None:
        super().__init__(frontend, backend, context)
        self.broker = SimplePirateBroker()

    def run(self) -> None:
        self._running = True
        broker, frontend, backend = self.broker, self.frontend, self.backend
        backend_only, both = self._pollers()
        while self._running:
            poller = both if broker.accepting else backend_only
            events = dict(poller.poll(STOP_POLL_S * 1000))
            if backend in events:
                replies, out = broker.from_backend(backend.recv_multipart())
                for reply in replies:
                    frontend.send_multipart(reply, c.DONTWAIT)  # ROUTER drops it if unroutable
                _send_backend(backend, broker, out)
            if frontend in events and broker.accepting:
                _send_backend(backend, broker, broker.from_frontend(frontend.recv_multipart()))


class SimplePirateWorker:
    """A REQ worker: READY, then answer each request with `handler(body)` until `stop()`."""

    def __init__(
        self,
        backend: str,
        handler: Handler = echo,
        *,
        identity: bytes | None = None,
        context: Context | None = None,
    ) -> None:
        self.backend = backend
        self.handler = handler
        self.identity = identity
        self.context = context or Context.instance()
        self.handled = 0
        self._running = False

    def run(self) -> None:
        sock = self.context.socket(c.REQ)
        sock.linger = 0
        if self.identity:
            sock.setsockopt(c.ROUTING_ID, self.identity)
        sock.connect(self.backend)
        self._running = True
        try:
            sock.send(WORKER_READY)
            while self._running:
                if not sock.poll(STOP_POLL_S * 1000):
                    continue
                envelope, body = split_envelope(sock.recv_multipart())
                if not envelope:
                    log.warning("dropped request with no client envelope")
                    sock.send(WORKER_READY)  # keep the REQ dialog going
                    continue
                sock.send_multipart(envelope + list(self.handler(body)))
                self.handled += 1
        finally:
            sock.close(linger=0)

    def stop(self) -> None:
        self._running = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.patterns.simple_pirate", description=__doc__.split("\n\n")[0]
    )
    common = verbose_option()
    sub = parser.add_subparsers(dest="role", required=True)
    q = sub.add_parser("queue", parents=[common], help="run the LRU queue")
    q.add_argument("--frontend", default="tcp://*:5555", help="endpoint clients connect to")
    q.add_argument("--backend", default="tcp://*:5556", help="endpoint workers connect to")
    w = sub.add_parser("worker", parents=[common], help="run an echo worker")
    w.add_argument("--backend", default="tcp://localhost:5556", help="the queue's backend")
    w.add_argument("--identity", help="routing id to use (default: assigned by the queue)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ctx = Context()
    try:
        # Start-up only: an error while serving keeps its traceback (see demo_cli).
        if args.role == "queue":
            with startup(parser.prog, args.frontend, args.backend):
                server: SimplePirateQueue | SimplePirateWorker = SimplePirateQueue(
                    args.frontend, args.backend, context=ctx
                )
        else:
            identity = args.identity.encode() if args.identity else None
            with startup(parser.prog, args.backend):
                check_connect(args.backend, routing_id=identity)  # run() connects: check first
            server = SimplePirateWorker(args.backend, identity=identity, context=ctx)
            log.info("worker connecting to %s", args.backend)
        stop_on_signals(server.stop)
        try:
            server.run()
        finally:
            if isinstance(server, SimplePirateQueue):
                server.close()
    finally:
        ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
