"""Admin roles, bans and maintenance through the worker API, on both store backends."""

from __future__ import annotations

from gamekit import Game

from gameserver.moderation import ModerationError, grant, summary
from gameserver.protocol import ErrorReply, LoginRequest, Reply
from gameserver.service import GameService


def refused_login(service: GameService, name: str) -> ErrorReply:
    reply = service.handle(LoginRequest(name=name, password="correct horse")).reply
    assert isinstance(reply, ErrorReply), reply
    return reply


def test_only_admins_moderate_and_each_command_does_its_job(
    game: Game, service: GameService
) -> None:
    olga, bob, carol = game.login("Olga"), game.login("Bob"), game.login("Carol")
    for line in ("announce hi", "kick Carol", "ban Carol", "unban Carol", "maintenance on 2pm"):
        reply = bob.act(line).reply
        assert isinstance(reply, Reply) and not reply.ok and "Only admins" in reply.text
    assert summary(service.store)["maintenance"] is None and carol.say_ok("look")

    try:
        grant(service.store, "nobody")
    except ModerationError as exc:
        assert "no account named 'nobody'" in str(exc)
    else:
        raise AssertionError("granted a missing account")
    assert grant(service.store, "OLGA") == "Olga"  # any case finds the account

    assert "Announced: doors open" in olga.say_ok("announce  doors   open")
    assert "[Announcement] doors open" in bob.heard("announce")
    assert olga.act("kick Olga").reply.ok is False  # not yourself
    assert olga.act("ban Olga").reply.ok is False
    assert olga.say_ok("kick Carol too loud") == "Kicked Carol."
    assert "Carol fades from view." in bob.heard("depart")
    assert isinstance(carol.act("look").reply, ErrorReply)  # her session is over
    carol = game.login("Carol")  # but she may come back

    assert olga.say_ok("ban Carol cheating") == "Banned Carol."
    assert refused_login(service, "carol").message == "You are banned from this game: cheating"
    assert olga.say_ok("unban Carol") == "Unbanned Carol."
    assert olga.act("unban Carol").reply.ok is False  # not banned any more
    carol = game.login("Carol")

    reply = olga.say_ok("maintenance on 14:00 UTC | new rooms")
    assert reply == "Maintenance until 14:00 UTC; 2 player(s) sent away."
    status = summary(service.store)
    assert status["players_online"] == 1 and status["maintenance"]["until"] == "14:00 UTC"
    closed = refused_login(service, "Bob")
    assert closed.code == "forbidden"  # not retried by clients: a closed game stays closed
    assert closed.message == "The game is closed for maintenance until 14:00 UTC. new rooms"
    olga = game.login("Olga")  # admins get in
    assert olga.say_ok("maintenance").startswith("Maintenance until 14:00 UTC (by Olga)")
    assert olga.say_ok("maintenance off") == "Maintenance is over; the game is open."
    assert summary(service.store)["maintenance"] is None
    game.login("Bob")

    assert grant(service.store, "olga", admin=False) == "Olga"
    assert "Only admins" in olga.act("announce bye").reply.text
