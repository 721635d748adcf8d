"""`crossroads play`: play from the terminal (prompt-toolkit), from a script, or from stdin.

:class:`GameClient` is the mode-independent glue: a :class:`Connection`, the room view, the
formatter, the completer and the toolbar state; it shows replies and events through a ``show``
callable. :func:`run_interactive` is the thin prompt loop (``prompt_async`` under
``patch_stdout``; events print above the line being typed); :func:`run_lines` feeds lines from a
script or a pipe and prints plainly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.patch_stdout import patch_stdout

import engine
from engine.endpoint import parse as parse_endpoint
from gameserver.protocol import (
    MAX_PASSWORD_CHARS,
    MAX_TEXT_CHARS,
    MIN_PASSWORD_CHARS,
    NAME_RULES,
    PASSWORD_RULES,
    PLAYER_NAME_PATTERN,
)

from .completion import GameCompleter
from .connection import CONNECTED, OFFLINE, TAKEN_OVER, Connection
from .session import RequestRefused, ServerUnavailable, SessionError
from .view import STYLE, Formatter, RoomView, ToolbarState

DEFAULT_ACTIONS = "tcp://127.0.0.1:7301"
DEFAULT_UPDATES = "tcp://127.0.0.1:7302"
QUIT_WORDS = frozenset({"quit", "logout", "exit"})
#: Characters a command line may not hold (the server refuses them: they could corrupt other
#: players' screens). Tabs from a paste become spaces instead.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
#: How long leaving (Ctrl-C / Ctrl-D / EOF) waits for the server to say goodbye.
LEAVE_TIMEOUT_S = 2.0

Show = Callable[[FormattedText], None]


def history_path(name: str) -> Path:
    """``$XDG_DATA_HOME/crossroads/history-<name>`` (default ``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "crossroads" / f"history-{name.lower()}"


def show_rich(text: FormattedText) -> None:
    """Print styled text; above the prompt when one is running (print_formatted_text does so)."""
    print_formatted_text(text, style=STYLE)


def show_plain(text: FormattedText) -> None:
    print(Formatter.plain(text), flush=True)


class GameClient:
    """One player's client, whatever drives it."""

    def __init__(self, connection: Connection, show: Show) -> None:
        self.connection = connection
        self.show = show
        self.view = RoomView()
        self.toolbar = ToolbarState()
        self.formatter = Formatter()
        self.completer = GameCompleter(lambda: self.view)
        self.finished = False
        self.stopped = asyncio.Event()  # set when the player has left, or was taken over
        self.prompt: PromptSession[str] | None = None  # set while the prompt loop runs
        self._pump: asyncio.Task[None] | None = None
        connection.on_change = self._on_change

    def _on_change(self, state: str, message: str) -> None:
        self.toolbar.state = state
        if message:
            self.show(self.formatter.system(message))
        app = get_app_or_none()
        if app is not None:
            app.invalidate()

    def _refresh_toolbar(self) -> None:
        self.toolbar.state = self.connection.state
        self.toolbar.room = self.view.name or (self.connection.session.room or "")
        self.toolbar.players = list(self.view.players)
        self.toolbar.rtt_ms = self.connection.rtt_ms

    def bottom_toolbar(self) -> FormattedText:
        self._refresh_toolbar()
        return self.toolbar.fragments()

    async def start(self) -> bool:
        """Log in and start showing events; False (and a message) if that failed."""
        try:
            reply = await self.connection.login()
        except RequestRefused as exc:
            self.show(self.formatter.error(f"login refused: {login_refusal(exc)}"))
            return False
        except ServerUnavailable:
            self.show(self.formatter.error("the server does not answer; is it running?"))
            return False
        self._take_reply(reply.text, True)
        self._pump = asyncio.create_task(self._events())
        return True

    def _take_reply(self, text: str, ok: bool) -> None:
        if ok:
            self.view.update_from_text(text)
        self._refresh_toolbar()
        self.show(self.formatter.reply(text, ok))

    async def _events(self) -> None:
        session = self.connection.session
        async for event in session:
            self.view.update_from_event(event, session.player)
            self._refresh_toolbar()
            mine = event.actor == session.player and event.topic != session.private_topic
            if not mine:
                self.show(self.formatter.event(event))
            if event.kind == "session_replaced" and event.topic == session.private_topic:
                self.show(self.formatter.error(TAKEN_OVER))
                self._finish()
                return

    async def handle(self, line: str) -> bool:
        """Run one command line; False once the player has left."""
        line = line.replace("\t", " ").strip()
        if not line or line.startswith("#"):
            return not self.finished
        if line.lower() in QUIT_WORDS:
            line = "quit"
        refusal = check_line(line)
        if refusal is not None:
            self.show(self.formatter.error(refusal))
            return True
        try:
            reply = await self.connection.act(line)
        except RequestRefused as exc:
            self.show(self.formatter.error(f"{exc.code}: {exc.reply.message}"))
            return True
        except SessionError as exc:
            if not self.finished:  # the event may have said it already
                self.show(self.formatter.error(str(exc)))
            self._finish()
            return False
        self._take_reply(reply.text, reply.ok)
        if reply.session_ended:
            self._finish()
        return not self.finished

    def _finish(self) -> None:
        self.finished = True
        self.stopped.set()

    async def leave(self) -> None:
        """Say goodbye to the server if it is there (bounded), then close everything."""
        if not self.finished and self.connection.state == CONNECTED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.handle("quit"), LEAVE_TIMEOUT_S)
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        await self.connection.close()
        self.toolbar.state = OFFLINE


def login_refusal(exc: RequestRefused) -> str:
    """A refused login in the player's words. Malformed fields are named by the rule they
    break: the validator's own message quotes patterns, and a password is never echoed."""
    if exc.code == "bad_request":
        field = exc.reply.message.partition(":")[0]
        if field == "name":
            return NAME_RULES
        if field == "password":
            return PASSWORD_RULES
    return exc.reply.message


def check_line(line: str) -> str | None:
    """Why ``line`` cannot be sent, in one sentence (None: it can). Checked before sending, so
    a pasted page of text costs one clear message and nothing else."""
    if len(line) > MAX_TEXT_CHARS:
        return (
            f"That line is {len(line)} characters long; the longest line is {MAX_TEXT_CHARS}."
            " Nothing was sent."
        )
    if CONTROL_CHARACTERS.search(line):
        return "That line holds control characters, which cannot be sent. Nothing was sent."
    return None


async def read_line(prompt: PromptSession[str], message: str) -> str | None:
    """One line from the prompt; None for Ctrl-C or Ctrl-D. Caught here, inside the task:
    a KeyboardInterrupt escaping a task stops the event loop itself, with a traceback."""
    try:
        return await prompt.prompt_async(message)
    except (KeyboardInterrupt, EOFError):
        return None


async def run_interactive(
    client: GameClient, history: Path | None, *, patch: bool = True, refresh: float = 0.5
) -> None:
    """The prompt loop. Commands run one after another in the background, so the prompt stays
    usable (and events keep printing) while the server is slow or away."""
    file_history = None
    if history is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
        file_history = FileHistory(str(history))
    prompt: PromptSession[str] = PromptSession(
        history=file_history,
        completer=client.completer,
        complete_while_typing=False,
        bottom_toolbar=client.bottom_toolbar,
        style=STYLE,
        refresh_interval=refresh,
    )
    client.prompt = prompt
    lines: asyncio.Queue[str] = asyncio.Queue()
    done = client.stopped

    async def work() -> None:
        while True:
            if not await client.handle(await lines.get()):
                done.set()
                return

    worker = asyncio.create_task(work())
    ctx = patch_stdout(raw=True) if patch else contextlib.nullcontext()
    try:
        with ctx:
            while not done.is_set():
                reading = asyncio.create_task(read_line(prompt, f"{client.connection.name}> "))
                finished = asyncio.create_task(done.wait())
                await asyncio.wait({reading, finished}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():  # the player quit: stop asking
                    prompt.app.exit(result="")
                    with contextlib.suppress(BaseException):
                        await reading
                    break
                finished.cancel()
                line = reading.result()
                if line is None:
                    break
                lines.put_nowait(line)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await client.leave()


async def run_lines(client: GameClient, lines: AsyncIterator[str]) -> None:
    """Run lines one by one (script or pipe); leave at the end."""
    try:
        async for line in lines:
            if client.finished or not await client.handle(line):
                break
    finally:
        await client.leave()


async def stdin_lines() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield line


async def file_lines(path: Path) -> AsyncIterator[str]:
    for line in path.read_text().splitlines():
        yield line


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Play Crossroads from the terminal.")
    parser.add_argument("--name", required=True, help="your player name (first login registers)")
    parser.add_argument(
        "--server",
        default=os.environ.get("CROSSROADS_ACTIONS", DEFAULT_ACTIONS),
        metavar="ENDPOINT",
        help=f"the front's action endpoint (env CROSSROADS_ACTIONS; default {DEFAULT_ACTIONS})",
    )
    parser.add_argument(
        "--updates",
        default=os.environ.get("CROSSROADS_UPDATES", DEFAULT_UPDATES),
        metavar="ENDPOINT",
        help=f"the front's update endpoint (env CROSSROADS_UPDATES; default {DEFAULT_UPDATES})",
    )
    parser.add_argument(
        "--password-file", type=Path, metavar="PATH", help="read the password from this file"
    )
    parser.add_argument("--script", type=Path, metavar="FILE", help="run one command per line")
    parser.add_argument(
        "--timeout", type=float, default=2.0, metavar="SECONDS", help="wait per try (default 2)"
    )
    return parser


def read_password(args: argparse.Namespace, interactive: bool) -> str | None:
    """--password-file, else $CROSSROADS_PASSWORD, else ask without echo (on a terminal)."""
    if args.password_file is not None:
        return args.password_file.read_text().strip("\r\n")
    if os.environ.get("CROSSROADS_PASSWORD"):
        return os.environ["CROSSROADS_PASSWORD"]
    if interactive:
        from prompt_toolkit import prompt

        return prompt(f"Password for {args.name}: ", is_password=True)
    return None


async def play(args: argparse.Namespace, password: str, interactive: bool) -> int:
    show: Show = show_rich if interactive else show_plain
    connection = Connection(args.server, args.updates, args.name, password, timeout=args.timeout)
    client = GameClient(connection, show)
    if not await client.start():
        await connection.close()
        return 1
    if args.script is not None:
        await run_lines(client, file_lines(args.script))
    elif interactive:
        show(client.formatter.system("Tab completes; 'help' lists commands; Ctrl-D leaves."))
        await run_interactive(client, history_path(args.name))
    else:
        await run_lines(client, stdin_lines())
    return 0


class UsageError(Exception):
    """A mistake in how ``play`` was called: one line for the player, exit status 2."""


def check_arguments(args: argparse.Namespace) -> None:
    """Everything that can be checked before connecting; raises :class:`UsageError`."""
    if not re.fullmatch(PLAYER_NAME_PATTERN, args.name):
        raise UsageError(f"--name {args.name!r} cannot be used: {NAME_RULES}")
    for flag, endpoint in (("--server", args.server), ("--updates", args.updates)):
        try:
            parse_endpoint(endpoint, binding=False)
        except engine.ZMQError as exc:
            raise UsageError(
                f"{flag} {endpoint!r} is not an endpoint ({exc.strerror}); "
                "write it as tcp://HOST:PORT"
            ) from None
    for flag, path in (("--password-file", args.password_file), ("--script", args.script)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {str(path)!r}: no such file")
    if args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")


def check_password(password: str) -> None:
    """Raises :class:`UsageError`, never showing the password itself."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise UsageError(f"that password cannot be used: {PASSWORD_RULES}")


def main(argv: Iterable[str] | None = None, prog: str = "crossroads play") -> int:
    args = build_parser(prog).parse_args(None if argv is None else list(argv))
    interactive = args.script is None and sys.stdin.isatty() and sys.stdout.isatty()
    logging.basicConfig(level=logging.ERROR)
    try:
        check_arguments(args)
        password = read_password(args, interactive)
        if not password:
            print(
                f"{prog}: no password: use --password-file or CROSSROADS_PASSWORD", file=sys.stderr
            )
            return 2
        check_password(password)
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: cannot read {exc.filename!r}: {exc.strerror}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, EOFError):
        return 130
    try:
        return asyncio.run(play(args, password, interactive))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
