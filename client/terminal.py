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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.patch_stdout import patch_stdout

from gameserver.cli_numbers import positive
from gameserver.protocol import (
    MAX_PASSWORD_CHARS,
    MAX_TEXT_CHARS,
    MIN_PASSWORD_CHARS,
    NAME_RULES,
    PASSWORD_RULES,
    PLAYER_NAME_PATTERN,
)
from gameserver.settings import endpoint_problem

from .completion import GameCompleter
from .connection import CONNECTED, OFFLINE, TAKEN_OVER, Connection
from .hearing import SYNC_COMMANDS, Hearing
from .known_hosts import (
    KeysError,
    ServerKeyChanged,
    add_key_options,
    add_updates_key_options,
    key_endpoint_for,
    key_from_options,
    known_hosts_path,
    updates_key_from_options,
)
from .session import LoginReply, RequestRefused, ServerUnavailable, SessionError
from .view import STYLE, Formatter, RoomView, ToolbarState

DEFAULT_ACTIONS = "tcp://127.0.0.1:7301"
DEFAULT_UPDATES = "tcp://127.0.0.1:7302"
QUIT_WORDS = frozenset({"quit", "logout", "exit"})
#: Characters a command line may not hold (the server refuses them: they could corrupt other
#: players' screens). Tabs from a paste become spaces instead.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
#: How long leaving (Ctrl-C / Ctrl-D / EOF) waits for the server to say goodbye.
LEAVE_TIMEOUT_S = 2.0

#: Chances to type a wrong password, or a confirmation that differs, before giving up.
LOGIN_TRIES = 3

Show = Callable[[FormattedText], None]
#: Ask the player something without echo; None if they gave up (Ctrl-C, Ctrl-D).
Ask = Callable[[str], Awaitable[str | None]]


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
        self.hearing = Hearing()
        self.toolbar = ToolbarState()
        self.formatter = Formatter()
        self.completer = GameCompleter(lambda: self.view)
        self.finished = False
        self.stopped = asyncio.Event()  # set when the player has left, or was taken over
        self.ask: Ask | None = None  # masked questions to the player (interactive only)
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

    async def start(self, ask: Ask | None = None, *, confirm: bool = True) -> bool:
        """Log in and start showing events; False (and a message) if that failed.

        With ``ask`` (a masked question to the player; None when they give up), a new name's
        password is confirmed before the account is made, and a wrong password may be typed
        again, up to LOGIN_TRIES times. Without it (scripts, pipes), or without ``confirm``
        (the password was read from a file, not typed), the first login registers. ``ask`` also
        serves the ``password`` command.
        """
        self.ask = ask
        try:
            reply = await self._log_in(ask if confirm else None)
        except RequestRefused as exc:
            self.show(self.formatter.error(f"login refused: {login_refusal(exc)}"))
            return False
        except ServerUnavailable:
            self.show(self.formatter.error("the server does not answer; is it running?"))
            return False
        if reply is None:  # the player gave up at a question, or ran out of tries
            self.show(self.formatter.error("Not logged in."))
            return False
        if reply.created:
            self.show(self.formatter.system(f"Account {reply.player} created. Welcome!"))
        self._take_reply(reply.text, True)
        self._pump = asyncio.create_task(self._events())
        await self._sync_hearing()
        return True

    async def _sync_hearing(self) -> None:
        """Learn who is ignored and which channels were left (kept by the server)."""
        for command in SYNC_COMMANDS:
            try:
                reply = await self.connection.act(command)
            except SessionError:
                return  # the session is in trouble: the next command will say so
            self.hearing.update_from_text(reply.text)

    async def _log_in(self, ask: Ask | None) -> LoginReply | None:
        connection = self.connection
        if ask is None:
            return await connection.login()
        for tries_left in range(LOGIN_TRIES - 1, -1, -1):
            try:
                return await connection.login(must_exist=True)
            except RequestRefused as exc:
                if exc.code == "no_account":
                    return await self._register(ask)
                if exc.code != "bad_credentials" or not tries_left:
                    raise
            self.show(self.formatter.error("Wrong password; try again."))
            password = await ask(f"Password for {connection.name}: ")
            if password is None:
                return None
            connection.use_password(password)
        return None

    async def _register(self, ask: Ask) -> LoginReply | None:
        """A new name: the password is typed twice before the account is made."""
        name = self.connection.name
        self.show(self.formatter.system(f"There is no account called {name} yet: making one."))
        for _ in range(LOGIN_TRIES):
            again = await ask("Type the password again to confirm: ")
            if again is None:
                return None
            if again == self.connection.password:
                return await self.connection.login()
            self.show(self.formatter.error("The two passwords differ; choose one again."))
            chosen = await ask(f"New password for {name}: ")
            if chosen is None:
                return None
            refusal = password_refusal(chosen)
            if refusal is not None:
                self.show(self.formatter.error(refusal))
                continue
            self.connection.use_password(chosen)
        return None

    async def change_password(self) -> None:
        """The ``password`` command, run here: the passwords are asked for masked and never
        reach the command line, the history or the server's action log."""
        if self.ask is None:
            self.show(self.formatter.error("'password' works only in an interactive terminal."))
            return
        old = await self.ask("Current password: ")
        new = None if old is None else await self.ask("New password: ")
        again = None if new is None else await self.ask("New password again: ")
        if old is None or new is None or again is None:
            self.show(self.formatter.system("The password is unchanged."))
            return
        refusal = password_refusal(new)
        if new != again:
            refusal = "The two new passwords differ; the password is unchanged."
        if refusal is None:
            try:
                await self.connection.change_password(old, new)
            except RequestRefused as exc:
                refusal = f"{login_refusal(exc)} The password is unchanged."
            except ServerUnavailable:
                refusal = "The server does not answer; the password is unchanged."
        if refusal is not None:
            self.show(self.formatter.error(refusal))
        else:
            self.show(self.formatter.system("Password changed."))

    def _take_reply(self, text: str, ok: bool) -> None:
        if ok:
            self.view.update_from_text(text)
            self.hearing.update_from_text(text)
        self._refresh_toolbar()
        self.show(self.formatter.reply(text, ok))

    async def _events(self) -> None:
        session = self.connection.session
        async for event in session:
            self.view.update_from_event(event, session.player)
            self._refresh_toolbar()
            mine = event.actor == session.player and event.topic != session.private_topic
            if not mine and not self.hearing.hides(event):
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
                if line.strip().lower() == "password":
                    # Its questions need the terminal: asked here, between two prompts.
                    await client.change_password()
                    continue
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


async def file_lines(lines: list[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


def read_text_file(flag: str, path: Path) -> str:
    """A file named on the command line, as text; raises :class:`UsageError` in one line (a
    directory, an unreadable file, bytes that are not UTF-8)."""
    try:
        return path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise UsageError(f"{flag} {str(path)!r} is a directory, not a file") from None
    except FileNotFoundError:
        raise UsageError(f"{flag} {str(path)!r}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{flag} {str(path)!r}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{flag} {str(path)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"offset {exc.start})"
        ) from None


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
        "--timeout",
        type=positive(float),
        default=2.0,
        metavar="SECONDS",
        help="wait per try (default 2)",
    )
    add_key_options(parser, "--server")
    add_updates_key_options(parser)
    return parser


def pinned_key(args: argparse.Namespace) -> bytes | None:
    """The server's CURVE key (see client/known_hosts.py); raises on a changed key."""

    def first_use(key: str) -> None:
        hosts = args.known_hosts or known_hosts_path()
        print(f"trusting {args.server}'s key {key} (first use; kept in {hosts})")

    return key_from_options(args, args.server, timeout=args.timeout, on_first_use=first_use)


def read_password(args: argparse.Namespace, interactive: bool) -> str | None:
    """--password-file, else $CROSSROADS_PASSWORD, else ask without echo (on a terminal)."""
    if args.password_file is not None:
        return read_text_file("--password-file", args.password_file).strip("\r\n")
    if os.environ.get("CROSSROADS_PASSWORD"):
        return os.environ["CROSSROADS_PASSWORD"]
    if interactive:
        from prompt_toolkit import prompt

        return prompt(f"Password for {args.name}: ", is_password=True)
    return None


async def play(
    args: argparse.Namespace,
    password: str,
    interactive: bool,
    typed: bool = False,
    script: list[str] | None = None,
) -> int:
    """Log in and play. ``typed``: the password was typed at a prompt, so a new account's is
    confirmed and a wrong one may be typed again (a file's or the environment's is used as is).
    ``script``: the lines of --script, read before logging in (a bad file costs no login).
    """
    show: Show = show_rich if interactive else show_plain
    try:
        key = await asyncio.to_thread(pinned_key, args)
        updates_key = await asyncio.to_thread(
            updates_key_from_options, args, args.updates, timeout=args.timeout
        )
    except (ServerKeyChanged, KeysError) as exc:
        print(f"crossroads play: {exc}", file=sys.stderr)
        return 1
    if key is None:
        # Either a server started with --insecure-players, or one whose announcement cannot
        # be reached (then a secure server refuses the cleartext connection): say where we
        # looked, so the second case is not mistaken for the first.
        where = args.key_endpoint or key_endpoint_for(args.server) or "its key port"
        print(
            f"warning: no key announced at {where}: talking in clear, so your password "
            "crosses the network unsealed (a secure server whose announcement is elsewhere "
            "needs --key-endpoint or --server-key)",
            file=sys.stderr,
        )
    connection = Connection(
        args.server,
        args.updates,
        args.name,
        password,
        timeout=args.timeout,
        server_key=key,
        updates_key=updates_key,
    )
    client = GameClient(connection, show)
    if not await client.start(ask_masked if interactive else None, confirm=typed):
        await connection.close()
        return 1
    if script is not None:
        await run_lines(client, file_lines(script))
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
        problem = endpoint_problem(endpoint)
        if problem is not None:
            raise UsageError(f"{flag} {problem}")


def password_refusal(password: str) -> str | None:
    """Why ``password`` cannot be used (never showing it), or None."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        return f"that password cannot be used: {PASSWORD_RULES}"
    return None


def check_password(password: str) -> None:
    """Raises :class:`UsageError`, never showing the password itself."""
    refusal = password_refusal(password)
    if refusal is not None:
        raise UsageError(refusal)


async def ask_masked(question: str) -> str | None:
    """A question answered without echo, in the current prompt-toolkit app session."""
    try:
        return await PromptSession[str]().prompt_async(question, is_password=True)
    except (KeyboardInterrupt, EOFError):
        return None


def main(argv: Iterable[str] | None = None, prog: str = "crossroads play") -> int:
    args = build_parser(prog).parse_args(None if argv is None else list(argv))
    interactive = args.script is None and sys.stdin.isatty() and sys.stdout.isatty()
    logging.basicConfig(level=logging.ERROR)
    try:
        check_arguments(args)
        script = None if args.script is None else read_text_file("--script", args.script)
        password = read_password(args, interactive)
        typed = (
            interactive and args.password_file is None and not os.environ.get("CROSSROADS_PASSWORD")
        )
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
        lines = None if script is None else script.splitlines()
        return asyncio.run(play(args, password, interactive, typed, lines))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
