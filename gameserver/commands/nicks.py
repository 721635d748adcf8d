"""Nicks: a player's own words for longer lines ("nick gr = say Greetings, traveller!")."""

from __future__ import annotations

import re

from ..profiles import MAX_NICKS, load_profile, save_profile
from ..protocol import MAX_TEXT_CHARS
from .base import Command, CommandError
from .context import Context

_WORD = re.compile(r"^[a-z][a-z0-9]{0,19}$")


class Nick(Command):
    """Make a word of your own stand for a longer line.

    Usage: nick                    (your nicks)
           nick <word> = <line>    (e.g. nick gr = say Greetings!  then: gr)
           nick <word> =           (forget it; also: unnick <word>)
    Anything typed after the word is added to the line. A nick cannot replace a command.
    """

    key = "nick"
    aliases = ("alias",)
    category = "System"

    def func(self, ctx: Context) -> None:
        profile = load_profile(ctx.state, ctx.player.key)
        nicks = dict(profile.nicks)
        if not self.args.strip():
            if not nicks:
                ctx.reply("You have no nicks. Usage: nick <word> = <line>")
                return
            ctx.reply(
                "Your nicks:\n" + "\n".join(f"  {w} = {line}" for w, line in sorted(nicks.items()))
            )
            return
        word, equals, line = self.args.partition("=")
        word, line = word.strip().lower(), line.strip()
        if not equals:
            raise CommandError("Usage: nick <word> = <line>")
        if not line:
            if not word:
                raise CommandError("Usage: nick <word> = <line>")
            forget(ctx, word)
            return
        if not _WORD.match(word):
            raise CommandError("A nick is one word of up to 20 letters and digits.")
        if self.cmdset.find(word) is not None:
            raise CommandError(f"'{word}' is a command already; choose another word.")
        if word not in nicks and len(nicks) >= MAX_NICKS:
            raise CommandError(f"You have {MAX_NICKS} nicks already; forget one first.")
        if len(line) > MAX_TEXT_CHARS // 2:
            raise CommandError(f"A nick's line is at most {MAX_TEXT_CHARS // 2} characters.")
        nicks[word] = line
        save_profile(ctx.state, ctx.player.key, profile.model_copy(update={"nicks": nicks}))
        ctx.reply(f"'{word}' now stands for: {line}")


class Unnick(Command):
    """Forget one of your nicks.

    Usage: unnick <word>
    """

    key = "unnick"
    aliases = ("unalias",)
    category = "System"

    def func(self, ctx: Context) -> None:
        word = self.args.strip().lower()
        if not word:
            raise CommandError("Forget which nick? Usage: unnick <word>")
        forget(ctx, word)


def forget(ctx: Context, word: str) -> None:
    profile = load_profile(ctx.state, ctx.player.key)
    if word not in profile.nicks:
        raise CommandError(f"You have no nick '{word}'.")
    nicks = {w: line for w, line in profile.nicks.items() if w != word}
    save_profile(ctx.state, ctx.player.key, profile.model_copy(update={"nicks": nicks}))
    ctx.reply(f"You forget the nick '{word}'.")


class ExpandNick(Command):
    """Runs a nick: the command set's fallback for words no command claims."""

    key = "(nick)"
    listed = False

    def func(self, ctx: Context) -> None:
        line = load_profile(ctx.state, ctx.player.key).nicks.get(self.cmdstring)
        if line is None:
            raise self.cmdset.unknown(self.cmdstring)
        expanded = f"{line} {self.args}".strip()
        # Expanded once: a nick's line never runs another nick.
        self.cmdset.resolve(expanded, fallback=False).func(ctx)


NICK_COMMANDS: tuple[type[Command], ...] = (Nick, Unnick)
