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
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory
from prompt_toolkit.patch_stdout import patch_stdout

from .completion import GameCompleter
from .connection import CONNECTED, OFFLINE, Connection
from .known_hosts import KeysError, KnownHosts, ServerKeyChanged, known_hosts_path, server_key
from .session import RequestRefused, ServerUnavailable, SessionError
from .view import STYLE, Formatter, RoomView, ToolbarState

DEFAULT_ACTIONS = "tcp://127.0.0.1:7301"
DEFAULT_UPDATES = "tcp://127.0.0.1:7302"
QUIT_WORDS = frozenset({"quit", "logout", "exit"})
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
            self.show(self.formatter.error(f"login refused: {exc.reply.message}"))
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

    async def handle(self, line: str) -> bool:
        """Run one command line; False once the player has left."""
        line = line.strip()
        if not line or line.startswith("#"):
            return not self.finished
        if line.lower() in QUIT_WORDS:
            line = "quit"
        try:
            reply = await self.connection.act(line)
        except RequestRefused as exc:
            self.show(self.formatter.error(f"{exc.code}: {exc.reply.message}"))
            return True
        except SessionError as exc:
            self.show(self.formatter.error(str(exc)))
            self.finished = True
            return False
        self._take_reply(reply.text, reply.ok)
        if reply.session_ended:
            self.finished = True
        return not self.finished

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
    done = asyncio.Event()

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
                reading = asyncio.create_task(prompt.prompt_async(f"{client.connection.name}> "))
                finished = asyncio.create_task(done.wait())
                await asyncio.wait({reading, finished}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():  # the player quit: stop asking
                    prompt.app.exit(result="")
                    with contextlib.suppress(BaseException):
                        await reading
                    break
                finished.cancel()
                try:
                    line = reading.result()
                except (KeyboardInterrupt, EOFError):
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
            if not await client.handle(line):
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
    parser.add_argument(
        "--server-key",
        default=os.environ.get("CROSSROADS_SERVER_KEY"),
        metavar="KEY",
        help="the front's public key (Z85 or a .key file; env CROSSROADS_SERVER_KEY); default: "
        "the one remembered in --known-hosts, else the server's announcement, trusted on first use",
    )
    parser.add_argument(
        "--known-hosts",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"remembered server keys (default: {known_hosts_path()})",
    )
    parser.add_argument(
        "--key-endpoint",
        default=None,
        metavar="ENDPOINT",
        help="where the server announces its key (default: the --server host, the port below "
        "--server's: 7300 for a front's 7301, 7310 for a relay's 7311)",
    )
    return parser


def pinned_key(args: argparse.Namespace) -> bytes | None:
    """The server's CURVE key (see client/known_hosts.py); raises on a changed key."""
    hosts = KnownHosts(args.known_hosts or known_hosts_path())

    def first_use(key: str) -> None:
        print(f"trusting {args.server}'s key {key} (first use; kept in {hosts.path})")

    return server_key(
        args.server,
        given=args.server_key,
        known_hosts=hosts,
        key_endpoint=args.key_endpoint,
        timeout=args.timeout,
        on_first_use=first_use,
    )


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
    try:
        key = await asyncio.to_thread(pinned_key, args)
    except (ServerKeyChanged, KeysError) as exc:
        print(f"crossroads play: {exc}", file=sys.stderr)
        return 1
    if key is None:
        print(
            "warning: this server offers no key; your password crosses the network in clear",
            file=sys.stderr,
        )
    connection = Connection(
        args.server, args.updates, args.name, password, timeout=args.timeout, server_key=key
    )
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


def main(argv: Iterable[str] | None = None, prog: str = "crossroads play") -> int:
    args = build_parser(prog).parse_args(None if argv is None else list(argv))
    interactive = args.script is None and sys.stdin.isatty() and sys.stdout.isatty()
    logging.basicConfig(level=logging.ERROR)
    try:
        password = read_password(args, interactive)
    except (KeyboardInterrupt, EOFError):
        return 130
    if not password:
        print("no password: use --password-file or CROSSROADS_PASSWORD", file=sys.stderr)
        return 2
    try:
        return asyncio.run(play(args, password, interactive))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
