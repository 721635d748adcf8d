"""The commands and rules a MUD player expects (issue 16), through the worker API on both
backends: each command as a player types it, and what others see or do not see."""

from __future__ import annotations

from gamekit import Game

from gameserver.protocol import CatchupReply, CatchupRequest, ErrorReply
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
