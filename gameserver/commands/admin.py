"""Admin commands: announce, kick, ban, unban and maintenance. Only accounts with the admin
role (``crossroads admin grant NAME``) may use them; anyone else is told so and nothing happens.
They are left out of everyone's ``help`` list (``help kick`` still explains one)."""

from __future__ import annotations

from ..moderation import (
    Ban,
    Maintenance,
    ban_of,
    is_admin,
    lift_ban,
    maintenance,
    put_ban,
    set_maintenance,
)
from ..presence import leave_world
from ..store.records import PlayerRecord, player_key
from .base import Command, CommandError
from .context import Context

#: Longest announcement, ban reason or maintenance message (they are broadcast).
MAX_TEXT = 300


class AdminCommand(Command):
    category = "Admin"
    listed = False

    def func(self, ctx: Context) -> None:
        if not is_admin(ctx.state, ctx.player.key):
            raise CommandError(f"Only admins may use '{self.key}'.")
        self.run(ctx)

    def run(self, ctx: Context) -> None:
        raise NotImplementedError


def _text(text: str, what: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_TEXT:
        raise CommandError(f"The {what} is too long (at most {MAX_TEXT} characters).")
    return text


def _player(ctx: Context, name: str) -> PlayerRecord:
    if not name:
        raise CommandError("Which player?")
    player = ctx.state.player(player_key(name))
    if player is None:
        raise CommandError(f"There is no player called '{name}'.")
    return player


def _send_away(ctx: Context, player: PlayerRecord, kind: str, text: str) -> None:
    """Tell an online player why, then end their session (they see it on their next action)."""
    if not player.online:
        return
    ctx.emit_private(player, kind, text)
    _, drafts = leave_world(ctx.state, player, "quit")
    ctx.add_events(drafts)


class Announce(AdminCommand):
    """Tell everyone in the game something (shown as an announcement).

    Usage: announce <message>
    """

    key = "announce"

    def run(self, ctx: Context) -> None:
        message = _text(self.args, "announcement")
        if not message:
            raise CommandError("Announce what?")
        ctx.emit_world("announce", f"[Announcement] {message}", message=message)
        ctx.reply(f"Announced: {message}")


class Kick(AdminCommand):
    """End a player's session now; they may log in again.

    Usage: kick <player> [reason]
    """

    key = "kick"

    def run(self, ctx: Context) -> None:
        name, _, reason = self.args.strip().partition(" ")
        target = _player(ctx, name)
        if target.key == ctx.player.key:
            raise CommandError("You cannot kick yourself; use 'quit'.")
        if not target.online:
            raise CommandError(f"{target.name} is not online.")
        reason = _text(reason, "reason")
        why = f": {reason}" if reason else "."
        _send_away(ctx, target, "kicked", f"You were removed from the game by an admin{why}")
        ctx.reply(f"Kicked {target.name}.")


class BanCommand(AdminCommand):
    """Keep a player out: they are sent away now and cannot log in until unbanned.

    Usage: ban <player> [reason]
    """

    key = "ban"

    def run(self, ctx: Context) -> None:
        name, _, reason = self.args.strip().partition(" ")
        target = _player(ctx, name)
        if target.key == ctx.player.key:
            raise CommandError("You cannot ban yourself.")
        if is_admin(ctx.state, target.key):
            raise CommandError(f"{target.name} is an admin; revoke that first.")
        reason = _text(reason, "reason")
        put_ban(ctx.state, target.key, Ban(reason=reason, by=ctx.player.name, at=ctx.now))
        why = f": {reason}" if reason else "."
        _send_away(ctx, target, "banned", f"You were banned from this game{why}")
        ctx.reply(f"Banned {target.name}.")


class Unban(AdminCommand):
    """Let a banned player log in again.

    Usage: unban <player>
    """

    key = "unban"

    def run(self, ctx: Context) -> None:
        target = _player(ctx, self.args.strip())
        if ban_of(ctx.state, target.key) is None:
            raise CommandError(f"{target.name} is not banned.")
        lift_ban(ctx.state, target.key)
        ctx.reply(f"Unbanned {target.name}.")


class MaintenanceCommand(AdminCommand):
    """Close the game for maintenance (only admins may log in; players online are sent away
    with the time to come back), or open it again.

    Usage: maintenance                         (say whether it is on)
           maintenance on <until> [| message]  e.g. maintenance on 14:00 UTC | new rooms
           maintenance off
    """

    key = "maintenance"

    def run(self, ctx: Context) -> None:
        word, _, rest = self.args.strip().partition(" ")
        current = maintenance(ctx.state)
        if not word:
            if current is None:
                ctx.reply("The game is open.")
            else:
                ctx.reply(f"Maintenance until {current.until} (by {current.by}).")
            return
        if word.lower() == "off":
            if current is None:
                raise CommandError("The game is not in maintenance.")
            set_maintenance(ctx.state, None)
            ctx.emit_world("maintenance", "The game is open again.", open=True)
            ctx.reply("Maintenance is over; the game is open.")
            return
        if word.lower() != "on":
            raise CommandError("Usage: maintenance on <until> [| message], or maintenance off")
        until, _, message = rest.partition("|")
        until, message = _text(until, "time"), _text(message, "message")
        if not until:
            raise CommandError("Until when? e.g. maintenance on 14:00 UTC")
        closed = Maintenance(until=until, message=message, by=ctx.player.name, at=ctx.now)
        set_maintenance(ctx.state, closed)
        text = f"The game is closing for maintenance until {until}."
        if message:
            text += f" {message}"
        ctx.emit_world("maintenance", text, until=until, open=False)
        # Once, by the operator's command: every online player who is not an admin leaves.
        sent = 0
        for key in ctx.state.online_players():
            player = ctx.state.player(key)
            if player is not None and key != ctx.player.key and not is_admin(ctx.state, key):
                _send_away(ctx, player, "maintenance", text)
                sent += 1
        ctx.reply(f"Maintenance until {until}; {sent} player(s) sent away.")


ADMIN_COMMANDS: tuple[type[Command], ...] = (
    Announce,
    Kick,
    BanCommand,
    Unban,
    MaintenanceCommand,
)
