"""Majordomo (ZeroMQ RFC 7, MDP/0.1) wire vocabulary, timing defaults and small loop helpers.

Everything that knows how an MDP frame looks lives here, so the broker, client and worker (and
their sync and asyncio faces) encode and validate messages in exactly one way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

Frames = list[bytes]

# -- protocol headers and commands (RFC 7) ------------------------------------------------------

CLIENT_HEADER = b"MDPC01"
WORKER_HEADER = b"MDPW01"

READY = b"\x01"
REQUEST = b"\x02"
REPLY = b"\x03"
HEARTBEAT = b"\x04"
DISCONNECT = b"\x05"
COMMAND_NAMES = {
    READY: "READY",
    REQUEST: "REQUEST",
    REPLY: "REPLY",
    HEARTBEAT: "HEARTBEAT",
    DISCONNECT: "DISCONNECT",
}

#: RFC 8: services in this namespace belong to the broker itself.
MMI_PREFIX = b"mmi."
MMI_SERVICE = b"mmi.service"
MMI_FOUND = b"200"
MMI_NOT_FOUND = b"404"
MMI_NOT_IMPLEMENTED = b"501"

#: Service names are "printable strings"; a cap keeps a hostile peer from bloating broker state.
MAX_SERVICE_NAME = 255

# -- timing defaults ------------------------------------------------------------------------------

#: Heartbeat period shared by broker and workers; the Guide's value, cheap yet quick to notice.
HEARTBEAT_INTERVAL_MS = 2500
#: Silent intervals before a peer is declared dead (RFC 7 suggests 3-5).
HEARTBEAT_LIVENESS = 3
#: Pause before a worker reconnects, so a broker that keeps refusing it is not hammered.
RECONNECT_DELAY_MS = 2500
#: How long a client waits for one reply before retrying on a fresh socket.
CLIENT_TIMEOUT_MS = 2500
#: Extra attempts after the first; three tries in all, as the Guide's client does.
CLIENT_RETRIES = 2
#: Queued requests older than this are dropped: their client has long since given up.
REQUEST_TTL_MS = 30_000
#: Upper bound on requests queued in the broker, so a flood cannot exhaust its memory.
MAX_QUEUED_REQUESTS = 100_000


class RequestTimeout(TimeoutError):
    """No reply came from the broker within the client's timeout and retries."""


def as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def valid_service(name: bytes) -> bool:
    return 0 < len(name) <= MAX_SERVICE_NAME


def body_frames(body: Iterable[bytes | str]) -> Frames:
    return [as_bytes(frame) for frame in body]


# -- MDP/Client --------------------------------------------------------------------------------


def client_request(service: bytes, body: Sequence[bytes]) -> Frames:
    """A REQUEST as sent by a DEALER client (which writes the empty frame itself)."""
    return [b"", CLIENT_HEADER, service, *body]


def parse_client_reply(frames: Sequence[bytes], service: bytes) -> Frames | None:
    """The body of a REPLY to a request for `service`, or None if it is anything else."""
    if len(frames) < 4 or frames[0] or frames[1] != CLIENT_HEADER or frames[2] != service:
        return None
    return list(frames[3:])


# -- MDP/Worker --------------------------------------------------------------------------------


def worker_command(command: bytes, *frames: bytes) -> Frames:
    """A worker-protocol command (both DEALER workers and the ROUTER broker send frame 0)."""
    return [b"", WORKER_HEADER, command, *frames]


def parse_worker_command(frames: Sequence[bytes]) -> tuple[bytes, Frames] | None:
    """(command, frames after it) for a well-formed MDPW01 message, else None."""
    if len(frames) < 3 or frames[0] or frames[1] != WORKER_HEADER:
        return None
    command = frames[2]
    rest = list(frames[3:])
    if command in (HEARTBEAT, DISCONNECT):
        return (command, rest) if not rest else None
    if command == READY:
        return (command, rest) if len(rest) == 1 and valid_service(rest[0]) else None
    if command in (REQUEST, REPLY):
        # Exactly one client address, then the empty delimiter, then a body of one or more frames.
        if len(rest) >= 3 and rest[0] and not rest[1]:
            return command, rest
        return None
    return None


# -- loop helpers --------------------------------------------------------------------------------


class StopSignal:
    """A self-pipe: `set()` is safe from signal handlers and other threads, and its `fd`
    can sit in a Poller so a blocked sync loop wakes at once."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._set = False

    @property
    def fd(self) -> int:
        return self._read

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        try:
            os.write(self._write, b"x")
        except (BlockingIOError, OSError):
            pass  # already full (so already readable) or closed: either way the loop will see it

    def close(self) -> None:
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass


def ms_until(deadline: float, now: float) -> int:
    """Milliseconds from `now` to `deadline` (monotonic seconds), rounded up, never negative."""
    return max(0, int((deadline - now) * 1000 + 0.999))
