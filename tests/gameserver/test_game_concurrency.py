"""Several worker processes applying actions to one shared store at the same time."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from typing import Any

from gamekit import FAST_PASSWORDS

from gameserver.accounts import login
from gameserver.protocol import LoginReply, decode_event
from gameserver.rules import execute
from gameserver.seed import seed_world
from gameserver.store import Store, open_store
from gameserver.store.state import GameState
from gameserver.topics import room_topic
from gameserver.world import load_world

WORKERS = 4
ROUNDS = 8
LOG_SIZE = 10_000  # keep every event so the test can audit them all
ROOM = room_topic("crossroads")


def play(store_url: str, name: str, token: str, start: Barrier, results: Any) -> None:
    """One worker process: each action is sent twice, as a front would after a lost reply."""
    world = load_world()
    outcomes = []
    try:
        with open_store(store_url, event_log_size=LOG_SIZE) as store:
            start.wait(timeout=60)
            for round_ in range(ROUNDS):
                for text in (f"say {name} {round_}", "take lamp", "drop lamp"):
                    action_id = f"{round_}-{text.split()[0]}"
                    first = execute(store, world, token, action_id, text)
                    retry = execute(store, world, token, action_id, text)
                    outcomes.append(
                        {
                            "verb": text.split()[0],
                            "ok": getattr(first.reply, "ok", False),
                            "same": retry.replayed
                            and retry.reply == first.reply
                            and retry.events == first.events,
                            "events": [(e.topic, e.seq, e.kind) for e in first.events],
                        }
                    )
        results.put((name, outcomes, None))
    except Exception as exc:  # report, don't hang the parent
        results.put((name, outcomes, repr(exc)))


def test_concurrent_workers_lose_and_double_nothing(store_url: str) -> None:
    world = load_world()
    with open_store(store_url, event_log_size=LOG_SIZE) as store:
        seed_world(store, world)
        tokens = {}
        for n in range(WORKERS):
            reply = login(store, world, f"Worker{n}", "password", passwords=FAST_PASSWORDS).reply
            assert isinstance(reply, LoginReply)
            tokens[reply.player] = reply.token
        seq_before = room_seq(store)

        context = multiprocessing.get_context("spawn")
        start = context.Barrier(WORKERS)
        results = context.Queue()
        processes = [
            context.Process(target=play, args=(store_url, name, token, start, results))
            for name, token in tokens.items()
        ]
        for process in processes:
            process.start()
        reports = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=30)
            assert process.exitcode == 0

        outcomes = []
        for name, worker_outcomes, error in reports:
            assert error is None, f"{name}: {error}"
            outcomes.extend(worker_outcomes)
        assert len(outcomes) == WORKERS * ROUNDS * 3
        assert all(o["same"] for o in outcomes), "a retried action id was applied again"
        says = [o for o in outcomes if o["verb"] == "say"]
        assert all(o["ok"] for o in says)

        # Every event got its own seq, none was lost, and the log agrees with the replies.
        returned = [event for o in outcomes for event in o["events"]]
        assert len(set(returned)) == len(returned)
        logged = [decode_event(raw) for raw in store.events_since(ROOM, seq_before)]
        assert [e.seq for e in logged] == list(range(seq_before + 1, seq_before + 1 + len(logged)))
        assert sorted((e.topic, e.seq, e.kind) for e in logged) == sorted(returned)
        assert sum(e.kind == "say" for e in logged) == WORKERS * ROUNDS

        takes = sum(o["ok"] for o in outcomes if o["verb"] == "take")
        drops = sum(o["ok"] for o in outcomes if o["verb"] == "drop")
        assert takes == sum(e.kind == "take" for e in logged) >= 1
        assert drops == sum(e.kind == "drop" for e in logged)

        def lamp(tx: Any) -> tuple[str | None, list[str]]:
            state = GameState(tx)
            return state.item_location("lamp"), state.items_in_room("crossroads")

        location, in_room = store.transaction(lamp)
        assert takes - drops == (0 if location == "room:crossroads" else 1)
        assert ("lamp" in in_room) == (location == "room:crossroads")


def room_seq(store: Store) -> int:
    return store.transaction(lambda tx: GameState(tx).last_seq(ROOM))
