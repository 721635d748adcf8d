"""The world's time of day (read only: nothing is written)."""

from __future__ import annotations

from .base import Command
from .context import Context


class Time(Command):
    """Tell the time of day in the world, and when it next changes.

    Usage: time
    """

    key = "time"
    read_only = True
    category = "Looking"

    def func(self, ctx: Context) -> None:
        clock, rules = ctx.state.clock(), ctx.world.clock
        if clock is None:
            ctx.reply("Time stands still: the world's clock has not started.")
            return
        turns_left = rules.ticks_per_phase - clock.turn % rules.ticks_per_phase
        minutes = max(1, round(turns_left * rules.tick_seconds / 60))
        upcoming = rules.phase_at(clock.turn + turns_left).name
        ctx.reply(f"It is {clock.phase}; {upcoming} comes in about {minutes} minute(s).")


CLOCK_COMMANDS: tuple[type[Command], ...] = (Time,)
