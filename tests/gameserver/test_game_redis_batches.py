"""The Redis backend's batches: a worker's jobs staged on its copy and sent in one round trip,
each part refused on its own (with every part that read what it wrote), against a real
redis-server."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

import orjson
import pytest
import redis
from gamekit import (
    FAST_PASSWORDS,
    TRANSFER_SEED,
    TRANSFER_TOTAL,
    CountingConnection,
    FakeClock,
    Game,
    RedisServer,
    empty_store_url,
    transfer,
    transfer_snapshot,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gameserver.catchup import CatchupOutcome
from gameserver.events import Outcome
from gameserver.jobs import run_jobs
from gameserver.protocol import (
    JOB_REQUEST,
    ActionRequest,
    CatchupReply,
    CatchupRequest,
    ErrorReply,
    Reply,
    Request,
    decode_reply,
    encode,
)
from gameserver.seed import seed_world
from gameserver.service import GameService
from gameserver.store.base import Tx
from gameserver.store.redis_backend import RedisStore
from gameserver.topics import room_topic
from gameserver.world import World


def put(key: str, value: object):  # type: ignore[no-untyped-def]
    return lambda tx: tx.put("doc", key, value)


def get(key: str):  # type: ignore[no-untyped-def]
    return lambda tx: tx.get("doc", key)


def copy(source: str, target: str, times: int = 1):  # type: ignore[no-untyped-def]
    """Reads ``source``, writes ``target`` from it: a part that depends on another's write."""

    def run(tx: Tx) -> int:
        value = tx.get("doc", source) * times
        tx.put("doc", target, value)
        return value

    return run


def test_a_batch_is_one_round_trip_and_its_parts_see_each_others_writes(
    counted_stores: list[RedisStore],
) -> None:
    store = counted_stores[0]
    store.transaction(put("x", 1))
    assert store.read(get("x")) == 1  # warm: the copy holds x
    before = CountingConnection.sent
    with store.batch() as batch:
        with batch.running(1):
            assert store.transaction(copy("x", "y", 10)) == 10
        with batch.running(2):
            assert store.transaction(copy("y", "z", 10)) == 100  # y as part 1 left it
        with batch.running(3):
            assert store.read(get("z")) == 100
        assert CountingConnection.sent == before  # nothing sent before the batch ends
    assert CountingConnection.sent - before == 1
    assert batch.redo == []
    other = counted_stores[1]
    assert [other.read(get(key)) for key in "xyz"] == [1, 10, 100]


def test_a_part_that_read_what_a_refused_part_wrote_is_refused_with_it(
    counted_stores: list[RedisStore],
) -> None:
    mine, other = counted_stores
    mine.transaction(lambda tx: (tx.put("doc", "x", 1), tx.put("doc", "w", 0)))
    with mine.batch() as batch:
        with batch.running("first"):
            mine.transaction(copy("x", "y", 10))  # x is about to change: refused
        with batch.running("second"):
            mine.transaction(copy("y", "z", 10))  # read the refused part's y: refused too
        with batch.running("third"):
            mine.transaction(put("w", 5))  # depends on neither: applied
        other.transaction(put("x", 2))  # another worker commits meanwhile
    assert batch.redo == ["first", "second"]
    assert [other.read(get(key)) for key in "xyzw"] == [2, None, None, 5]
    # The refusal brought x back: run again, the parts go through on the fresh data.
    with mine.batch() as again:
        with again.running("first"):
            assert mine.transaction(copy("x", "y", 10)) == 20
        with again.running("second"):
            assert mine.transaction(copy("y", "z", 10)) == 200
    assert again.redo == []
    assert [other.read(get(key)) for key in "xyzw"] == [2, 20, 200, 5]
    assert [mine.read(get(key)) for key in "xyzw"] == [2, 20, 200, 5]


def test_a_parts_transactions_after_a_refused_one_are_refused_with_it(
    counted_stores: list[RedisStore],
) -> None:
    """A command refused on stale data, then its refusal recorded: the record must not
    stand when the check it followed from was refused (the command may succeed)."""
    mine, other = counted_stores
    mine.transaction(put("lamp", "here"))
    with mine.batch() as batch, batch.running("take"):
        with pytest.raises(LookupError):
            mine.transaction(lambda tx: tx.get("doc", "lamp") == "gone" or _raise(LookupError))
        mine.transaction(put("record", "refused"))  # current by itself
        other.transaction(put("lamp", "gone"))
    assert batch.redo == ["take"]
    assert other.read(get("record")) is None


def _raise(kind: type[Exception]) -> None:
    raise kind


def test_a_set_written_on_an_out_of_date_copy_is_not_trusted_by_later_parts(
    counted_stores: list[RedisStore],
) -> None:
    mine, other = counted_stores
    mine.transaction(lambda tx: tx.add_member("set", "s", "ann"))
    assert mine.read(lambda tx: tx.members("set", "s")) == {"ann"}
    other.transaction(lambda tx: tx.add_member("set", "s", "bob"))  # mine is out of date
    with mine.batch() as batch:
        with batch.running(1):  # adds without reading: applied (ZADD is exact)...
            mine.transaction(lambda tx: tx.add_member("set", "s", "cy"))
        with batch.running(2):  # ...but what it staged missed bob: this read is refused
            mine.read(lambda tx: sorted(tx.members("set", "s")))
    assert batch.redo == [2]
    with mine.batch() as again, again.running(2):
        members = mine.read(lambda tx: sorted(tx.members("set", "s")))
    assert again.redo == []  # the write's answer brought the set as it is now
    assert members == ["ann", "bob", "cy"]


def test_a_counter_staged_by_a_refused_part_is_refused_by_its_readers(
    counted_stores: list[RedisStore],
) -> None:
    mine, other = counted_stores
    mine.transaction(lambda tx: tx.incr("seq", "room"))
    with mine.batch() as batch:
        with batch.running(1):
            assert mine.transaction(lambda tx: tx.incr("seq", "room")) == 2
        with batch.running(2):
            assert mine.read(lambda tx: tx.counter("seq", "room")) == 2
        other.transaction(lambda tx: (tx.incr("seq", "room"), tx.incr("seq", "room")))
    assert batch.redo == [1, 2]
    assert other.read(lambda tx: tx.counter("seq", "room")) == 3
    with mine.batch() as again, again.running(1):
        assert mine.transaction(lambda tx: tx.incr("seq", "room")) == 4


def test_a_failed_batch_leaves_the_copy_as_committed(counted_stores: list[RedisStore]) -> None:
    mine, other = counted_stores
    mine.transaction(put("x", 1))
    with pytest.raises(RuntimeError), mine.batch() as batch, batch.running(1):
        mine.transaction(put("x", 2))
        raise RuntimeError("the worker gave up")
    assert other.read(get("x")) == 1
    before = CountingConnection.sent
    assert mine.read(get("x")) == 1  # the staged 2 is gone from the copy: no refusal
    assert CountingConnection.sent - before == 1


def _rounds(store: RedisStore, parts: dict[str, Callable[[Tx], object]]) -> dict[str, object]:
    """As run_jobs does: the parts in one batch, then the refused ones again in a batch
    opened with ``redo=`` the one before, until none is refused."""
    results: dict[str, object] = {}
    todo, batch = list(parts), None
    for _ in range(3):
        with store.batch(redo=batch) as batch:
            for name in todo:
                with batch.running(name):
                    results[name] = store.transaction(parts[name])
        todo = [name for name in todo if name in batch.redo]
        if not todo:
            return results
    raise AssertionError(f"still refused: {todo}")


def test_a_refused_read_runs_again_on_what_its_refusal_brought_without_a_trip(
    counted_stores: list[RedisStore],
) -> None:
    mine, other = counted_stores
    mine.transaction(put("x", 1))
    mine.transaction(put("y", 1))
    assert mine.read(get("x")) == 1 and mine.read(get("y")) == 1
    other.transaction(put("x", 2))  # mine's copy of x is behind
    before = CountingConnection.sent
    # The read is refused; the write after it, on what the call left, commits y = 3.
    results = _rounds(mine, {"read": get("x"), "write": put("y", 3)})
    assert CountingConnection.sent - before == 1
    assert results["read"] == 2
    assert other.read(get("y")) == 3


def test_a_part_that_read_a_refused_write_is_checked_when_it_runs_again(
    counted_stores: list[RedisStore],
) -> None:
    """Its read of what a refused part staged was never checked against Redis: run again,
    it must not stand on the copy's older value."""
    mine, other = counted_stores
    mine.transaction(put("x", 1))
    mine.transaction(put("y", 0))
    assert mine.read(get("x")) == 1 and mine.read(get("y")) == 0
    other.transaction(put("x", 2))
    other.transaction(put("y", 5))  # mine's copies of both are behind

    def writes_y_while_x_is_1(tx: Tx) -> None:
        if tx.get("doc", "x") == 1:
            tx.put("doc", "y", 1)

    results = _rounds(mine, {"first": writes_y_while_x_is_1, "then": get("y")})
    assert results["then"] == 5
    assert other.read(get("y")) == 5


def test_a_worker_batch_of_jobs_is_one_round_trip_and_stale_jobs_run_again(
    counted_stores: list[RedisStore], world: World, clock: FakeClock
) -> None:
    """Through run_jobs: a warm worker's batch costs one trip; when the other worker changed
    what jobs read meanwhile, they run again and answer from the fresh data, and only those
    that write are checked again."""
    seed_world(counted_stores[0], world)
    first, second = (
        GameService(s, world, passwords=FAST_PASSWORDS, clock=clock) for s in counted_stores
    )
    game = Game(first)
    alice, bob = game.login("Alice"), game.login("Bob")

    def batch_of(*texts: str) -> list[Reply]:
        jobs = [
            [
                JOB_REQUEST,
                encode(ActionRequest(token=alice.token, action_id=uuid.uuid4().hex, text=t)),
            ]
            for t in texts
        ]
        replies = [decode_reply(answer[0]) for answer in run_jobs(first, jobs)]  # type: ignore[index]
        assert all(isinstance(reply, Reply) for reply in replies), replies
        return replies  # type: ignore[return-value]

    batch_of("look", "say hi", "look")  # warm
    before = CountingConnection.sent
    replies = batch_of("say one", "look", "say two", "inventory", "look")
    assert CountingConnection.sent - before == 1
    assert all(reply.ok for reply in replies)
    game.service = second
    bob.act("n")  # Bob leaves: the room's presence changes under the first worker
    before = CountingConnection.sent
    replies = batch_of("say three", "look")
    # The look read the presence and was refused; it runs again on what the refusal brought,
    # which the script checked in that same call: no second trip.
    assert CountingConnection.sent - before == 1
    assert "Bob" not in replies[1].text
    start = alice.room
    alice.act("n")  # Alice moves, on the other worker: her document changes under the first
    before = CountingConnection.sent
    replies = batch_of("say four", "look")
    assert CountingConnection.sent - before == 2  # the say, refused, is checked again
    assert all(reply.ok for reply in replies)
    assert alice.room != start and replies[1].room == alice.room
    # Run twice, logged once, where she is now: the refused run wrote nothing.
    logged = first.store.events_since(room_topic(alice.room), 0)
    assert sum(b"four" in payload for payload in logged) == 1
    assert not any(b"four" in p for p in first.store.events_since(room_topic(start), 0))


def _log(topic: str, seq: int) -> Callable[[Tx], None]:
    return lambda tx: tx.log_event(topic, seq, b'{"seq":%d}' % seq)


def test_a_log_read_in_a_batch_comes_in_its_trip_after_its_commit(
    counted_stores: list[RedisStore],
) -> None:
    mine, other = counted_stores
    other.transaction(_log("t", 1))
    mine.transaction(put("x", 1))
    assert mine.read(get("x")) == 1  # warm: the copy holds x
    before = CountingConnection.sent
    with mine.batch() as batch:
        with batch.running(1):
            assert mine.read(get("x")) == 1
            log = mine.read_log("t", 0)
            assert not log.ready
            with pytest.raises(RuntimeError):
                log.payloads  # noqa: B018  (nothing to read before the batch ends)
        with batch.running(2):
            mine.transaction(_log("t", 2))
    assert CountingConnection.sent - before == 1
    # Read after the script's commit: what the batch itself logged is there too.
    assert log.payloads == [b'{"seq":1}', b'{"seq":2}']
    assert mine.read_log("t", 1).payloads == [b'{"seq":2}']  # outside a batch: at once
    before = CountingConnection.sent
    # Nothing staged: the logs alone, one trip for all.
    with mine.batch() as batch, batch.running(1):
        both = [mine.read_log("t", 0), mine.read_log("empty", 0)]
    assert CountingConnection.sent - before == 1
    assert [len(log.payloads) for log in both] == [2, 0]


def test_a_log_read_with_a_script_redis_forgot_loads_it_and_sends_again(
    counted_stores: list[RedisStore], redis_server: RedisServer
) -> None:
    mine, _ = counted_stores
    mine.transaction(put("x", 1))
    admin = redis.Redis.from_url(redis_server.url())
    admin.script_flush()  # as a restarted Redis would have it
    admin.close()
    with mine.batch() as batch, batch.running(1):
        mine.transaction(put("x", 2))
        mine.transaction(_log("t", 1))
        log = mine.read_log("t", 0)
    assert batch.redo == [] and log.payloads == [b'{"seq":1}']
    assert counted_stores[1].read(get("x")) == 2


def test_a_catchup_in_a_worker_batch_is_read_in_its_trip_with_the_batchs_events(
    counted_stores: list[RedisStore], world: World, clock: FakeClock
) -> None:
    """Through run_jobs: a catch-up's log read goes with the batch's one round trip, after
    its commit; refused with a stale copy, it runs again and answers from the fresh data."""
    seed_world(counted_stores[0], world)
    first, second = (
        GameService(s, world, passwords=FAST_PASSWORDS, clock=clock) for s in counted_stores
    )
    game = Game(first)
    alice = game.login("Alice")
    topic = room_topic(alice.room)
    seen: list[Outcome] = []

    def batch_of(*requests: Request) -> list[object]:
        jobs = [[JOB_REQUEST, encode(request)] for request in requests]
        answers = run_jobs(first, jobs, observer=lambda r, outcome, t: seen.append(outcome))
        return [decode_reply(answer[0]) for answer in answers]  # type: ignore[index]

    def say(text: str) -> ActionRequest:
        return ActionRequest(token=alice.token, action_id=uuid.uuid4().hex, text=f"say {text}")

    catchup = CatchupRequest(token=alice.token, topic=topic, since_seq=0)
    batch_of(say("warm"), catchup)
    before = CountingConnection.sent
    said, caught_up = batch_of(say("hello"), catchup)
    assert CountingConnection.sent - before == 1
    assert isinstance(said, Reply) and isinstance(caught_up, CatchupReply)
    # The catch-up ran first (it only reads) but its log was read after the commit: it
    # holds the say's event, at the seq the commit gave (not a placeholder).
    (hello,) = [event for event in caught_up.events if "hello" in event.text]
    logged = [orjson.loads(raw)["seq"] for raw in first.store.events_since(topic, 0)]
    assert hello.seq > 0 and [event.seq for event in caught_up.events] == logged
    # The observer (metrics) is told of the catch-up as answered, not as it waited.
    (observed,) = [outcome for outcome in seen[-2:] if outcome.reply.type == "catchup"]
    assert isinstance(observed, CatchupOutcome) and observed.reply.events == caught_up.events
    game.service = second
    alice.act("n")  # she moves on the other worker: the first's copy still has her here
    before = CountingConnection.sent
    (refused,) = batch_of(catchup)
    assert CountingConnection.sent - before == 1  # a refused read: no second trip
    assert isinstance(refused, ErrorReply) and refused.code == "forbidden"


TOTAL = TRANSFER_TOTAL


def _transfer(amount: int, point_at: str) -> Callable[[Tx], None]:
    return transfer(amount, point_at, counted=True)


def _snapshot(tx: Tx) -> tuple[object, ...]:
    return transfer_snapshot(tx, counted=True)


def _consistent(snapshot: tuple[object, ...]) -> bool:
    x, y, pointer, mirror, pointer_copy, transfers, amounts = snapshot
    return x + y == TOTAL and mirror == x and pointer == pointer_copy and transfers == amounts  # type: ignore[operator]


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.tuples(
            st.integers(0, 1),  # the worker whose batch this is
            st.lists(  # its parts: a transfer (amount, mirror) or a snapshot (None)
                st.one_of(st.none(), st.tuples(st.integers(-5, 5), st.sampled_from("ab"))),
                min_size=1,
                max_size=6,
            ),
            st.integers(0, 6),  # after how many parts the other worker commits a transfer
            st.booleans(),  # whether it commits another before the refused parts run again
        ),
        min_size=1,
        max_size=12,
    )
)
def test_batches_apply_every_transfer_once_and_show_only_whole_ones(
    redis_server: RedisServer,
    tmp_path: object,
    batches: list[tuple[int, list[tuple[int, str] | None], int, bool]],
) -> None:
    """Two workers' batches interleave with each other's commits. Parts refused run again as
    run_jobs does (batches opened with ``redo=`` the one before, then one by one); every
    transfer lands exactly once, and every snapshot that was not refused saw whole transfers
    only, a snapshot that stood on what its refusal brought included."""
    url = empty_store_url("redis", tmp_path, redis_server)
    stores = [RedisStore(url) for _ in range(2)]
    try:
        stores[0].transaction(lambda tx: [tx.put("doc", k, v) for k, v in TRANSFER_SEED.items()])
        moved = 0
        for worker, parts, interrupt_at, between in batches:
            mine, other = stores[worker], stores[1 - worker]
            todo = list(range(len(parts)))
            batch = None
            for round_ in range(3):
                seen: dict[int, tuple[object, ...] | None] = {}
                if round_ > 0 and between:
                    other.transaction(_transfer(1, "a"))
                    moved += 1
                with mine.batch(redo=batch) as batch:
                    for n, i in enumerate(todo):
                        if round_ == 0 and n == interrupt_at:
                            other.transaction(_transfer(1, "b"))
                            moved += 1
                        part = parts[i]
                        # A part run on a cold or stale copy may fail (x unknown): as in
                        # run_jobs, that failure counts only if the part is not refused.
                        with batch.running(i), contextlib.suppress(TypeError):
                            if part is None:
                                seen[i] = mine.read(_snapshot)
                            else:
                                mine.transaction(_transfer(*part))
                                seen[i] = None
                for i in todo:
                    if i not in batch.redo:
                        assert i in seen, "a part failed on current data"
                        assert seen[i] is None or _consistent(seen[i]), seen[i]
                todo = [i for i in todo if i in batch.redo]
                if not todo:
                    break
            for i in todo:
                part = parts[i]
                if part is None:
                    assert _consistent(mine.read(_snapshot))
                else:
                    mine.transaction(_transfer(*part))
            moved += sum(part[0] for part in parts if part is not None)
            for store in stores:
                final = store.read(_snapshot)
                assert _consistent(final), final
                assert final[0] == TOTAL - moved, (final, moved)
    finally:
        for store in stores:
            store.close()
