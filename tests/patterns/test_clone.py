"""Clone (RFC 12, CHP): wire format and sans-I/O state, then a real server process with clients.

Fault injection: a client with a one-message RCVHWM sits out a burst of large updates from a
server with a tiny SNDHWM, so the publisher drops some; the client must notice the gap and
resync to the same map as everyone else.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import engine as zmq
from engine.patterns.clone import (
    CloneServer,
    CloneState,
    KVMsg,
    MalformedMessage,
    decode_properties,
    encode_properties,
)
from engine.patterns.clone_client import AsyncCloneClient, CloneClient, CloneReplica, kvset

ROOT = Path(__file__).resolve().parents[2]
HUGZ = 0.2
WAIT = 30.0  # deadline for anything to converge on a loaded machine

# -- wire format ----------------------------------------------------------------------------------


def test_kvpub_frames_are_rfc12() -> None:
    uuid = bytes(range(16))
    msg = KVMsg("/a/b", 258, uuid, {"ttl": "5", "who": "me"}, b"\x00body")
    assert msg.encode() == [
        b"/a/b",
        b"\x00" * 6 + b"\x01\x02",
        uuid,
        b"ttl=5\nwho=me\n",
        b"\x00body",
    ]
    assert KVMsg.decode(msg.encode()) == msg
    assert KVMsg.decode([b"k", bytes(8), b"", b"", b""]) == KVMsg("k")


def test_commands_on_the_wire() -> None:
    state = CloneState()
    state.set("/x/1", b"one", 0.0)
    replies = state.on_snapshot_request([b"ID", b"ICANHAZ?", b"/x/"])
    assert replies == [
        [b"ID", b"/x/1", (1).to_bytes(8, "big"), b"", b"", b"one"],
        [b"ID", b"KTHXBAI", (1).to_bytes(8, "big"), b"", b"", b"/x/"],
    ]
    assert state.hugz().encode() == [b"HUGZ", (1).to_bytes(8, "big"), b"", b"", b""]
    frames = kvset("/x/2", b"two", ttl=1.5, properties={"a": "b"})
    assert frames[0] == b"/x/2" and frames[1] == bytes(8) and len(frames[2]) == 16
    assert decode_properties(frames[3]) == {"a": "b", "ttl": "1.5"}


@pytest.mark.parametrize(
    "frames",
    [
        [b"k"],
        [b"k", bytes(8), b"", b""],
        [b"k", bytes(7), b"", b"", b"v"],
        [b"k", bytes(8), b"short-uuid", b"", b"v"],
        [b"\xff", bytes(8), b"", b"", b"v"],
        [b"k", bytes(8), b"", b"no-equals\n", b"v"],
        [b"k", bytes(8), b"", b"\xfe=1\n", b"v"],
    ],
)
def test_malformed_messages_are_rejected(frames: list[bytes]) -> None:
    with pytest.raises(MalformedMessage):
        KVMsg.decode(frames)
    state = CloneState()
    assert state.on_kvset(frames, 0.0) is None
    assert state.sequence == 0


def test_server_drops_bad_commands_without_changing_state() -> None:
    state = CloneState()
    for frames in (
        [b"HUGZ", bytes(8), b"", b"", b"v"],  # reserved key
        [b"k", bytes(8), b"", b"ttl=soon\n", b"v"],
        [b"k", bytes(8), b"", b"ttl=nan\n", b"v"],
    ):
        assert state.on_kvset(frames, 0.0) is None
    for frames in ([b"ID"], [b"ID", b"GIMME", b""], [b"ID", b"ICANHAZ?", b"\xff"]):
        assert state.on_snapshot_request(frames) == []
    assert state.sequence == 0 and len(state) == 0


def test_properties_roundtrip() -> None:
    props = {"ttl": "3", "owner": "a=b"}
    assert decode_properties(encode_properties(props)) == props
    assert encode_properties({}) == b""


# -- sans-I/O server and replica ------------------------------------------------------------------


def test_state_sequences_deletes_and_expires() -> None:
    state = CloneState()
    assert state.set("/a", b"1", now=0.0).sequence == 1
    assert state.set("/t", b"tmp", now=0.0, ttl=2).properties == {"ttl": "2"}
    assert state.next_expiry() == 2.0
    assert state.set("/a", b"", now=0.5).sequence == 3  # delete
    assert "/a" not in state
    assert state.expire(1.9) == []
    gone = state.expire(2.0)
    assert [(m.key, m.sequence, m.body) for m in gone] == [("/t", 4, b"")]
    assert len(state) == 0 and state.next_expiry() is None


def test_rewrite_cancels_old_ttl() -> None:
    state = CloneState()
    state.set("/t", b"v1", now=0.0, ttl=1)
    state.set("/t", b"v2", now=0.5)  # no ttl now: lives forever
    assert state.expire(10.0) == []
    assert state.get("/t") == b"v2"


def feed_snapshot(replica: CloneReplica, state: CloneState) -> list[KVMsg]:
    replica.begin_sync()
    out = None
    for frames in state.snapshot(replica.subtree):
        out = replica.on_snapshot(frames)
    assert out is not None
    return out


def test_replica_detects_gap_and_resyncs() -> None:
    state, replica = CloneState(), CloneReplica()
    updates = [state.set(f"/k{i}", b"v%d" % i, 0.0).encode() for i in range(5)]
    feed_snapshot(replica, state)
    assert replica.sequence == 5
    more = [state.set(f"/k{i}", b"w%d" % i, 0.0).encode() for i in range(5)]
    assert replica.on_update(updates[0]) == []  # old: covered by the snapshot
    assert [m.key for m in replica.on_update(more[0])] == ["/k0"]
    assert replica.on_update(more[2]) == []  # seq 8 after 6: lost one
    assert replica.needs_resync and replica.resyncs == 1
    feed_snapshot(replica, state)
    assert replica.to_dict() == state.to_dict() and not replica.needs_resync


def test_replica_notices_lost_tail_through_hugz() -> None:
    state, replica = CloneState(), CloneReplica()
    feed_snapshot(replica, state)
    state.set("/k", b"v", 0.0)  # published, but this client never gets it
    replica.on_update(state.hugz().encode())
    assert replica.needs_resync


def test_replica_buffers_updates_racing_the_snapshot() -> None:
    state, replica = CloneState(), CloneReplica(subtree="/in/")
    state.set("/in/a", b"1", 0.0)
    replica.begin_sync()
    snapshot = state.snapshot("/in/")
    raced = [state.set(k, b"2", 0.0).encode() for k in ("/out/b", "/in/a", "/in/c")]
    for frames in raced:
        assert replica.on_update(frames) == []  # held until the snapshot is complete
    changes = None
    for frames in snapshot:
        changes = replica.on_snapshot(frames)
    assert changes is not None
    assert replica.to_dict() == {"/in/a": b"2", "/in/c": b"2"} == state.to_dict("/in/")
    assert replica.sequence == 4 and not replica.needs_resync


def test_resync_reports_only_differences() -> None:
    state, replica = CloneState(), CloneReplica()
    state.set("/same", b"s", 0.0)
    state.set("/old", b"o", 0.0)
    feed_snapshot(replica, state)
    state.set("/old", b"", 0.0)
    state.set("/new", b"n", 0.0)
    changes = feed_snapshot(replica, state)
    assert sorted((m.key, m.body) for m in changes) == [("/new", b"n"), ("/old", b"")]


# -- a real server process ------------------------------------------------------------------------


class ServerProc:
    def __init__(self, *extra: str) -> None:
        cmd = [sys.executable, "-m", "engine.patterns.clone", "server", "--hugz", str(HUGZ)]
        for flag in ("--snapshot", "--publisher", "--collector"):
            cmd += [flag, "tcp://127.0.0.1:0"]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(WAIT)
        assert ready and ready[0].startswith("READY"), f"server did not start: {ready}"
        self.endpoints = dict(kv.split("=", 1) for kv in ready[0].split()[1:])

    def client(self, **kw: object) -> CloneClient:
        e = self.endpoints
        return CloneClient(e["snapshot"], e["publisher"], e["collector"], **kw)  # type: ignore[arg-type]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def server() -> Iterator[ServerProc]:
    proc = ServerProc()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def lossy_server() -> Iterator[ServerProc]:
    proc = ServerProc("--sndhwm", "4")
    try:
        yield proc
    finally:
        proc.kill()


def at(client: CloneClient, sequence: int) -> bool:
    return client.sequence >= sequence and not client.replica.syncing


@pytest.mark.timeout(120)
def test_late_joiner_gets_identical_state(server: ServerProc) -> None:
    early = server.client()
    seen: list[KVMsg] = []
    watcher = server.client(subtree="/world/", on_change=seen.append)
    try:
        early.sync()
        watcher.sync()
        n = 0
        for i in range(600):
            key = f"/world/{i % 37}" if i % 3 else f"/lobby/{i % 11}"
            body = b"" if i % 10 == 9 else f"value-{i}".encode()  # some deletions
            early.set(key, body, owner=f"p{i % 4}")
            n += 1
        assert early.wait_for(lambda: at(early, n), WAIT), early.sequence
        assert watcher.wait_for(lambda: at(watcher, n), WAIT), watcher.sequence
        late = server.client()
        late_sub = server.client(subtree="/world/")
        try:
            late.sync()
            late_sub.sync()
            assert late.sequence == early.sequence == n
            assert late.to_dict() == early.to_dict()
            assert {k: m.properties for k, m in late.replica.entries.items()} == {
                k: m.properties for k, m in early.replica.entries.items()
            }
            world = {k: v for k, v in early.to_dict().items() if k.startswith("/world/")}
            assert late_sub.to_dict() == watcher.to_dict() == world
            # The change callback replays to exactly the same map.
            replay: dict[str, bytes] = {}
            for msg in seen:
                if msg.body:
                    replay[msg.key] = msg.body
                else:
                    replay.pop(msg.key, None)
            assert replay == world
        finally:
            late.close()
            late_sub.close()
    finally:
        early.close()
        watcher.close()


@pytest.mark.timeout(120)
def test_client_that_misses_updates_resyncs(lossy_server: ServerProc) -> None:
    writer = lossy_server.client()
    lagging = lossy_server.client(rcvhwm=1)
    try:
        writer.sync()
        lagging.sync()
        # ~19 MB of updates while `lagging` does not read: its kernel buffers fill, then the
        # publisher's 4-message queue for it, and the rest is dropped.
        n = 300
        for i in range(n):
            writer.set(f"/big/{i % 20}", bytes([i % 256]) * 65536)
        writer.set("/small", b"last")
        n += 1
        assert writer.wait_for(lambda: at(writer, n), WAIT)
        assert lagging.sequence < n  # it really has been sitting out
        assert lagging.wait_for(lambda: at(lagging, n), WAIT), lagging.sequence
        assert lagging.resyncs >= 1
        assert lagging.to_dict() == writer.to_dict()
        fresh = lossy_server.client()
        try:
            fresh.sync()
            assert fresh.to_dict() == lagging.to_dict() and fresh.sequence == n
        finally:
            fresh.close()
    finally:
        writer.close()
        lagging.close()


@pytest.mark.timeout(120)
def test_ttl_expiry_propagates_deletions(server: ServerProc) -> None:
    deleted: list[str] = []
    client = server.client(on_change=lambda m: None if m.body else deleted.append(m.key))
    try:
        client.sync()
        client.set("/session/a", b"ephemeral", ttl=0.6)
        client.set("/session/b", b"durable")
        assert client.wait_for(lambda: client.get("/session/a") == b"ephemeral", WAIT)
        assert client.replica.entries["/session/a"].properties == {"ttl": "0.6"}
        assert client.wait_for(lambda: "/session/a" not in client, WAIT)
        assert deleted == ["/session/a"]
        assert client.get("/session/b") == b"durable"
        late = server.client()
        try:
            late.sync()
            assert late.to_dict() == {"/session/b": b"durable"} == client.to_dict()
            assert late.sequence == client.sequence == 3  # two sets and one expiry
        finally:
            late.close()
    finally:
        client.close()


@pytest.mark.timeout(120)
def test_async_client_syncs_and_updates(server: ServerProc) -> None:
    e = server.endpoints
    sync_client = server.client()

    async def main() -> None:
        client = AsyncCloneClient(e["snapshot"], e["publisher"], e["collector"], subtree="/w/")
        try:
            await client.sync()
            for i in range(200):
                await client.set(f"/w/{i % 9}", f"{i}".encode(), ttl=30 if i else None)
            await client.set("/other/x", b"not mine")
            assert await client.wait_for(lambda: client.sequence >= 201, WAIT)
            assert "/other/x" not in client and client.get("/w/0") == b"198"
            task = asyncio.create_task(client.run())  # background upkeep, as a game would
            await client.delete("/w/0")
            deadline = time.monotonic() + WAIT
            while "/w/0" in client:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            client.close()

    try:
        asyncio.run(asyncio.wait_for(main(), 60))
        sync_client.sync()
        world = {k: v for k, v in sync_client.to_dict().items() if k.startswith("/w/")}
        assert len(world) == 8 and "/w/0" not in world and world["/w/8"] == b"197"
    finally:
        sync_client.close()


@pytest.mark.timeout(120)
def test_server_survives_garbage(server: ServerProc) -> None:
    e = server.endpoints
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH, linger=1000)
    dealer = ctx.socket(zmq.DEALER, linger=0)
    client = server.client()
    try:
        push.connect(e["collector"])
        dealer.connect(e["snapshot"])
        for frames in ([b"x"], [b"k", b"bad", b"", b"", b"v"], [b"\xff"] * 5, [b""] * 9):
            push.send_multipart(frames)
        for frames in ([b"ICANHAZ?"], [b"WAT", b""], [b"ICANHAZ?", b"\xff\xfe"]):
            dealer.send_multipart(frames)
        client.sync()
        client.set("/ok", b"yes")
        assert client.wait_for(lambda: client.get("/ok") == b"yes", WAIT)
        assert client.sequence == 1
        assert server.proc.poll() is None
    finally:
        push.close()
        dealer.close()
        client.close()


@pytest.mark.timeout(120)
def test_rfc_literal_sub_collector_in_process() -> None:
    """collector_type=SUB with a PUB-sending client, as RFC 12 draws the ports."""
    srv = CloneServer(
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:0",
        collector_type=zmq.SUB,
        hugz_interval=HUGZ,
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    client = CloneClient(
        srv.snapshot_endpoint,
        srv.publisher_endpoint,
        srv.collector_endpoint,
        updates_type=zmq.PUB,
    )
    try:
        client.sync()
        # PUB drops until the server's subscription arrives: repeat until it lands.
        deadline = time.monotonic() + WAIT
        while client.get("/rfc") != b"literal":
            assert time.monotonic() < deadline
            client.set("/rfc", b"literal")
            client.poll(0.1)
    finally:
        client.close()
        srv.stop()
        thread.join(10)
        srv.close()
