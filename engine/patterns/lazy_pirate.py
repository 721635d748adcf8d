"""Lazy Pirate (ZeroMQ Guide, chapter 4): reliable request-reply done entirely by the client.

The client waits a bounded time for each reply, resends the same request on a fresh socket after
a timeout, and gives up with `RequestFailed` after a set number of retries. On the wire it is a
plain REQ peer (`[b"", *body]` out, `[b"", *reply]` back), so any REP or ROUTER server, a Simple
or Paranoid Pirate queue included, can serve it. It uses a DEALER underneath so that a reply the
caller's validator rejects (a stale one, say) can be skipped while waiting for the right one.

`RequestAttempts` holds the retry logic with no I/O; `LazyPirateClient` (sync) and
`AsyncLazyPirateClient` (asyncio) only move its messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import Context
from .. import constants as c
from ..asyncio import Context as AsyncContext
from ..errors import Again

#: Seconds to wait for each reply: the Guide's 2.5 s tolerates a loaded server yet lets a
#: player-facing client report a dead one quickly.
REQUEST_TIMEOUT_S = 2.5
#: Resends after the first try (3 tries in all, as in the Guide): enough to ride out a restart.
REQUEST_RETRIES = 2

DELIMITER = b""

#: Decides whether a reply body answers the request; False discards it and keeps waiting.
Validator = Callable[[list[bytes]], bool]


class PatternError(Exception):
    """Base of the errors raised by the reliability patterns."""


class RequestFailed(PatternError):
    """No acceptable reply arrived after every allowed try: the server is presumed dead."""

    def __init__(self, message: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


def as_frames(frames: Sequence[bytes] | bytes) -> list[bytes]:
    """A request given as one bytes object is a one-frame message."""
    if isinstance(frames, bytes | bytearray | memoryview):
        return [bytes(frames)]
    out = [bytes(f) for f in frames]
    if not out:
        raise ValueError("a request needs at least one frame")
    return out


class RequestAttempts:
    """The state of one lazy-pirate request: tries used, the current deadline, and the check.

    Feed it the clock and what arrives; it says what to send and when to give up.
    """

    def __init__(
        self,
        frames: Sequence[bytes] | bytes,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        retries: int = REQUEST_RETRIES,
        validator: Validator | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.frames = as_frames(frames)
        self.timeout = timeout
        self.retries = retries
        self.validator = validator
        self.attempts = 0
        self.deadline = 0.0
        self.discarded = 0  # replies the validator (or the envelope check) rejected

    def start(self, now: float) -> list[bytes]:
        """Begin a try; returns the message to send (REQ framing: delimiter, then the body)."""
        self.attempts += 1
        self.deadline = now + self.timeout
        return [DELIMITER, *self.frames]

    def remaining(self, now: float) -> float:
        return max(0.0, self.deadline - now)

    def accept(self, msg: list[bytes]) -> list[bytes] | None:
        """The reply body if `msg` answers this request, else None (it is discarded)."""
        if len(msg) < 2 or msg[0] != DELIMITER:
            self.discarded += 1  # not REQ-framed: not a reply a REP/ROUTER peer would send
            return None
        body = msg[1:]
        if self.validator is not None and not self.validator(body):
            self.discarded += 1
            return None
        return body

    def timed_out(self) -> None:
        """The current try expired: raise RequestFailed if that was the last one."""
        if self.attempts > self.retries:
            raise RequestFailed(
                f"no reply after {self.attempts} tries of {self.timeout:g}s each",
                self.attempts,
            )


class _ClientBase:
    """What both faces share: settings, and the socket thrown away after each timeout."""

    _context_class: Any = Context

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        retries: int = REQUEST_RETRIES,
        validator: Validator | None = None,
        context: Any = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self.validator = validator
        self.context = context or self._context_class.instance()
        self.resets = 0  # sockets thrown away after a timeout (for monitoring)
        self._socket: Any = None

    def _connect(self) -> Any:
        if self._socket is None:
            sock = self.context.socket(c.DEALER)
            sock.linger = 0  # an unanswered request must never hold up close or exit
            sock.connect(self.endpoint)
            self._socket = sock
        return self._socket

    @staticmethod
    def _bound_sends(sock: Any, attempts: RequestAttempts) -> None:
        # A send with no peer to take it blocks (a DEALER with IMMEDIATE and nobody up, or
        # whose server refused the handshake, which ends the connection for good as in
        # libzmq): it too must end with the try, as Again, not hang the caller.
        sock.sndtimeo = max(1, int(attempts.timeout * 1000))

    def _reset(self) -> None:
        # A socket that timed out may hold a half-dead connection or a late reply: start over.
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
            self.resets += 1

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _attempts(
        self,
        frames: Sequence[bytes] | bytes,
        validator: Validator | None,
        timeout: float | None,
        retries: int | None,
    ) -> RequestAttempts:
        return RequestAttempts(
            frames,
            timeout=self.timeout if timeout is None else timeout,
            retries=self.retries if retries is None else retries,
            validator=validator or self.validator,
        )


class LazyPirateClient(_ClientBase):
    """Blocking Lazy Pirate client for one server endpoint.

    `LazyPirateClient(endpoint, *, timeout=2.5, retries=2, validator=None, context=None)`;
    `request(frames)` returns the reply body, or raises RequestFailed when every try timed out
    (`timeout` seconds each, `1 + retries` tries). Not thread-safe: one client per thread.
    """

    def request(
        self,
        frames: Sequence[bytes] | bytes,
        *,
        validator: Validator | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> list[bytes]:
        """Send `frames` (resent verbatim on each retry) and return the accepted reply body."""
        attempts = self._attempts(frames, validator, timeout, retries)
        try:
            while True:
                sock = self._connect()
                self._bound_sends(sock, attempts)
                try:
                    sock.send_multipart(attempts.start(time.monotonic()))
                except Again:
                    pass  # the try's time went in waiting to send: it timed out
                while (left := attempts.remaining(time.monotonic())) > 0:
                    if not sock.poll(max(1, int(left * 1000))):
                        continue
                    body = attempts.accept(sock.recv_multipart())
                    if body is not None:
                        return body
                self._reset()
                attempts.timed_out()
        except BaseException:
            self._reset()  # interrupted or failed: a late reply must not answer the next request
            raise

    def __enter__(self) -> LazyPirateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncLazyPirateClient(_ClientBase):
    """The asyncio Lazy Pirate client: same arguments (an asyncio Context), and
    `await client.request(frames)`. One request at a time per client.
    """

    _context_class = AsyncContext

    async def request(
        self,
        frames: Sequence[bytes] | bytes,
        *,
        validator: Validator | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> list[bytes]:
        """Send `frames` (resent verbatim on each retry) and return the accepted reply body."""
        attempts = self._attempts(frames, validator, timeout, retries)
        try:
            while True:
                sock = self._connect()
                self._bound_sends(sock, attempts)
                try:
                    await sock.send_multipart(attempts.start(time.monotonic()))
                except Again:
                    pass  # as in the sync client
                while (left := attempts.remaining(time.monotonic())) > 0:
                    if not await sock.poll(max(1, int(left * 1000))):
                        continue
                    body = attempts.accept(await sock.recv_multipart())
                    if body is not None:
                        return body
                self._reset()
                attempts.timed_out()
        except BaseException:
            self._reset()  # interrupted or failed: a late reply must not answer the next request
            raise

    async def __aenter__(self) -> AsyncLazyPirateClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
