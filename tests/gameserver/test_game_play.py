"""Two (or three) players playing through the worker API, on both backends."""

from __future__ import annotations

import secrets

from gamekit import FakeClock, Game

from gameserver.protocol import (
    ActionRequest,
    CatchupReply,
    CatchupRequest,
    ErrorReply,
    LoginReply,
    LoginRequest,
    Reply,
    ResumeRequest,
    decode_event,
    decode_reply,
    encode,
)
from gameserver.service import GameService
from gameserver.topics import WORLD_TOPIC, private_topic, room_topic


def test_players_see_each_other_arrive_and_talk(game: Game) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    assert "Bob appears." in alice.heard("arrive")
    assert "Bob has entered the world." in alice.heard("login")
    assert "Alice is here." in bob.say_ok("look")

    bob.say_ok("say hello there")
    assert 'Bob says, "hello there"' in alice.heard("say")
    alice.say_ok("'hi Bob")
    assert 'Alice says, "hi Bob"' in bob.heard("say")
    bob.say_ok(":waves")
    assert "Bob waves." in alice.heard("emote")
    alice.say_ok("shout anyone about?")
    assert 'Alice shouts, "anyone about?"' in bob.heard("shout")
    arrive = next(e for e in alice.inbox if e.kind == "arrive" and e.actor == "Bob")
    assert arrive.topic == room_topic("crossroads")


def test_take_and_give(game: Game) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    assert alice.say_ok("take the lamp") == "You take the brass lamp."
    assert "Alice takes the brass lamp." in bob.heard("take")
    refused = bob.act("get lamp").reply
    assert isinstance(refused, Reply) and not refused.ok and "no 'lamp'" in refused.text

    assert alice.say_ok("give lantern to bob") == "You give the brass lamp to Bob."
    assert "Alice gives the brass lamp to Bob." in bob.heard("give")
    assert "brass lamp" in bob.say_ok("i")
    assert alice.say_ok("inventory") == "You are empty-handed."
    bob.say_ok("drop lamp")
    assert "brass lamp" in alice.say_ok("look")


def test_whispers_reach_only_the_recipient(game: Game) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    carol = game.login("Carol")
    carol.say_ok("north")
    outcome = alice.act("whisper bob meet me at the bridge")
    assert isinstance(outcome.reply, Reply)
    assert outcome.reply.text == 'You whisper to Bob, "meet me at the bridge"'
    assert [event.topic for event in outcome.events] == [bob.private_topic]
    assert bob.heard("whisper") == ['Alice whispers to you, "meet me at the bridge"']
    assert alice.heard("whisper") == carol.heard("whisper") == []
    # tell is the same command and works across rooms
    carol.say_ok("tell alice hi")
    assert alice.heard("whisper") == ['Carol whispers to you, "hi"']
    assert bob.heard("whisper") == ['Alice whispers to you, "meet me at the bridge"']


def test_private_topic_is_secret_and_per_session(game: Game) -> None:
    alice = game.login("Alice")
    assert alice.private_topic == private_topic(alice.token)
    assert "alice" not in alice.private_topic.lower()
    again = game.login("Alice")
    assert again.private_topic != alice.private_topic


def test_walking_moves_between_room_topics(game: Game) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    text = alice.say_ok("ne")
    assert text.startswith("The Wayfarer's Rest")
    assert "Alice leaves northeast." in bob.heard("depart")
    alice.say_ok("up")
    assert alice.room == "inn_loft"
    bob.say_ok("go northeast")
    bob.say_ok("u")
    assert "Bob arrives from below." in alice.heard("arrive")
    refused = alice.act("north").reply
    assert isinstance(refused, Reply) and not refused.ok
    assert refused.text == "You can't go north from here. Exits: down."


def test_cannot_act_as_someone_else(game: Game, service: GameService) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    forged_tokens = [
        secrets.token_urlsafe(32),
        bob.private_topic.replace(".", "_"),
        alice.token[:-1] + ("A" if alice.token[-1] != "A" else "B"),
    ]
    for token in forged_tokens:
        reply = service.handle(
            ActionRequest(token=token, action_id="x1", text="say I am Bob")
        ).reply
        assert isinstance(reply, ErrorReply) and reply.code == "unauthorized"
    assert bob.heard("say") == []
    # What a player's token does is always done as that player.
    alice.say_ok("say it is me")
    assert bob.heard("say") == ['Alice says, "it is me"']


def test_wrong_password_is_rejected(game: Game, service: GameService) -> None:
    game.login("Alice", "right password")
    outcome = service.handle(LoginRequest(name="ALICE", password="wrong password"))
    assert isinstance(outcome.reply, ErrorReply) and outcome.reply.code == "bad_credentials"
    assert outcome.events == []
    bad = service.handle(LoginRequest.model_construct(name="x", password="secret"))
    assert isinstance(bad.reply, ErrorReply) and bad.reply.code == "bad_request"


def test_new_login_replaces_the_old_session(game: Game, service: GameService) -> None:
    first = game.login("Alice")
    bob = game.login("Bob")
    second = game.login("Alice")
    assert first.heard("session_replaced") == ["You logged in elsewhere."]
    assert "Alice appears." not in bob.heard("arrive")  # Alice never left
    stale = service.handle(ActionRequest(token=first.token, action_id="z", text="look")).reply
    assert isinstance(stale, ErrorReply) and stale.code == "unauthorized"
    second.say_ok("look")


def test_quit_ends_the_session(game: Game, service: GameService) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    outcome = alice.act("quit", action_id="bye")
    assert isinstance(outcome.reply, Reply) and outcome.reply.session_ended
    assert "Alice fades from view." in bob.heard("depart")
    assert "Alice has left the world." in bob.heard("logout")
    assert "Alice" not in bob.say_ok("who")
    after = alice.act("look").reply
    assert isinstance(after, ErrorReply) and after.code == "unauthorized"
    assert alice.act("quit", action_id="bye").reply == outcome.reply  # a lost reply can be retried
    resumed = service.handle(ResumeRequest(token=alice.token)).reply
    assert isinstance(resumed, ErrorReply) and resumed.code == "unauthorized"


def test_resume_reattaches_without_events(game: Game, service: GameService) -> None:
    alice = game.login("Alice")
    outcome = service.handle(ResumeRequest(token=alice.token))
    assert outcome.reply.type == "login_ok" and outcome.events == []
    assert outcome.reply.private_topic == alice.private_topic


def test_catchup_returns_missed_events(game: Game, service: GameService) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    for n in range(3):
        bob.say_ok(f"say message {n}")
    topic = room_topic("crossroads")
    seqs = [e.seq for e in game.published if e.topic == topic]
    request = CatchupRequest(token=alice.token, topic=topic, since_seq=seqs[-3] - 1)
    reply = service.handle(request).reply
    assert isinstance(reply, CatchupReply) and not reply.truncated
    assert [e.text for e in reply.events] == [f'Bob says, "message {n}"' for n in range(3)]
    whole = service.handle(CatchupRequest(token=alice.token, topic=WORLD_TOPIC, since_seq=0)).reply
    assert isinstance(whole, CatchupReply) and len(whole.events) == 2

    for forbidden in (room_topic("chapel"), bob.private_topic):
        denied = service.handle(CatchupRequest(token=alice.token, topic=forbidden, since_seq=0))
        assert isinstance(denied.reply, ErrorReply) and denied.reply.code == "forbidden"


def test_who_examine_and_errors(game: Game) -> None:
    alice = game.login("Alice")
    game.login("Bob").say_ok("n")
    assert alice.say_ok("who") == "2 player(s) online: Alice (The Crossroads) and Bob (North Road)."
    assert "Tobin the pedlar: A wiry man" in alice.say_ok("x pedlar")
    assert "Weathered signpost: Its arms point" in alice.say_ok("look at sign")
    refused = alice.act("take signpost").reply
    assert isinstance(refused, Reply) and refused.text == "The weathered signpost won't budge."
    for text in ("take", "give lamp", "whisper bob", "go sideways", ""):
        reply = alice.act(text).reply
        assert isinstance(reply, Reply) and not reply.ok and reply.text


def test_idle_session_expires(game: Game, service: GameService, clock: FakeClock) -> None:
    alice = game.login("Alice")
    clock.advance(service.session_ttl + 1)
    reply = alice.act("look").reply
    assert isinstance(reply, ErrorReply) and reply.code == "unauthorized"


def test_worker_byte_interface(service: GameService) -> None:
    """What a worker does with a frame: bytes in, reply bytes and (topic, payload) pairs out."""
    login = service.handle_bytes(encode(LoginRequest(name="Alice", password="secret")))
    reply = decode_reply(login.reply_bytes())
    assert isinstance(reply, LoginReply)
    assert [topic for topic, _ in login.publications()] == [room_topic("crossroads"), WORLD_TOPIC]
    assert all(decode_event(payload).topic == topic for topic, payload in login.publications())
    action = ActionRequest(token=reply.token, action_id="1", text="say hi")
    said = decode_reply(service.handle_bytes(encode(action)).reply_bytes())
    assert isinstance(said, Reply) and said.text == 'You say, "hi"'
    for garbage in (b"", b"\x00" * 10, b'{"v": 1, "type": "action"}'):
        error = decode_reply(service.handle_bytes(garbage).reply_bytes())
        assert isinstance(error, ErrorReply) and error.code == "bad_request"
