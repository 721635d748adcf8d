"""Binary Star: a primary/backup server pair with client-driven failover (ZeroMQ Guide, ch. 4).

Each server publishes its state every heartbeat over PUB and listens to its peer's over SUB. The
finite-state machine is the Guide's: a passive server takes over only when a client request
arrives after the peer has been silent for two heartbeats, so a mere network partition with no
clients behind it never yields two active servers; "dual active" and "dual passive" are fatal.

`BinaryStarFSM` is sans-I/O; `BinaryStarServer` is a sync reactor around it (ROUTER frontend);
`BinaryStarClient` / `AsyncBinaryStarClient` are Lazy-Pirate clients that switch server on
timeout. The state message on the wire is the state number in ASCII, as in the Guide's servers.
Run standalone: `python -m engine.patterns.binary_star --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any

import engine as zmq
import engine.asyncio as azmq

from .demo_cli import positive, startup

log = logging.getLogger(__name__)

#: How often each server publishes its state: the Guide's value, cheap and quick enough.
HEARTBEAT_S = 1.0
#: A peer silent for this many heartbeats counts as dead (the Guide's rule).
PEER_EXPIRY_HEARTBEATS = 2
#: How long a client waits for a reply before it gives up on the server it is talking to.
REQUEST_TIMEOUT_S = 1.0
#: Pause before retrying on the other server: longer than the peer expiry (2 heartbeats), so a
#: backup has seen the primary die by the time our retry reaches it and accepts it.
SETTLE_DELAY_S = 2.5
#: A client gives up (TimeoutError) when no server has answered one request for this long.
PATIENCE_S = 30.0
#: Client requests handled per reactor pass before state traffic gets its turn again.
MAX_BATCH = 100
#: Process exit status of the standalone server on a fatal dual active/passive condition.
EXIT_FATAL = 2


class State(IntEnum):
    PRIMARY = 1  # primary, waiting for its peer
    BACKUP = 2  # backup, waiting for its peer
    ACTIVE = 3  # serving clients
    PASSIVE = 4  # standing by; rejects clients while the peer lives


class Event(IntEnum):
    # The first four equal the peer's State: a state message is an event.
    PEER_PRIMARY = 1
    PEER_BACKUP = 2
    PEER_ACTIVE = 3
    PEER_PASSIVE = 4
    CLIENT_REQUEST = 5


class BinaryStarFatal(RuntimeError):
    """Both servers active (split brain) or both passive (nobody serves): the pair is broken."""


S, E = State, Event
#: Peer events that move us to a new state; pairs not listed leave the state as it is.
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.PRIMARY, E.PEER_BACKUP): S.ACTIVE,  # the backup is up and waiting: we lead
    (S.PRIMARY, E.PEER_ACTIVE): S.PASSIVE,  # the backup took over while we were away
    (S.BACKUP, E.PEER_ACTIVE): S.PASSIVE,
    (S.PASSIVE, E.PEER_PRIMARY): S.ACTIVE,  # the peer restarted and will go passive
    (S.PASSIVE, E.PEER_BACKUP): S.ACTIVE,
}
FATAL: dict[tuple[State, Event], str] = {
    (S.ACTIVE, E.PEER_ACTIVE): "dual active (split brain)",
    (S.PASSIVE, E.PEER_PASSIVE): "dual passive (nobody serves)",
}
del S, E


class BinaryStarFSM:
    """The Guide's Binary Star state machine, fed events and the current time; no I/O."""

    def __init__(self, primary: bool, heartbeat: float = HEARTBEAT_S) -> None:
        self.state = State.PRIMARY if primary else State.BACKUP
        self.heartbeat = heartbeat
        #: When the peer counts as dead; 0 until we first hear from it.
        self.peer_expiry = 0.0

    @property
    def active(self) -> bool:
        return self.state is State.ACTIVE

    def on_event(self, event: Event, now: float) -> bool:
        """Apply one event; True if accepted (for CLIENT_REQUEST: serve it, else drop it).

        Raises BinaryStarFatal on dual active / dual passive.
        """
        event = Event(event)
        if event is Event.CLIENT_REQUEST:
            return self._client_request(now)
        reason = FATAL.get((self.state, event))
        if reason is not None:
            raise BinaryStarFatal(reason)
        self.state = TRANSITIONS.get((self.state, event), self.state)
        self.peer_expiry = now + PEER_EXPIRY_HEARTBEATS * self.heartbeat
        return True

    def _client_request(self, now: float) -> bool:
        if self.state in (State.PRIMARY, State.ACTIVE):
            return True
        if self.state is State.PASSIVE and self.peer_expiry and now >= self.peer_expiry:
            # The peer went silent and a client came to us: that client could not reach it
            # either, so it really is gone. Silence alone (a partition) is not enough.
            self.state = State.ACTIVE
            return True
        return False  # a waiting backup, or a passive one whose peer still lives

    def on_peer_message(self, payload: bytes, now: float) -> bool:
        """A state message from the peer; False (ignored) if it is not one."""
        try:
            event = Event(int(payload.decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            return False
        if event is Event.CLIENT_REQUEST:
            return False  # not a state: a confused or hostile sender
        return self.on_event(event, now)

    def state_message(self) -> bytes:
        return str(int(self.state)).encode("ascii")


# -- server ---------------------------------------------------------------------------------------

#: Takes a request's body frames and returns the reply's (None: send no reply).
Handler = Callable[[list[bytes]], list[bytes] | None]


def echo(body: list[bytes]) -> list[bytes]:
    return body


def split_envelope(msg: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """ROUTER message -> (envelope to send back, body): REQ peers put an empty frame between."""
    for i in range(1, len(msg)):
        if not msg[i]:
            return msg[: i + 1], msg[i + 1 :]
    return msg[:1], msg[1:]


class BinaryStarServer:
    """A sync Binary Star reactor: state PUB/SUB plus a ROUTER frontend served by `handler`.

    `status`, if given, is a REP endpoint answering any request with the state's name; it
    bypasses the FSM, so asking never counts as a client request.
    """

    def __init__(
        self,
        primary: bool,
        frontend: str,
        statepub: str,
        statesub: str,
        handler: Handler = echo,
        *,
        heartbeat: float = HEARTBEAT_S,
        status: str | None = None,
        context: zmq.Context | None = None,
        on_state: Callable[[State], None] | None = None,
    ) -> None:
        self.fsm = BinaryStarFSM(primary, heartbeat)
        self.handler = handler
        self.on_state = on_state
        self._ctx = context or zmq.Context.instance()
        self._stopping = False
        self.frontend = self._ctx.socket(zmq.ROUTER, linger=0)
        self.statepub = self._ctx.socket(zmq.PUB, linger=0)
        self.statesub = self._ctx.socket(zmq.SUB, linger=0)
        self.status = self._ctx.socket(zmq.REP, linger=0) if status else None
        self.statesub.subscribe(b"")
        self.frontend_endpoint = self.frontend.bind(frontend)
        self.statepub_endpoint = self.statepub.bind(statepub)
        self.statesub.connect(statesub)
        self.status_endpoint = self.status.bind(status) if status and self.status else None

    @property
    def state(self) -> State:
        return self.fsm.state

    def stop(self) -> None:
        """Ask run() to return; safe from other threads and signal handlers."""
        self._stopping = True

    def run(self) -> int:
        """Serve until stop(); returns 0, or EXIT_FATAL on dual active/passive."""
        poller = zmq.Poller()
        for sock in (self.frontend, self.statesub, self.status):
            if sock is not None:
                poller.register(sock, zmq.POLLIN)
        next_beat = time.monotonic()  # announce ourselves at once
        try:
            while not self._stopping:
                wait_ms = max(0, int((next_beat - time.monotonic()) * 1000))
                ready = dict(poller.poll(wait_ms))
                before = self.fsm.state
                # Peer state first, so a client request is judged on the freshest news.
                if self.statesub in ready:
                    self._drain_peer()
                if self.frontend in ready:
                    self._serve_clients()
                if self.status is not None and self.status in ready:
                    self._answer_status()
                now = time.monotonic()
                if self.fsm.state is not before:
                    self._announce()
                    next_beat = now  # tell the peer about the change without waiting
                if now >= next_beat:
                    self.statepub.send(self.fsm.state_message())
                    next_beat = now + self.fsm.heartbeat
        except BinaryStarFatal as exc:
            log.error("binary star: fatal: %s", exc)
            return EXIT_FATAL
        return 0

    def _announce(self) -> None:
        log.info("binary star: now %s", self.fsm.state.name)
        if self.on_state is not None:
            self.on_state(self.fsm.state)

    def _drain_peer(self) -> None:
        while True:
            try:
                msg = self.statesub.recv_multipart(zmq.DONTWAIT)
            except zmq.Again:
                return
            if len(msg) == 1:
                self.fsm.on_peer_message(msg[0], time.monotonic())

    def _serve_clients(self) -> None:
        for _ in range(MAX_BATCH):
            try:
                msg = self.frontend.recv_multipart(zmq.DONTWAIT)
            except zmq.Again:
                return
            envelope, body = split_envelope(msg)
            if not body:
                continue  # nothing to answer
            if not self.fsm.on_event(Event.CLIENT_REQUEST, time.monotonic()):
                continue  # passive: dropping it makes the client try the other server
            try:
                reply = self.handler(body)
            except Exception:
                log.exception("binary star: request handler failed; request dropped")
                continue
            if reply is not None:
                self.frontend.send_multipart(envelope + list(reply))

    def _answer_status(self) -> None:
        assert self.status is not None
        try:
            self.status.recv_multipart(zmq.DONTWAIT)
        except zmq.Again:
            return
        self.status.send(self.fsm.state.name.encode())

    def close(self) -> None:
        for sock in (self.frontend, self.statepub, self.statesub, self.status):
            if sock is not None:
                sock.close(linger=0)


# -- clients --------------------------------------------------------------------------------------


class Failover:
    """Which server a client talks to, and the switch on a timeout; shared by both faces."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        if not endpoints:
            raise ValueError("need at least one server endpoint")
        self.endpoints = list(endpoints)
        self.index = 0
        self.failovers = 0

    @property
    def current(self) -> str:
        return self.endpoints[self.index]

    def switch(self) -> str:
        self.index = (self.index + 1) % len(self.endpoints)
        self.failovers += 1
        return self.current


class _ClientBase:
    def __init__(
        self,
        primary: str,
        backup: str,
        timeout: float,
        settle: float,
        patience: float,
    ) -> None:
        self.failover = Failover([primary, backup])
        self.timeout = timeout
        self.settle = settle
        self.patience = patience

    @property
    def server(self) -> str:
        """The endpoint of the server currently in use."""
        return self.failover.current

    def _check_budget(self, give_up: float) -> None:
        if time.monotonic() + self.settle >= give_up:
            raise TimeoutError(f"no Binary Star server answered within {self.patience} s")


class BinaryStarClient(_ClientBase):
    """Lazy-Pirate client for a Binary Star pair: on a timeout it drops its REQ socket (and the
    request), waits `settle` seconds and resends to the other server."""

    def __init__(
        self,
        primary: str,
        backup: str,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        settle: float = SETTLE_DELAY_S,
        patience: float = PATIENCE_S,
        context: zmq.Context | None = None,
    ) -> None:
        super().__init__(primary, backup, timeout, settle, patience)
        self._ctx = context or zmq.Context.instance()
        self._sock: Any = None

    def request(self, *frames: bytes) -> list[bytes]:
        """Send one request; returns the reply, failing over as needed (TimeoutError at last)."""
        give_up = time.monotonic() + self.patience
        while True:
            if self._sock is None:
                self._sock = self._ctx.socket(zmq.REQ, linger=0)
                self._sock.connect(self.server)
            self._sock.send_multipart(list(frames))
            if self._sock.poll(int(self.timeout * 1000)):
                return self._sock.recv_multipart()
            self._drop_socket()  # a REQ that lost its reply cannot send again
            self._check_budget(give_up)
            self.failover.switch()
            time.sleep(self.settle)

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def close(self) -> None:
        self._drop_socket()


class AsyncBinaryStarClient(_ClientBase):
    """BinaryStarClient on asyncio: `await client.request(b"...")`."""

    def __init__(
        self,
        primary: str,
        backup: str,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        settle: float = SETTLE_DELAY_S,
        patience: float = PATIENCE_S,
        context: azmq.Context | None = None,
    ) -> None:
        super().__init__(primary, backup, timeout, settle, patience)
        self._ctx = context or azmq.Context.instance()
        self._sock: Any = None

    async def request(self, *frames: bytes) -> list[bytes]:
        give_up = time.monotonic() + self.patience
        while True:
            if self._sock is None:
                self._sock = self._ctx.socket(zmq.REQ, linger=0)
                self._sock.connect(self.server)
            await self._sock.send_multipart(list(frames))
            if await self._sock.poll(int(self.timeout * 1000)):
                return await self._sock.recv_multipart()
            self._drop_socket()
            self._check_budget(give_up)
            self.failover.switch()
            await asyncio.sleep(self.settle)

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def close(self) -> None:
        self._drop_socket()


# -- standalone echo server -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.patterns.binary_star",
        description="A Binary Star echo server (one of a primary/backup pair).",
    )
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--primary", action="store_true", help="run as the primary")
    role.add_argument("--backup", action="store_true", help="run as the backup")
    parser.add_argument("--frontend", required=True, help="ROUTER endpoint to bind for clients")
    parser.add_argument("--statepub", required=True, help="PUB endpoint to bind for our state")
    parser.add_argument("--statesub", required=True, help="the peer's statepub, to connect to")
    parser.add_argument("--status", help="optional REP endpoint that answers the state's name")
    parser.add_argument(
        "--heartbeat", type=positive(float), default=HEARTBEAT_S, help="state period in seconds"
    )
    args = parser.parse_args(argv)

    def report(state: State) -> None:
        print(f"STATE {state.name}", flush=True)

    endpoints = [args.frontend, args.statepub, args.statesub] + (
        [args.status] if args.status else []
    )
    # Start-up only: an error while serving keeps its traceback (see demo_cli).
    with startup(parser.prog, *endpoints):
        server = BinaryStarServer(
            args.primary,
            args.frontend,
            args.statepub,
            args.statesub,
            heartbeat=args.heartbeat,
            status=args.status,
            on_state=report,
        )
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    role_name = "primary" if args.primary else "backup"
    print(
        f"READY {role_name} frontend={server.frontend_endpoint} "
        f"status={server.status_endpoint or '-'}",
        flush=True,
    )
    report(server.state)
    try:
        code = server.run()
    except KeyboardInterrupt:
        code = 0
    if code == EXIT_FATAL:
        print("FATAL dual active or dual passive: exiting", flush=True)
    server.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
