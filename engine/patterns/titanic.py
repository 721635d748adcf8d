"""Titanic (ZeroMQ RFC 9, TSP): disk-backed, disconnected request-reply on top of Majordomo.

A Titanic server is three Majordomo workers (titanic.request, titanic.reply, titanic.close) and
a dispatcher that is a Majordomo client of the real services. Every request and reply is a file
written atomically (temp file, fsync, rename, fsync of the directory), and the queue of pending
work is rebuilt from those files at start-up, so a killed server loses nothing it acknowledged.

    python -m engine.patterns.titanic --broker tcp://127.0.0.1:5555 --dir /var/lib/titanic
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import struct
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import engine
import engine.asyncio

from .demo_cli import check_connect, positive, startup
from .majordomo_client import AsyncMajordomoClient, MajordomoClient
from .majordomo_common import (
    CLIENT_RETRIES,
    CLIENT_TIMEOUT_MS,
    HEARTBEAT_INTERVAL_MS,
    HEARTBEAT_LIVENESS,
    MMI_FOUND,
    MMI_SERVICE,
    RECONNECT_DELAY_MS,
    Frames,
    RequestTimeout,
    as_bytes,
    valid_service,
)
from .majordomo_worker import AsyncMajordomoWorker

log = logging.getLogger(__name__)

SERVICE_REQUEST = b"titanic.request"
SERVICE_REPLY = b"titanic.reply"
SERVICE_CLOSE = b"titanic.close"

# RFC 9 status codes: three digits, maybe followed by text that clients must ignore.
OK = b"200"
PENDING = b"300"
UNKNOWN = b"400"
ERROR = b"500"

#: How often pending requests are retried when their service had no workers (or timed out).
DISPATCH_RETRY_MS = 1000

_UUID = re.compile(rb"[0-9A-Fa-f]{32}")
_REQUEST_SUFFIX = ".req"
_REPLY_SUFFIX = ".rep"
_TEMP_SUFFIX = ".tmp"
_MAGIC = b"TSP1"
_LENGTH = struct.Struct(">I")
_STAMP = struct.Struct(">Q")


def status_of(frame: bytes) -> bytes:
    """The code of a status frame ("200", "300 pending"... -> b"200", b"300")."""
    return frame[:3]


# -- on-disk format --------------------------------------------------------------------------------


def encode_frames(frames: Sequence[bytes]) -> bytes:
    """Magic, frame count, then each frame length-prefixed: binary-safe and self-checking."""
    parts = [_MAGIC, _LENGTH.pack(len(frames))]
    for frame in frames:
        parts += [_LENGTH.pack(len(frame)), frame]
    return b"".join(parts)


def decode_frames(data: bytes) -> Frames:
    if not data.startswith(_MAGIC) or len(data) < 8:
        raise ValueError("not a Titanic frame file")
    (count,), pos = _LENGTH.unpack_from(data, 4), 8
    frames: Frames = []
    for _ in range(count):
        if pos + 4 > len(data):
            raise ValueError("truncated Titanic frame file")
        (size,) = _LENGTH.unpack_from(data, pos)
        pos += 4
        if pos + size > len(data):
            raise ValueError("truncated Titanic frame file")
        frames.append(data[pos : pos + size])
        pos += size
    if pos != len(data):
        raise ValueError("trailing bytes in Titanic frame file")
    return frames


class TitanicStore:
    """Requests and replies as files in one directory; pending work in arrival order."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        for temp in self.dir.glob(f".*{_TEMP_SUFFIX}"):
            temp.unlink(missing_ok=True)  # a write the last run never finished: never acknowledged
        self._last_stamp = 0
        found = []
        for path in self.dir.glob(f"*{_REQUEST_SUFFIX}"):
            key = path.name[: -len(_REQUEST_SUFFIX)]
            if not _UUID.fullmatch(key.encode()) or self._path(key, _REPLY_SUFFIX).exists():
                continue
            try:
                stamp = _STAMP.unpack(decode_frames(path.read_bytes())[0])[0]
            except (OSError, ValueError, IndexError, struct.error):
                log.error("unreadable request file %s: left alone", path)
                continue
            found.append((stamp, key))
            self._last_stamp = max(self._last_stamp, stamp)
        # Insertion-ordered dict as an ordered set: oldest request first.
        self._pending: dict[str, None] = dict.fromkeys(key for _, key in sorted(found))
        if self._pending:
            log.info("%d pending request(s) recovered from %s", len(self._pending), self.dir)

    @staticmethod
    def parse_uuid(raw: bytes) -> str | None:
        """A client's UUID frame as our file key, or None if it is not 32 hex digits."""
        return raw.decode().lower() if _UUID.fullmatch(raw) else None

    def _path(self, key: str, suffix: str) -> Path:
        return self.dir / f"{key}{suffix}"

    def _write(self, path: Path, frames: Sequence[bytes]) -> None:
        temp = path.with_name(f".{path.name}{_TEMP_SUFFIX}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, encode_frames(frames))
            os.fsync(fd)  # the data is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(temp, path)
        self._sync_dir()

    def _sync_dir(self) -> None:
        # The rename (or unlink) itself is durable only once the directory is synced.
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read(self, path: Path) -> Frames | None:
        try:
            return decode_frames(path.read_bytes())
        except FileNotFoundError:
            return None

    def add_request(self, service: bytes, body: Sequence[bytes]) -> str:
        key = uuid.uuid4().hex
        # File times are too coarse to order a burst, so each request carries its arrival stamp.
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        stamp = _STAMP.pack(self._last_stamp)
        self._write(self._path(key, _REQUEST_SUFFIX), [stamp, service, *body])
        self._pending[key] = None
        return key

    def request(self, key: str) -> Frames | None:
        """[service, body...] of a stored request, if it is still open."""
        frames = self._read(self._path(key, _REQUEST_SUFFIX))
        if frames is not None and len(frames) < 3:
            raise ValueError(f"request file {key} lacks frames")
        return None if frames is None else frames[1:]

    def reply(self, key: str) -> Frames | None:
        return self._read(self._path(key, _REPLY_SUFFIX))

    def known(self, key: str) -> bool:
        return self._path(key, _REQUEST_SUFFIX).exists()

    def add_reply(self, key: str, body: Sequence[bytes]) -> bool:
        """Store the reply to `key`; False (and nothing stored) if it was closed meanwhile."""
        if self.known(key):
            self._write(self._path(key, _REPLY_SUFFIX), body)  # may raise: then still pending
            self._pending.pop(key, None)
            return True
        self._pending.pop(key, None)
        return False

    def close(self, key: str) -> None:
        self._pending.pop(key, None)
        self._path(key, _REPLY_SUFFIX).unlink(missing_ok=True)
        self._path(key, _REQUEST_SUFFIX).unlink(missing_ok=True)
        self._sync_dir()

    def drop_pending(self, key: str) -> None:
        self._pending.pop(key, None)

    def pending(self) -> list[str]:
        return list(self._pending)


class TitanicCore:
    """The three TSP services over a store, with no sockets: request frames in, reply out."""

    def __init__(self, store: TitanicStore, on_new: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self._on_new = on_new
        self.handlers: dict[bytes, Callable[[Frames], Frames]] = {
            SERVICE_REQUEST: self.on_request,
            SERVICE_REPLY: self.on_reply,
            SERVICE_CLOSE: self.on_close,
        }

    def on_request(self, body: Frames) -> Frames:
        if len(body) < 2 or not valid_service(body[0]) or body[0].startswith(b"titanic."):
            return [UNKNOWN]  # RFC 9 wants a service name and a body; Titanic feeding itself, no
        try:
            key = self.store.add_request(body[0], body[1:])
        except OSError:
            log.exception("could not store a request")
            return [ERROR]
        self._on_new()
        return [OK, key.encode()]

    def on_reply(self, body: Frames) -> Frames:
        key = self.store.parse_uuid(body[0]) if len(body) == 1 else None
        if key is None:
            return [UNKNOWN]
        try:
            reply = self.store.reply(key)
            if reply is not None:
                return [OK, *reply]
            return [PENDING] if self.store.known(key) else [UNKNOWN]
        except (OSError, ValueError):
            log.exception("could not read the reply for %s", key)
            return [ERROR]

    def on_close(self, body: Frames) -> Frames:
        key = self.store.parse_uuid(body[0]) if len(body) == 1 else None
        if key is None:
            return [UNKNOWN]
        try:
            self.store.close(key)
        except OSError:
            log.exception("could not close %s", key)
            return [ERROR]
        return [OK]  # idempotent: closing an unknown UUID is fine too (RFC 9)


class TitanicServer:
    """The TSP workers and the dispatcher on one asyncio loop: `await run()` until cancelled."""

    def __init__(
        self,
        broker: str,
        directory: str | Path,
        *,
        heartbeat_ms: int = HEARTBEAT_INTERVAL_MS,
        liveness: int = HEARTBEAT_LIVENESS,
        reconnect_ms: int = RECONNECT_DELAY_MS,
        timeout_ms: int = CLIENT_TIMEOUT_MS,
        retries: int = CLIENT_RETRIES,
        retry_ms: int = DISPATCH_RETRY_MS,
        context: engine.asyncio.Context | None = None,
    ) -> None:
        self._wake = asyncio.Event()
        self.store = TitanicStore(directory)
        self.core = TitanicCore(self.store, on_new=self._wake.set)
        self.retry_delay = retry_ms / 1000
        ctx = context or engine.asyncio.Context.instance()
        self.workers = {
            name: AsyncMajordomoWorker(
                broker,
                name,
                heartbeat_ms=heartbeat_ms,
                liveness=liveness,
                reconnect_ms=reconnect_ms,
                context=ctx,
            )
            for name in self.core.handlers
        }
        self.client = AsyncMajordomoClient(
            broker, timeout_ms=timeout_ms, retries=retries, context=ctx
        )

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(worker.serve(self.core.handlers[name]))
            for name, worker in self.workers.items()
        ]
        tasks.append(asyncio.create_task(self._dispatch()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            for key in self.store.pending():
                if not await self._execute(key):
                    break  # the broker itself is not answering: wait before trying again
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.retry_delay)

    async def _execute(self, key: str) -> bool:
        """Try to run one stored request; False when the broker did not answer at all."""
        try:
            request = self.store.request(key)
        except (OSError, ValueError):
            log.exception("unreadable request %s: left on disk, not dispatched", key)
            self.store.drop_pending(key)
            return True
        if request is None:
            self.store.drop_pending(key)  # closed meanwhile
            return True
        service, body = request[0], request[1:]
        try:
            # Ask first, so a service without workers does not hold up the rest of the queue.
            found = await self.client.request(MMI_SERVICE, service)
        except RequestTimeout:
            return False
        if status_of(found[0]) != MMI_FOUND:
            return True
        try:
            reply = await self.client.request(service, *body)
        except RequestTimeout:
            log.info("%s: %r did not answer; will retry", key, service)
            return True
        try:
            if self.store.add_reply(key, reply):
                log.info("%s: reply stored", key)
        except OSError:
            log.exception("%s: could not store the reply; will run it again", key)
        return True

    async def close(self) -> None:
        for worker in self.workers.values():
            await worker.close()
        self.client.close()


class TitanicClient:
    """A blocking TSP client over Majordomo: submit a request, fetch its reply, close it."""

    def __init__(
        self,
        broker: str,
        *,
        timeout_ms: int = CLIENT_TIMEOUT_MS,
        retries: int = CLIENT_RETRIES,
        context: engine.Context | None = None,
    ) -> None:
        self.mdp = MajordomoClient(broker, timeout_ms=timeout_ms, retries=retries, context=context)

    def submit(self, service: str | bytes, *body: bytes | str) -> str:
        """Store a request for `service`; returns its UUID. Raises RuntimeError if refused."""
        reply = self.mdp.request(SERVICE_REQUEST, as_bytes(service), *body)
        if status_of(reply[0]) != OK or len(reply) < 2:
            raise RuntimeError(f"titanic.request refused: {reply[0]!r}")
        return reply[1].decode()

    def fetch(self, key: str) -> tuple[bytes, Frames]:
        """(status, reply body): OK with the body, PENDING, UNKNOWN or ERROR with none."""
        reply = self.mdp.request(SERVICE_REPLY, key)
        return status_of(reply[0]), reply[1:]

    def close_request(self, key: str) -> bytes:
        return status_of(self.mdp.request(SERVICE_CLOSE, key)[0])

    def close(self) -> None:
        self.mdp.close()

    def __enter__(self) -> TitanicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- command line ------------------------------------------------------------------------------


#: The command line's name, in argparse's usage lines and in start-up errors.
PROG = "python -m engine.patterns.titanic"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Titanic (ZeroMQ RFC 9 TSP) server: durable requests over a Majordomo broker.",
    )
    parser.add_argument("--broker", required=True, help="Majordomo broker endpoint")
    parser.add_argument("--dir", required=True, type=Path, help="directory for stored messages")
    parser.add_argument(
        "--heartbeat-ms",
        type=positive(int),
        default=HEARTBEAT_INTERVAL_MS,
        help="heartbeat interval; must match the broker's (default %(default)s)",
    )
    parser.add_argument(
        "--liveness",
        type=positive(int),
        default=HEARTBEAT_LIVENESS,
        help="missed heartbeats before the broker counts as dead (default %(default)s)",
    )
    parser.add_argument(
        "--reconnect-ms",
        type=positive(int, zero=True),
        default=RECONNECT_DELAY_MS,
        help="pause before reconnecting to a lost broker (default %(default)s)",
    )
    parser.add_argument(
        "--timeout-ms",
        type=positive(int),
        default=CLIENT_TIMEOUT_MS,
        help="dispatcher: wait this long for a service's reply (default %(default)s)",
    )
    parser.add_argument(
        "--retries",
        type=positive(int, zero=True),
        default=CLIENT_RETRIES,
        help="dispatcher: extra attempts per request (default %(default)s)",
    )
    parser.add_argument(
        "--retry-ms",
        type=positive(int),
        default=DISPATCH_RETRY_MS,
        help="dispatcher: pause between passes over pending requests (default %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    # Start-up only: an error while serving keeps its traceback (see demo_cli). The workers
    # and the dispatcher connect only once run() starts, so the broker is checked first.
    with startup(PROG, args.broker, str(args.dir)):
        check_connect(args.broker)
        server = TitanicServer(
            args.broker,
            args.dir,
            heartbeat_ms=args.heartbeat_ms,
            liveness=args.liveness,
            reconnect_ms=args.reconnect_ms,
            timeout_ms=args.timeout_ms,
            retries=args.retries,
            retry_ms=args.retry_ms,
        )
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)  # unwinds run(), which closes the sockets
    print(f"titanic serving {args.dir} via {args.broker}", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await server.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
