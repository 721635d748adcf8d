"""The commands and rules a MUD player expects (issue 16), through the worker API on both
backends: each command as a player types it, and what others see or do not see."""

from __future__ import annotations

from gamekit import Game

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
