"""Majordomo client API (RFC 7, MDP/Client): one request, one reply, with timeout and retries.

Both faces use a DEALER and, after a timeout, retry on a fresh socket: the broker addresses
replies by socket, so a late answer to an abandoned attempt can never pass for the next reply.
"""

from __future__ import annotations

import logging
import time

import engine
import engine.asyncio

from .majordomo_common import (
    CLIENT_RETRIES,
    CLIENT_TIMEOUT_MS,
    Frames,
    RequestTimeout,
    as_bytes,
    body_frames,
    client_request,
    ms_until,
    parse_client_reply,
)

log = logging.getLogger(__name__)


class _ClientBase:
    """What both faces share: settings, request framing and the give-up error."""

    def __init__(self, broker: str, timeout_ms: int, retries: int) -> None:
        if timeout_ms <= 0 or retries < 0:
            raise ValueError("timeout_ms must be positive and retries non-negative")
        self.broker = broker
        self.timeout = timeout_ms / 1000
        self.retries = retries

    @staticmethod
    def _frame(service: str | bytes, body: tuple[bytes | str, ...]) -> tuple[bytes, Frames]:
        if not body:
            raise ValueError("a request needs at least one body frame")
        name = as_bytes(service)
        return name, client_request(name, body_frames(body))

    def _give_up(self, service: bytes) -> RequestTimeout:
        attempts = self.retries + 1
        return RequestTimeout(f"no reply from {service!r} after {attempts} attempt(s)")


class MajordomoClient(_ClientBase):
    """Blocking client: `reply = client.request("echo", b"hi")`; raises RequestTimeout."""

    def __init__(
        self,
        broker: str,
        *,
        timeout_ms: int = CLIENT_TIMEOUT_MS,
        retries: int = CLIENT_RETRIES,
        context: engine.Context | None = None,
    ) -> None:
        super().__init__(broker, timeout_ms, retries)
        self._context = context or engine.Context.instance()
        self._socket: engine.Socket | None = None

    def _open(self) -> engine.Socket:
        if self._socket is None:
            self._socket = self._context.socket(engine.DEALER)
            self._socket.linger = 0
            self._socket.connect(self.broker)
        return self._socket

    def _drop(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def request(self, service: str | bytes, *body: bytes | str) -> Frames:
        """Send `body` to `service` and return the reply's body frames."""
        name, frames = self._frame(service, body)
        for attempt in range(self.retries + 1):
            sock = self._open()
            sock.send_multipart(frames)
            deadline = time.monotonic() + self.timeout
            while (wait := ms_until(deadline, time.monotonic())) > 0 and sock.poll(wait):
                reply = parse_client_reply(sock.recv_multipart(), name)
                if reply is not None:
                    return reply  # anything else on the socket is not MDP: dropped
            log.info("no reply from %r (attempt %d): retrying on a new socket", name, attempt + 1)
            self._drop()
        raise self._give_up(name)

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> MajordomoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMajordomoClient(_ClientBase):
    """asyncio client: `reply = await client.request("echo", b"hi")`; raises RequestTimeout."""

    def __init__(
        self,
        broker: str,
        *,
        timeout_ms: int = CLIENT_TIMEOUT_MS,
        retries: int = CLIENT_RETRIES,
        context: engine.asyncio.Context | None = None,
    ) -> None:
        super().__init__(broker, timeout_ms, retries)
        self._context = context or engine.asyncio.Context.instance()
        self._socket: engine.asyncio.Socket | None = None

    def _open(self) -> engine.asyncio.Socket:
        if self._socket is None:
            self._socket = self._context.socket(engine.DEALER)
            self._socket.linger = 0
            self._socket.connect(self.broker)
        return self._socket

    def _drop(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    async def request(self, service: str | bytes, *body: bytes | str) -> Frames:
        """Send `body` to `service` and return the reply's body frames."""
        name, frames = self._frame(service, body)
        for attempt in range(self.retries + 1):
            sock = self._open()
            await sock.send_multipart(frames)
            deadline = time.monotonic() + self.timeout
            while (wait := ms_until(deadline, time.monotonic())) > 0 and await sock.poll(wait):
                reply = parse_client_reply(await sock.recv_multipart(), name)
                if reply is not None:
                    return reply
            log.info("no reply from %r (attempt %d): retrying on a new socket", name, attempt + 1)
            self._drop()
        raise self._give_up(name)

    def close(self) -> None:
        self._drop()

    async def __aenter__(self) -> AsyncMajordomoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
