"""The commands and rules a MUD player expects (issue 16), through the worker API on both
backends: each command as a player types it, and what others see or do not see."""

from __future__ import annotations

import re

from gamekit import Game, Player

from gameserver.mailbox import MAX_PAGES_FROM_ONE, MAX_WAITING_PAGES
from gameserver.protocol import (
    CatchupReply,
    CatchupRequest,
    ErrorReply,
    LoginReply,
    LoginRequest,
    Reply,
)
from gameserver.service import GameService
from gameserver.topics import WORLD_TOPIC


def test_a_replaced_session_may_read_only_its_own_private_topic(
    game: Game, service: GameService
) -> None:
    first = game.login("Alice")
    game.login("Alice")  # logged in elsewhere
    own = service.handle(CatchupRequest(token=first.token, topic=first.private_topic, since_seq=0))
    assert isinstance(own.reply, CatchupReply)
    assert [e.kind for e in own.reply.events] == ["session_replaced"]
    world = service.handle(CatchupRequest(token=first.token, topic=WORLD_TOPIC, since_seq=0))
    assert isinstance(world.reply, ErrorReply) and world.reply.code == "unauthorized"


def test_registration_can_wait_and_a_login_can_change_the_password(
    game: Game, service: GameService
) -> None:
    refused = service.handle(LoginRequest(name="Erin", password="first-pw", must_exist=True))
    assert isinstance(refused.reply, ErrorReply) and refused.reply.code == "no_account"
    assert refused.events == []  # nothing was made
    made = service.handle(LoginRequest(name="Erin", password="first-pw"))
    assert isinstance(made.reply, LoginReply) and made.reply.created
    wrong = service.handle(LoginRequest(name="Erin", password="nope-pw", new_password="evil-pw"))
    assert isinstance(wrong.reply, ErrorReply) and wrong.reply.code == "bad_credentials"
    change = LoginRequest(name="Erin", password="first-pw", new_password="second-pw")
    changed = service.handle(change)
    assert isinstance(changed.reply, LoginReply) and not changed.reply.created
    old = service.handle(LoginRequest(name="Erin", password="first-pw", must_exist=True))
    assert isinstance(old.reply, ErrorReply) and old.reply.code == "bad_credentials"
    new = service.handle(LoginRequest(name="Erin", password="second-pw", must_exist=True))
    assert isinstance(new.reply, LoginReply)
    player = game.login("Erin", "second-pw")
    refusal = player.act("password").reply
    assert isinstance(refusal, Reply) and not refusal.ok and "client's prompt" in refusal.text
    assert "Passwords are 4 to 128" in player.say_ok("help password")


def refused(player: Player, text: str) -> str:
    reply = player.act(text).reply
    assert isinstance(reply, Reply) and not reply.ok, reply
    return reply.text


def test_pose_and_emote_put_the_name_in(game: Game) -> None:
    alice, bob = game.login("alice"), game.login("bob")
    assert alice.say_ok("pose waves") == "alice waves."
    assert alice.say_ok("emote Smiling, /me bows!") == "Smiling, alice bows!"
    assert bob.heard("emote") == ["alice waves.", "Smiling, alice bows!"]
    assert "Usage: emote" in alice.say_ok("help pose")


def test_page_reaches_another_room_and_waits_for_an_offline_player(game: Game) -> None:
    alice, bob = game.login("alice"), game.login("bob")
    bob.say_ok("north")
    assert alice.say_ok("page bob over here") == 'You page bob, "over here"'
    assert bob.heard("page") == ['alice pages you, "over here"']
    bob.say_ok("quit")
    reply = alice.say_ok("page Bob see you later")
    assert "bob is away; they will get your page at their next login" in reply
    assert "Nobody is called 'nobody'" in refused(alice, "page nobody hi")
    back = game.login("bob")  # delivered on the new session's private topic
    assert back.heard("page") == ['alice pages you, "see you later" (while you were away)']
    again = game.login("bob")
    assert again.heard("page") == []  # delivered once


def test_one_player_cannot_fill_anothers_mailbox(game: Game) -> None:
    senders = [game.login(name) for name in ("alice", "carol", "dave", "erin", "fay")]
    game.login("bob").say_ok("quit")
    alice = senders[0]
    for n in range(MAX_PAGES_FROM_ONE):
        alice.say_ok(f"page bob note {n}")
    # Alice's sixth waits for Bob's login; the others can still leave theirs.
    assert "You have left 5 pages waiting already" in refused(alice, "page bob one more")
    for other, count in zip(senders[1:], (4, 4, 4, 3), strict=True):
        for n in range(count):
            other.say_ok(f"page bob hi {n}")
    # 5 + 4 + 4 + 4 + 3 = 20 fill the mailbox: Fay's fourth is refused as full.
    assert "Their mailbox is full" in refused(senders[-1], "page bob the last")
    heard = game.login("bob").heard("page")
    assert len(heard) == MAX_WAITING_PAGES
    assert sum(1 for text in heard if text.startswith("alice pages")) == MAX_PAGES_FROM_ONE


def test_the_ooc_channel_and_leaving_it(game: Game) -> None:
    alice, bob = game.login("alice"), game.login("bob")
    bob.say_ok("north")
    alice.say_ok("ooc hello all")
    assert bob.heard("channel") == ["[ooc] alice: hello all"]
    assert bob.say_ok("channel") == "Channels: ooc (joined)."
    assert bob.say_ok("channel leave ooc") == "You leave the ooc channel."
    assert "You left the ooc channel" in refused(bob, "chat hi")
    assert bob.say_ok("channels") == "Channels: ooc (left)."
    bob.say_ok("channel join ooc")
    bob.say_ok("chat back")
    assert "[ooc] bob: back" in alice.heard("channel")


def test_nicks_stand_for_lines(game: Game) -> None:
    alice, bob = game.login("alice"), game.login("bob")
    assert alice.say_ok("nick gr = say Greetings,") == "'gr' now stands for: say Greetings,"
    assert alice.say_ok("gr traveller!") == 'You say, "Greetings, traveller!"'
    assert 'alice says, "Greetings, traveller!"' in bob.heard("say")
    assert "is a command already" in refused(alice, "nick look = say no")
    alice.say_ok("nick loop = loop")
    assert "Unknown command 'loop'" in refused(alice, "loop")  # a nick never runs a nick
    assert "gr = say Greetings," in alice.say_ok("alias")
    assert "Unknown command 'gr'" in refused(bob, "gr")  # nicks are one's own
    alice.say_ok("unnick gr")
    assert "Unknown command 'gr'" in refused(alice, "gr")


def test_setdesc_is_what_others_see(game: Game) -> None:
    alice, bob = game.login("alice"), game.login("bob")
    assert bob.say_ok("look alice") == "alice is a fellow traveller."
    alice.say_ok("setdesc A tall woman in a green cloak.")
    assert bob.say_ok("look alice") == "alice: A tall woman in a green cloak."
    assert "at most 300" in refused(alice, "setdesc " + "x" * 301)
    # A bare `describe` (its alias) shows it; it used to erase it.
    assert alice.say_ok("describe") == "Others see: A tall woman in a green cloak."
    assert alice.say_ok("look me").endswith("Others see: A tall woman in a green cloak.")
    assert bob.say_ok("look alice") == "alice: A tall woman in a green cloak."
    assert alice.say_ok("setdesc clear") == "Your description is cleared."
    assert bob.say_ok("look alice") == "alice is a fellow traveller."
    assert alice.say_ok("setdesc").startswith("You have no description.")


def test_the_pedlar_is_there_but_takes_no_notice(game: Game) -> None:
    """Tobin stands at the crossroads: "nobody called 'tobin' is around" was wrong."""
    alice = game.login("alice")
    alice.say_ok("take lamp")
    assert refused(alice, "give lamp to tobin") == "Tobin the pedlar takes no notice of you."
    assert refused(alice, "whisper tobin hello") == "Tobin the pedlar takes no notice of you."
    assert refused(alice, "look at") == "Look at what?"  # was "You see no 'at' here."
    assert alice.say_ok("look at tobin").startswith("Tobin the pedlar: ")
    alice.say_ok("north")  # where no pedlar is, nobody is
    assert refused(alice, "whisper tobin hello") == "Nobody called 'tobin' is around."


def test_bare_forget_and_unignore_ask_which(game: Game) -> None:
    alice = game.login("alice")
    game.login("bob")
    assert refused(alice, "unnick") == "Forget which nick? Usage: unnick <word>"
    assert refused(alice, "nick =") == "Usage: nick <word> = <line>"
    assert refused(alice, "unignore") == "Hear whom again? Usage: unignore <player>"
    assert "You have no nick 'zz'" in refused(alice, "unnick zz")
    assert "You are not ignoring bob" in refused(alice, "unignore bob")


def test_home_and_sethome(game: Game) -> None:
    alice, bob = game.login("alice"), game.login("bob")
    assert "You are home already" in refused(alice, "home")
    alice.say_ok("north")
    alice.say_ok("north")
    assert alice.say_ok("home").startswith("The Crossroads")
    assert "alice arrives home." in bob.heard("arrive")
    alice.say_ok("east")
    assert "is your home now" in alice.say_ok("sethome")
    alice.say_ok("west")
    assert alice.say_ok("home").startswith("East Road")


def test_take_all_and_drop_all(game: Game) -> None:
    alice, bob = game.login("alice"), game.login("bob")
    assert alice.say_ok("take all") == "You take the brass lamp."  # the signpost won't budge
    assert "There is nothing here you can take" in refused(alice, "get all")
    assert alice.say_ok("drop all") == "You drop the brass lamp."
    assert bob.heard("take") == ["alice takes the brass lamp."]
    assert bob.heard("drop") == ["alice drops the brass lamp."]
    assert "You are not carrying anything" in refused(alice, "drop all")


def test_ignore_refuses_whispers_and_pages(game: Game) -> None:
    alice, bob = game.login("alice"), game.login("bob")
    assert bob.say_ok("ignore alice") == "You ignore alice."
    assert bob.say_ok("ignore") == "You are ignoring alice."
    assert "bob is not listening to you" in refused(alice, "whisper bob psst")
    assert "bob is not listening to you" in refused(alice, "page bob psst")
    assert bob.heard("whisper") == [] and bob.heard("page") == []
    assert bob.say_ok("unignore Alice") == "You no longer ignore alice."
    alice.say_ok("whisper bob psst")
    assert bob.heard("whisper") == ['alice whispers to you, "psst"']


def test_whisper_and_give_to_oneself_say_that_is_you(game: Game) -> None:
    alice = game.login("alice")
    alice.say_ok("take lamp")
    # They said "Nobody called 'alice' is around", as if the name were wrong.
    for line in ("whisper alice hi", "tell Alice: hi", "give lamp to ALICE"):
        assert refused(alice, line) == "That is you.", line
    assert alice.say_ok("inventory").endswith("a brass lamp.")


def test_time_tells_the_phase_and_writes_nothing(game: Game, service: GameService) -> None:
    alice = game.login("alice")
    service.tick()
    told = re.fullmatch(
        r"It is (\w+); (\w+) comes in about \d+ minute\(s\)\.", alice.say_ok("time")
    )
    assert told is not None
    assert f"It is {told[1]}." in alice.say_ok("look")  # the phase the room shows
    phases = [phase.name for phase in service.world.clock.phases]
    assert phases[(phases.index(told[1]) + 1) % len(phases)] == told[2]
    assert alice.act("time").events == []
