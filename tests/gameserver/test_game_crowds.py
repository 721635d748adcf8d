"""A crowded room costs no more per action than a quiet one: what an action reads is bounded
by what it shows, never by how many players are present (counted on a real store)."""

from __future__ import annotations

from pathlib import Path

from gamekit import FAST_PASSWORDS, CountingStore, FakeClock, Game, Player

from client.protocol import MAX_ANSWER_BYTES
from gameserver.jobs import run_jobs
from gameserver.limits import MAX_WORKER_MESSAGE_BYTES
from gameserver.narration import NAMES_SHOWN
from gameserver.presence import ROOM_ANNOUNCEMENTS_UP_TO, WORLD_ANNOUNCEMENTS_UP_TO
from gameserver.protocol import (
    MAX_TEXT_CHARS,
    ActionRequest,
    CatchupReply,
    CatchupRequest,
    LoginRequest,
    Reply,
    ResumeRequest,
    decode_marks,
    decode_reply,
    encode,
    request_job,
)
from gameserver.seed import seed_world
from gameserver.service import GameService
from gameserver.store import DEFAULT_EVENT_LOG_SIZE, Store, Tx
from gameserver.store.records import PlayerRecord
from gameserver.store.state import GameState
from gameserver.topics import WORLD_TOPIC, room_topic
from gameserver.world import World

CROWD = 5_000
#: Documents a look may read whatever the crowd: session, player, action id, clock, the
#: room's items and NPCs, and the names it shows (plus one to know there are more).
LOOK_READ_BOUND = 20 + NAMES_SHOWN
#: ``who`` reads the keys of the players it lists and their documents (for their rooms).
WHO_READ_BOUND = 20 + 2 * NAMES_SHOWN


def crowd_game(
    store: Store, world: World, clock: FakeClock, *, crowd: int = CROWD, room: str | None = None
) -> tuple[Game, CountingStore]:
    """A game with ``crowd`` players online in ``room`` (the start room unless given)."""
    seed_world(store, world)

    def fill(tx: Tx) -> None:
        state = GameState(tx)
        for i in range(crowd):
            name = f"Crowd{i:05d}"
            state.put_player(
                PlayerRecord(
                    key=name.lower(), name=name, room=room or world.start_room, online=True
                )
            )

    store.transaction(fill)
    counting = CountingStore(store)
    return Game(GameService(counting, world, passwords=FAST_PASSWORDS, clock=clock)), counting


def test_look_in_a_crowd_reads_a_bounded_number_of_documents(
    store: Store, world: World, clock: FakeClock
) -> None:
    game, counting = crowd_game(store, world, clock)
    viewer = game.login("Viewer")
    counting.counts.reset()
    text = viewer.say_ok("look")
    assert counting.counts.documents_read <= LOOK_READ_BOUND, counting.counts
    others = CROWD - NAMES_SHOWN
    assert text.endswith(f"and {others:,} others are here."), text[-200:]
    assert text.count("Crowd") == NAMES_SHOWN
    assert "Viewer" not in text.split("\n", 2)[2]  # the viewer never sees themselves


def test_logins_and_resumes_say_where_the_world_and_the_room_stand(
    store: Store, world: World, clock: FakeClock
) -> None:
    """Past WORLD_ANNOUNCEMENTS_UP_TO online, a login publishes nothing to the world, a
    takeover nothing public at all, a resume nothing: the reply's marks still carry each
    public topic's last seq, so the client starts there instead of fetching a whole log."""
    elsewhere = world.room(world.start_room).exits["north"]  # the start room stays quiet
    game, _ = crowd_game(store, world, clock, crowd=WORLD_ANNOUNCEMENTS_UP_TO + 1, room=elsewhere)
    bob = game.login("Bob")
    bob.say_ok("say something for the room's log")
    room = room_topic(world.start_room)
    state_now = store.read(
        lambda tx: {topic: GameState(tx).last_seq(topic) for topic in (WORLD_TOPIC, room)}
    )
    after_carol = state_now | {room: state_now[room] + 1}  # her arrival, and no world event

    def wire_marks(request: LoginRequest | ResumeRequest) -> dict[str, int]:
        (frames,) = run_jobs(game.service, [request_job(encode(request))])
        return decode_marks(frames[1])

    assert wire_marks(LoginRequest(name="Carol", password="correct horse")) == after_carol
    takeover = wire_marks(LoginRequest(name="Carol", password="correct horse"))
    assert takeover == after_carol
    assert wire_marks(ResumeRequest(token=bob.token)) == after_carol


def test_a_move_into_a_crowded_room_says_where_the_room_stands(
    store: Store, world: World, clock: FakeClock
) -> None:
    """A crowded room is not told who comes, so no arrival marks where a newcomer starts
    following it: the reply's marks still carry the room's last seq, and the catch-up the
    client then sends brings nothing of the room's past (before, it fetched the whole log
    on every move into a crowd). A quiet room's mark is the arrival itself, as before."""
    north = world.room(world.start_room).exits["north"]
    game, _ = crowd_game(store, world, clock, crowd=ROOM_ANNOUNCEMENTS_UP_TO, room=north)
    alice, bob = game.login("Alice"), game.login("Bob")
    alice.say_ok("north")  # the 101st: not told
    for i in range(5):
        alice.say_ok(f"say the room's past, {i}")
    topic = room_topic(north)
    head = store.read(lambda tx: GameState(tx).last_seq(topic))
    assert head >= 5

    def answer(request: ActionRequest | CatchupRequest) -> tuple[object, dict[str, int]]:
        (frames,) = run_jobs(game.service, [request_job(encode(request))])
        return decode_reply(frames[0]), decode_marks(frames[1]) if len(frames) > 1 else {}

    reply, marks = answer(ActionRequest(token=bob.token, action_id="bob-north", text="north"))
    assert isinstance(reply, Reply) and reply.room == north
    assert marks[topic] == head  # (and the quiet room he left: his departure)
    catchup, _ = answer(CatchupRequest(token=bob.token, topic=topic, since_seq=marks[topic]))
    assert isinstance(catchup, CatchupReply) and list(catchup.events) == []
    alice.say_ok("say now")  # what comes after the mark still reaches him
    catchup, _ = answer(CatchupRequest(token=bob.token, topic=topic, since_seq=marks[topic]))
    assert isinstance(catchup, CatchupReply)
    assert [(event.kind, event.actor) for event in catchup.events] == [("say", "Alice")]

    # A quiet room: its mark is his own arrival there.
    reply, marks = answer(ActionRequest(token=bob.token, action_id="bob-south", text="south"))
    quiet = room_topic(world.start_room)
    arrival = store.read(lambda tx: GameState(tx).last_seq(quiet))
    assert marks[quiet] == arrival
    catchup, _ = answer(CatchupRequest(token=bob.token, topic=quiet, since_seq=arrival - 1))
    assert isinstance(catchup, CatchupReply)
    assert [(event.kind, event.actor) for event in catchup.events] == [("arrive", "Bob")]


def test_who_examine_and_give_in_a_crowd_stay_bounded(
    store: Store, world: World, clock: FakeClock
) -> None:
    game, counting = crowd_game(store, world, clock)
    alice = game.login("Alice")
    alice.say_ok("take lamp")
    for command in (
        "who",
        "examine crowd04999",
        "give lamp to crowd04321",
        "whisper crowd03000 hi",
    ):
        counting.counts.reset()
        reply = alice.act(command).reply
        assert isinstance(reply, Reply) and reply.ok, (command, reply)
        bound = WHO_READ_BOUND if command == "who" else LOOK_READ_BOUND
        assert counting.counts.documents_read <= bound, (command, counting.counts)
    assert alice.say_ok("who").startswith(f"{CROWD + 1} player(s) online: ")


def test_a_crowded_world_hears_logins_only_in_the_room(
    store: Store, world: World, clock: FakeClock
) -> None:
    """The world topic reaches every player online: a login told to all of them would cost a
    delivery per player online. A busy world hears of it in the player's room only (here a
    quiet one: the crowd is elsewhere)."""
    assert CROWD > WORLD_ANNOUNCEMENTS_UP_TO
    elsewhere = world.room(world.start_room).exits["north"]
    game, _ = crowd_game(store, world, clock, room=elsewhere)
    alice = game.login("Alice")
    alice.say_ok("quit")
    kinds = [(event.topic, event.kind) for event in game.published]
    start = room_topic(world.start_room)
    assert kinds == [(start, "arrive"), (start, "depart")], kinds


def test_a_crowded_room_is_not_told_who_comes_and_goes(
    store: Store, world: World, clock: FakeClock
) -> None:
    """Up to ROOM_ANNOUNCEMENTS_UP_TO players in a room, counting the one who comes or goes,
    the room hears each arrival and departure; past it, none. It still hears what is said."""
    north = world.room(world.start_room).exits["north"]
    game, counting = crowd_game(store, world, clock, crowd=ROOM_ANNOUNCEMENTS_UP_TO - 1, room=north)
    alice, bob = game.login("Alice"), game.login("Bob")

    def heard(player: Player, command: str, room: str = north) -> list[str]:
        game.published.clear()
        player.say_ok(command)
        return [e.kind for e in game.published if e.topic == room_topic(room)]

    assert heard(alice, "north") == ["arrive"]  # the room's 100th
    counting.counts.reset()
    assert heard(bob, "north") == []  # the 101st: a crowd
    assert counting.counts.documents_read <= LOOK_READ_BOUND, counting.counts
    assert heard(bob, "say hello, crowd") == ["say"]
    assert heard(bob, "south") == []  # the room held 101 with him
    assert heard(alice, "south", world.start_room) == ["arrive"]  # a quiet room: told
    assert game.published[0].topic == room_topic(north)  # and 100 with her: told too
    assert heard(bob, "north") == ["arrive"]  # 100 again, with him


def test_a_crowded_room_is_not_told_who_logs_in_or_out(
    store: Store, world: World, clock: FakeClock
) -> None:
    game, _ = crowd_game(store, world, clock, crowd=ROOM_ANNOUNCEMENTS_UP_TO)
    alice = game.login("Alice")  # the start room's 101st
    alice.say_ok("quit")
    assert [e.kind for e in game.published if e.topic == room_topic(world.start_room)] == []


def test_a_quiet_world_hears_logins_up_to_the_limit(game: Game) -> None:
    """Up to WORLD_ANNOUNCEMENTS_UP_TO players online, each login and logout is told to all."""
    players = [game.login(f"P{i:03d}") for i in range(WORLD_ANNOUNCEMENTS_UP_TO + 1)]
    worldwide = [e.kind for e in game.published if e.topic == WORLD_TOPIC]
    assert worldwide == ["login"] * WORLD_ANNOUNCEMENTS_UP_TO  # not the 101st
    game.published.clear()
    players[0].say_ok("quit")  # the 101st online: unheard, as a login would have been
    players[1].say_ok("quit")  # the 100th: heard
    assert [e.kind for e in game.published if e.topic == WORLD_TOPIC] == ["logout"]


def test_presence_follows_enter_move_and_leave(game: Game) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    assert alice.say_ok("look").endswith("Bob is here.")
    bob.say_ok("n")
    assert "Bob" not in alice.say_ok("look")
    bob.say_ok("s")
    carol = game.login("Carol")
    assert alice.say_ok("look").endswith("Bob and Carol are here.")
    carol.say_ok("quit")
    assert alice.say_ok("look").endswith("Bob is here.")


def test_a_store_from_before_presence_gets_its_presence_built(store: Store, world: World) -> None:
    seed_world(store, world)
    room = world.start_room

    def older_store(tx: Tx) -> None:  # online players, but no presence record yet
        state = GameState(tx)
        state.put_player(PlayerRecord(key="ann", name="Ann", room=room, online=True))
        tx.remove_member("present", room, "Ann")
        tx.delete("meta", "presence_format")

    store.transaction(older_store)
    assert store.transaction(lambda tx: GameState(tx).present_count(room)) == 0
    assert seed_world(store, world)  # the upgrade is a change
    names = store.transaction(lambda tx: GameState(tx).present_names(room, 10))
    assert names == ["Ann"]
    assert not seed_world(store, world)  # once only


READ_ONLY_COMMANDS = ("look", "inventory", "who", "examine lamp", "help", "help say", "x me")


def test_read_only_actions_write_nothing(store: Store, world: World, clock: FakeClock) -> None:
    seed_world(store, world)
    counting = CountingStore(store)
    game = Game(GameService(counting, world, passwords=FAST_PASSWORDS, clock=clock))
    alice = game.login("Alice")
    game.login("Bob")
    wal = Path(store.url.removeprefix("sqlite:///") + "-wal")
    wal_size = wal.stat().st_size if wal.exists() else None
    counting.counts.reset()
    for command in (*READ_ONLY_COMMANDS, "examine nothing-here"):
        alice.act(command)
    assert counting.counts.writes == 0, counting.counts
    assert counting.counts.write_transactions == 0, counting.counts
    assert counting.counts.read_transactions == len(READ_ONLY_COMMANDS) + 1
    if wal_size is not None:  # SQLite: not one byte appended to the log, so nothing to sync
        assert wal.stat().st_size == wal_size
    # A retried look (same action id) is harmless: it looks again.
    first = alice.act("look", action_id="same-look").reply
    assert first == alice.act("look", action_id="same-look").reply
    # An action with effects is still a recorded write.
    alice.say_ok("say hello")
    assert counting.counts.write_transactions == 1 and counting.counts.writes > 0


def test_a_catchup_writes_nothing_and_replies_the_logged_events(
    store: Store, world: World, clock: FakeClock
) -> None:
    seed_world(store, world)
    counting = CountingStore(store)
    game = Game(GameService(counting, world, passwords=FAST_PASSWORDS, clock=clock))
    alice = game.login("Alice")
    bob = game.login("Bob")
    bob.say_ok("say one")
    bob.say_ok("say two")
    topic = room_topic(alice.room)
    counting.counts.reset()
    outcome = game.service.handle(CatchupRequest(token=alice.token, topic=topic, since_seq=0))
    assert counting.counts.writes == 0, counting.counts
    assert counting.counts.write_transactions == 0, counting.counts
    reply = decode_reply(outcome.reply_bytes())  # the bytes a client gets, logged payloads inside
    assert isinstance(reply, CatchupReply) and reply == outcome.reply
    assert [e.text for e in reply.events if e.kind == "say"][-2:] == [
        e.text for e in game.published if e.topic == topic and e.kind == "say"
    ][-2:]
    assert [e.seq for e in reply.events] == sorted(e.seq for e in reply.events)


def test_a_full_log_of_the_largest_events_fits_every_cap(
    store: Store, world: World, clock: FakeClock
) -> None:
    """A catch-up of a whole topic log of the longest says (4-byte characters, the most bytes
    a say can be) is within what a worker may send and what a client accepts."""
    seed_world(store, world)
    game = Game(GameService(store, world, passwords=FAST_PASSWORDS, clock=clock))
    alice = game.login("Alice")
    bob = game.login("Bob")
    said = MAX_TEXT_CHARS - len("say 0000")  # a command line is at most MAX_TEXT_CHARS
    for i in range(DEFAULT_EVENT_LOG_SIZE + 1):
        bob.say_ok(f"say {i:04d}" + "\U0001d11e" * said)
    topic = room_topic(alice.room)
    outcome = game.service.handle(CatchupRequest(token=alice.token, topic=topic, since_seq=0))
    answer = outcome.reply_bytes()
    reply = decode_reply(answer)
    assert isinstance(reply, CatchupReply) and reply.truncated
    assert len(reply.events) == DEFAULT_EVENT_LOG_SIZE
    assert len(answer) > DEFAULT_EVENT_LOG_SIZE * said * 4  # the largest says, all there
    assert len(answer) < min(MAX_ANSWER_BYTES, MAX_WORKER_MESSAGE_BYTES)


def test_a_read_only_action_renews_an_ageing_session(
    store: Store, world: World, clock: FakeClock
) -> None:
    seed_world(store, world)
    counting = CountingStore(store)
    service = GameService(counting, world, passwords=FAST_PASSWORDS, clock=clock)
    alice = Game(service).login("Alice")
    for _ in range(3):  # each look past the slack renews; none in between
        clock.advance(service.session_ttl * 0.6)
        counting.counts.reset()
        alice.say_ok("look")
        assert counting.counts.write_transactions == 1
        counting.counts.reset()
        alice.say_ok("look")
        assert counting.counts.write_transactions == 0


def test_the_idle_reaper_looks_at_a_bounded_slice_per_tick(
    store: Store, world: World, clock: FakeClock
) -> None:
    from gameserver.ticker import REAP_PER_TICK

    game, counting = crowd_game(store, world, clock)  # the crowd has no live sessions
    service = game.service
    reaped = ticks = 0
    departures = []
    while reaped < CROWD and ticks <= CROWD // REAP_PER_TICK:
        ticks += 1
        clock.advance(world.clock.tick_seconds)
        counting.counts.reset()
        departures += [event for event in service.tick() if event.kind == "depart"]
        # Each reaped player: their document, the online count (is the world crowded?), the
        # room's (is it?) and, once it is not, a "fades away" event; nothing for the rest.
        assert counting.counts.documents_read <= 5 * REAP_PER_TICK + 50, counting.counts
        reaped = CROWD - store.read(lambda tx: GameState(tx).online_count())
    assert reaped == CROWD and ticks == CROWD // REAP_PER_TICK
    assert len(departures) == ROOM_ANNOUNCEMENTS_UP_TO  # the room is told once it is quiet
