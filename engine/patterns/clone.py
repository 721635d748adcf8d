"""Clone: a shared key-value map kept in sync across clients (ZeroMQ RFC 12, CHP).

The server owns the map and a sequence number. A client asks its SNAPSHOT port (ROUTER) for the
map with `ICANHAZ?` + subtree, gets one KVSYNC per key and a `KTHXBAI` carrying the sequence the
snapshot stands at, then applies the sequenced KVPUB updates from the PUBLISHER port. Clients
change the map by sending KVSET to the COLLECTOR port; the server numbers each change and
republishes it, and deletes keys whose `ttl` property (seconds) runs out. Between updates it
sends HUGZ, carrying its current sequence as the Guide's servers do, so a client can also notice
that it lost the last updates of a burst.

This module holds the wire format (`KVMsg`), the sans-I/O server state (`CloneState`, reusable by
any server with its own sockets), the sync `CloneServer` reactor and the CLI
(`python -m engine.patterns.clone server --help`). Clients live in `clone_client.py`.

The collector is a PULL socket fed by client PUSH sockets by default: unlike PUB/SUB it holds a
client's first updates until the connection is up instead of dropping them. `collector_type=SUB`
gives the RFC's literal SUB collector for peers that send with PUB.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import engine as zmq

from .demo_cli import positive, startup

log = logging.getLogger(__name__)

# -- wire format (RFC 12) -------------------------------------------------------------------------

ICANHAZ = b"ICANHAZ?"
KTHXBAI = b"KTHXBAI"
HUGZ = b"HUGZ"
#: Keys that name commands on the snapshot and publisher streams; never stored as data.
RESERVED_KEYS = frozenset({ICANHAZ.decode(), KTHXBAI.decode(), HUGZ.decode()})
#: The property carrying a key's time to live, in seconds (RFC 12).
TTL_PROPERTY = "ttl"
UUID_SIZE = 16
SEQUENCE_SIZE = 8

#: Gap between HUGZ heartbeats when no update is sent: the RFC's example value.
HUGZ_INTERVAL_S = 1.0
#: Messages taken from one socket per reactor pass, so one busy port cannot starve the others.
MAX_BATCH = 500


class MalformedMessage(ValueError):
    """A message that is not a well-formed CHP command; servers and clients drop these."""


def encode_properties(props: Mapping[str, str]) -> bytes:
    return "".join(f"{name}={value}\n" for name, value in props.items()).encode()


def decode_properties(data: bytes) -> dict[str, str]:
    props: dict[str, str] = {}
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise MalformedMessage("properties are not UTF-8") from None
    for line in text.split("\n"):
        if not line:
            continue
        name, sep, value = line.partition("=")
        if not sep or not name:
            raise MalformedMessage(f"property line without a name: {line!r}")
        props[name] = value
    return props


@dataclass(slots=True)
class KVMsg:
    """One key-value update: the five frames shared by KVSYNC, KVPUB, KVSET, KTHXBAI and HUGZ."""

    key: str
    sequence: int = 0
    uuid: bytes = b""
    properties: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def encode(self) -> list[bytes]:
        return [
            self.key.encode(),
            self.sequence.to_bytes(SEQUENCE_SIZE, "big"),
            self.uuid,
            encode_properties(self.properties),
            self.body,
        ]

    @classmethod
    def decode(cls, frames: Sequence[bytes]) -> KVMsg:
        if len(frames) != 5:
            raise MalformedMessage(f"expected 5 frames, got {len(frames)}")
        key, seq, uuid, props, body = (bytes(f) for f in frames)
        if len(seq) != SEQUENCE_SIZE:
            raise MalformedMessage("the sequence frame must be 8 bytes")
        if len(uuid) not in (0, UUID_SIZE):
            raise MalformedMessage("the UUID frame must be empty or 16 bytes")
        try:
            text_key = key.decode()
        except UnicodeDecodeError:
            raise MalformedMessage("the key is not UTF-8") from None
        return cls(text_key, int.from_bytes(seq, "big"), uuid, decode_properties(props), body)

    @property
    def ttl(self) -> float | None:
        """The `ttl` property in seconds; None if absent or not positive."""
        raw = self.properties.get(TTL_PROPERTY)
        if raw is None:
            return None
        try:
            ttl = float(raw)
        except ValueError:
            raise MalformedMessage(f"bad ttl {raw!r}") from None
        if ttl != ttl or ttl in (float("inf"), float("-inf")):
            raise MalformedMessage(f"bad ttl {raw!r}")
        return ttl if ttl > 0 else None


def in_subtree(key: str, subtree: str) -> bool:
    return key.startswith(subtree)


def snapshot_request(subtree: str = "") -> list[bytes]:
    return [ICANHAZ, subtree.encode()]


def parse_snapshot_request(frames: Sequence[bytes]) -> str:
    """[ICANHAZ?, subtree] -> subtree (the ROUTER identity already removed)."""
    if len(frames) != 2 or frames[0] != ICANHAZ:
        raise MalformedMessage("not an ICANHAZ? request")
    try:
        return bytes(frames[1]).decode()
    except UnicodeDecodeError:
        raise MalformedMessage("the subtree is not UTF-8") from None


# -- server state (sans-I/O) ----------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    msg: KVMsg
    expires_at: float | None


class CloneState:
    """The server's map and sequence: decoded commands in, messages to send out. No I/O.

    `now` arguments are monotonic seconds; TTLs count from when the server applies the update.
    """

    def __init__(self) -> None:
        self.sequence = 0
        self._entries: dict[str, _Entry] = {}
        #: (expires_at, key, sequence) per TTL'd update; stale rows are skipped when popped.
        self._expiries: list[tuple[float, str, int]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        return None if entry is None else entry.msg.body

    def items(self, subtree: str = "") -> Iterator[KVMsg]:
        for key, entry in self._entries.items():
            if in_subtree(key, subtree):
                yield entry.msg

    def to_dict(self, subtree: str = "") -> dict[str, bytes]:
        return {msg.key: msg.body for msg in self.items(subtree)}

    # -- changes --------------------------------------------------------------------------------

    def apply(self, update: KVMsg, now: float) -> KVMsg:
        """Number an update, store it (an empty body deletes) and return the KVPUB to publish."""
        if update.key in RESERVED_KEYS or not update.key:
            raise MalformedMessage(f"key {update.key!r} is reserved")
        ttl = update.ttl  # validates the property before anything changes
        self.sequence += 1
        msg = KVMsg(update.key, self.sequence, update.uuid, dict(update.properties), update.body)
        if not msg.body:
            self._entries.pop(msg.key, None)
            return msg
        expires_at = None if ttl is None else now + ttl
        self._entries[msg.key] = _Entry(msg, expires_at)
        if expires_at is not None:
            heapq.heappush(self._expiries, (expires_at, msg.key, msg.sequence))
        return msg

    def set(
        self,
        key: str,
        body: bytes,
        now: float,
        *,
        ttl: float | None = None,
        properties: Mapping[str, str] | None = None,
        uuid: bytes = b"",
    ) -> KVMsg:
        """A change made by the server itself; returns the KVPUB to publish."""
        props = dict(properties or {})
        if ttl is not None:
            props[TTL_PROPERTY] = format(ttl, "g")
        return self.apply(KVMsg(key, 0, uuid, props, body), now)

    def on_kvset(self, frames: Sequence[bytes], now: float) -> KVMsg | None:
        """A client's KVSET as received; the KVPUB to publish, or None if it was malformed."""
        try:
            return self.apply(KVMsg.decode(frames), now)
        except MalformedMessage as exc:
            log.debug("clone: dropped KVSET: %s", exc)
            return None

    def expire(self, now: float) -> list[KVMsg]:
        """Delete every key whose TTL has run out; returns the deletions to publish."""
        out: list[KVMsg] = []
        heap = self._expiries
        while heap and heap[0][0] <= now:
            _, key, seq = heapq.heappop(heap)
            entry = self._entries.get(key)
            if entry is None or entry.msg.sequence != seq:
                continue  # rewritten or deleted since: that row is stale
            self.sequence += 1
            del self._entries[key]
            out.append(KVMsg(key, self.sequence, entry.msg.uuid, {}, b""))
        return out

    def next_expiry(self) -> float | None:
        return self._expiries[0][0] if self._expiries else None

    # -- snapshots and heartbeats -----------------------------------------------------------------

    def snapshot(self, subtree: str = "") -> list[list[bytes]]:
        """KVSYNC per key in the subtree, then KTHXBAI.

        KVSYNC keeps the entry's UUID and properties, as the Guide's servers send them (the RFC
        shows them empty; readers take both). KTHXBAI carries the map's current sequence, so the
        client resumes exactly after the last change this snapshot already includes.
        """
        out = [msg.encode() for msg in self.items(subtree)]
        out.append(KVMsg(KTHXBAI.decode(), self.sequence, b"", {}, subtree.encode()).encode())
        return out

    def on_snapshot_request(self, frames: Sequence[bytes]) -> list[list[bytes]]:
        """[identity, ICANHAZ?, subtree] from the ROUTER -> replies with the identity prefix;
        nothing if the request is malformed."""
        if len(frames) < 2:
            return []
        identity = bytes(frames[0])
        try:
            subtree = parse_snapshot_request(frames[1:])
        except MalformedMessage as exc:
            log.debug("clone: dropped snapshot request: %s", exc)
            return []
        return [[identity, *msg] for msg in self.snapshot(subtree)]

    def hugz(self) -> KVMsg:
        return KVMsg(HUGZ.decode(), self.sequence)


# -- sync server reactor --------------------------------------------------------------------------


class CloneServer:
    """CHP server on the sync face: binds the three ports and runs `CloneState` between them.

    Embed it with `poll_once()` in your own loop (then `publish()` from that same thread), or
    call `run()`. Endpoints may use port 0; the bound ones are in the `*_endpoint` attributes.
    """

    def __init__(
        self,
        snapshot: str,
        publisher: str,
        collector: str,
        *,
        state: CloneState | None = None,
        hugz_interval: float = HUGZ_INTERVAL_S,
        collector_type: int = zmq.PULL,
        sndhwm: int | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        if collector_type not in (zmq.PULL, zmq.SUB):
            raise ValueError("collector_type must be PULL or SUB")
        self.state = state or CloneState()
        self.hugz_interval = hugz_interval
        self._ctx = context or zmq.Context.instance()
        self._stopping = False
        # A snapshot has one message per key: an unlimited send queue so none is dropped.
        self.snapshot = self._ctx.socket(zmq.ROUTER, linger=0, sndhwm=0)
        self.publisher = self._ctx.socket(zmq.PUB, linger=0)
        if sndhwm is not None:
            self.publisher.sndhwm = sndhwm
        self.collector = self._ctx.socket(collector_type, linger=0)
        if collector_type == zmq.SUB:
            self.collector.subscribe(b"")
        self.snapshot_endpoint = self.snapshot.bind(snapshot)
        self.publisher_endpoint = self.publisher.bind(publisher)
        self.collector_endpoint = self.collector.bind(collector)
        self._poller = zmq.Poller()
        self._poller.register(self.snapshot, zmq.POLLIN)
        self._poller.register(self.collector, zmq.POLLIN)
        self._next_hugz = time.monotonic() + hugz_interval

    def publish(self, key: str, body: bytes, *, ttl: float | None = None, **props: str) -> int:
        """Change the map from the server side; returns the update's sequence number."""
        msg = self.state.set(key, body, time.monotonic(), ttl=ttl, properties=props)
        self._send_update(msg)
        return msg.sequence

    def _send_update(self, msg: KVMsg) -> None:
        self.publisher.send_multipart(msg.encode())
        self._next_hugz = time.monotonic() + self.hugz_interval

    def poll_once(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for work, then do what is due."""
        now = time.monotonic()
        due = min(self._next_hugz, self.state.next_expiry() or self._next_hugz)
        wait = max(0.0, min(timeout, due - now))
        ready = dict(self._poller.poll(int(wait * 1000)))
        if self.collector in ready:
            self._collect()
        if self.snapshot in ready:
            self._serve_snapshots()
        now = time.monotonic()
        for msg in self.state.expire(now):
            self._send_update(msg)
        if now >= self._next_hugz:
            self.publisher.send_multipart(self.state.hugz().encode())
            self._next_hugz = now + self.hugz_interval

    def _collect(self) -> None:
        for _ in range(MAX_BATCH):
            try:
                frames = self.collector.recv_multipart(zmq.DONTWAIT)
            except zmq.Again:
                return
            msg = self.state.on_kvset(frames, time.monotonic())
            if msg is not None:
                self._send_update(msg)

    def _serve_snapshots(self) -> None:
        for _ in range(MAX_BATCH):
            try:
                frames = self.snapshot.recv_multipart(zmq.DONTWAIT)
            except zmq.Again:
                return
            for reply in self.state.on_snapshot_request(frames):
                self.snapshot.send_multipart(reply)

    def stop(self) -> None:
        """Ask run() to return; safe from other threads and signal handlers."""
        self._stopping = True

    def run(self) -> None:
        while not self._stopping:
            self.poll_once(self.hugz_interval)

    def close(self) -> None:
        for sock in (self.snapshot, self.publisher, self.collector):
            sock.close(linger=0)


# -- CLI ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.patterns.clone", description="Clustered Hashmap Protocol (RFC 12)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    srv = commands.add_parser("server", help="run a Clone server")
    srv.add_argument("--snapshot", default="tcp://*:5556", help="ROUTER endpoint for snapshots")
    srv.add_argument("--publisher", default="tcp://*:5557", help="PUB endpoint for updates")
    srv.add_argument("--collector", default="tcp://*:5558", help="endpoint for client updates")
    srv.add_argument(
        "--collector-type",
        choices=("pull", "sub"),
        default="pull",
        help="pull: clients PUSH (default); sub: RFC 12's literal SUB, clients PUB",
    )
    srv.add_argument(
        "--hugz", type=positive(float), default=HUGZ_INTERVAL_S, help="heartbeat seconds"
    )
    srv.add_argument(
        "--sndhwm", type=positive(int, zero=True), help="publisher SNDHWM (messages; 0: no limit)"
    )
    args = parser.parse_args(argv)

    # Start-up only: an error while serving keeps its traceback (see demo_cli).
    with startup(parser.prog, args.snapshot, args.publisher, args.collector):
        server = CloneServer(
            args.snapshot,
            args.publisher,
            args.collector,
            hugz_interval=args.hugz,
            collector_type=zmq.SUB if args.collector_type == "sub" else zmq.PULL,
            sndhwm=args.sndhwm,
        )
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    print(
        f"READY snapshot={server.snapshot_endpoint} publisher={server.publisher_endpoint} "
        f"collector={server.collector_endpoint}",
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
