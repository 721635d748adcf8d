"""Titanic (RFC 9) under fault injection: the Titanic process is SIGKILLed between request and
reply and restarted on the same directory; every accepted request still gets its reply.

Process handling and bounded waits come from test_majordomo (same folder, on sys.path).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_majordomo import HEARTBEAT_MS, LIVENESS, WAIT, Processes, wait_until

from engine.patterns.titanic import (
    ERROR,
    OK,
    PENDING,
    UNKNOWN,
    TitanicClient,
    TitanicCore,
    TitanicStore,
    decode_frames,
    encode_frames,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.kill_all()


def start_titanic(cluster: Processes, endpoint: str, store: Path) -> subprocess.Popen[str]:
    proc = cluster.spawn(
        "engine.patterns.titanic",
        "--broker",
        endpoint,
        "--dir",
        str(store),
        "--heartbeat-ms",
        str(HEARTBEAT_MS),
        "--liveness",
        str(LIVENESS),
        "--reconnect-ms",
        str(HEARTBEAT_MS),
        "--timeout-ms",
        "1000",
        "--retries",
        "1",
        "--retry-ms",
        "100",
    )
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(WAIT)


def wait_for_reply(client: TitanicClient, key: str) -> list[bytes]:
    result: list[bytes] = []

    def ready() -> bool:
        status, body = client.fetch(key)
        assert status in (OK, PENDING), status
        result[:] = body
        return status == OK

    wait_until(ready, f"the reply to {key}")
    return result


@pytest.fixture
def connect() -> Iterator[Callable[[str], TitanicClient]]:
    """Makes TitanicClients for a broker endpoint; closes them at teardown."""
    made: list[TitanicClient] = []

    def make(endpoint: str) -> TitanicClient:
        made.append(TitanicClient(endpoint, timeout_ms=1000, retries=5))
        return made[-1]

    try:
        yield make
    finally:
        for client in made:
            client.close()


def test_requests_survive_titanic_kill_before_dispatch(cluster: Processes, tmp_path: Path, connect):
    _, endpoint = cluster.broker()
    store = tmp_path / "store"
    titanic = start_titanic(cluster, endpoint, store)
    client = connect(endpoint)

    # Accepted while no worker for either service exists: nothing can be dispatched yet.
    keys = {
        client.submit("late", b"one"): (b"late-0", b"one"),
        client.submit("later", b"two", b"frames"): (b"later-0", b"two", b"frames"),
    }
    for key in keys:
        assert len(key) == 32 and int(key, 16) >= 0
        assert client.fetch(key) == (PENDING, [])

    kill(titanic)
    start_titanic(cluster, endpoint, store)
    cluster.worker(endpoint, "late", "late-0")
    cluster.worker(endpoint, "later", "later-0")
    for key, expected in keys.items():
        assert wait_for_reply(client, key) == list(expected)

    # titanic.reply is idempotent; titanic.close forgets, and is idempotent too.
    key = next(iter(keys))
    assert client.fetch(key) == (OK, [b"late-0", b"one"])
    assert client.close_request(key) == OK
    assert client.fetch(key) == (UNKNOWN, [])
    assert client.close_request(key) == OK


def test_reply_survives_kills_around_dispatch(cluster: Processes, tmp_path: Path, connect):
    _, endpoint = cluster.broker()
    store = tmp_path / "store"
    cluster.worker(endpoint, "echo", "echo-0")
    titanic = start_titanic(cluster, endpoint, store)
    client = connect(endpoint)

    # Killed right after accepting: before, during or after dispatch. Either way, no loss.
    key = client.submit("echo", b"durable")
    kill(titanic)
    titanic = start_titanic(cluster, endpoint, store)
    assert wait_for_reply(client, key) == [b"echo-0", b"durable"]

    # Killed after the reply was stored: the next Titanic serves it from disk.
    kill(titanic)
    titanic = start_titanic(cluster, endpoint, store)
    status, body = client.fetch(key)
    assert (status, body) == (OK, [b"echo-0", b"durable"])
    titanic.send_signal(signal.SIGTERM)
    assert titanic.wait(WAIT) == 0


# -- the store and the TSP services, in process --------------------------------------------------


def test_store_recovers_pending_work_in_order(tmp_path: Path):
    store = TitanicStore(tmp_path)
    first = store.add_request(b"svc", [b"1"])
    second = store.add_request(b"svc", [b"2", b""])
    done = store.add_request(b"svc", [b"3"])
    assert store.add_reply(done, [b"three"])
    (tmp_path / ".half-written.req.tmp").write_bytes(b"junk")  # a write cut short by a crash

    again = TitanicStore(tmp_path)
    assert again.pending() == [first, second]
    assert again.request(second) == [b"svc", b"2", b""]
    assert again.reply(done) == [b"three"]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    again.close(first)
    assert not again.add_reply(first, [b"late"])  # closed meanwhile: nothing resurrected
    assert TitanicStore(tmp_path).pending() == [second]


def test_services_answer_with_rfc9_status_codes(tmp_path: Path):
    woken: list[bool] = []
    core = TitanicCore(TitanicStore(tmp_path), on_new=lambda: woken.append(True))
    status, key = core.on_request([b"echo", b"hello"])
    assert status == OK and woken == [True]
    assert core.on_reply([key]) == [PENDING]
    assert core.on_reply([key.upper()]) == [PENDING]  # RFC 9 allows either case of hex
    core.store.add_reply(key.decode(), [b"hello"])
    assert core.on_reply([key]) == [OK, b"hello"]
    assert core.on_close([key]) == [OK]
    assert core.on_reply([key]) == [UNKNOWN]
    # Hostile or malformed input: refused, never a path outside the store.
    for bad in ([b"../../etc/passwd"], [b"0" * 31], [b"g" * 32], [key, key], [b"/" + b"0" * 31]):
        assert core.on_reply(bad) == [UNKNOWN]
        assert core.on_close(bad) == [UNKNOWN]
    assert core.on_request([b"only-a-service"]) == [UNKNOWN]
    assert core.on_request([b"", b"body"]) == [UNKNOWN]
    assert core.on_request([b"titanic.request", b"echo", b"x"]) == [UNKNOWN]  # no loops
    (tmp_path / f"{'a' * 32}.req").write_bytes(b"TSP1\x00\x00\x00\x01")
    (tmp_path / f"{'a' * 32}.rep").write_bytes(b"not a frame file")
    assert core.on_reply([b"a" * 32]) == [ERROR]


def test_frame_files_round_trip_and_reject_damage():
    frames = [b"", b"\x00" * 3, b"x" * 70_000]
    data = encode_frames(frames)
    assert decode_frames(data) == frames
    for damaged in (data[:-1], data + b"!", b"XXXX" + data[4:], data[:6]):
        with pytest.raises(ValueError):
            decode_frames(damaged)
