"""Drive the real terminal client through prompt-toolkit's pipe input and a fake terminal."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prompt_toolkit.application import create_app_session
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from client.connection import Connection
from client.known_hosts import server_key
from client.terminal import Ask, GameClient, run_interactive, show_rich

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]")
WAIT = 30.0


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait for ``check()`` to hold; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Screen:
    """A fake terminal's stdout: what was written, and its text without escape codes."""

    encoding = "utf-8"

    def __init__(self) -> None:
        self.chunks: list[str] = []

    def write(self, data: str) -> int:
        self.chunks.append(data)
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def text(self) -> str:
        return ANSI.sub("", "".join(self.chunks))


class Player:
    """One terminal client on a pipe; ``type`` keys, read ``screen``, inspect ``client``."""

    def __init__(
        self,
        actions: str,
        updates: str,
        name: str,
        history: Path,
        *,
        password: str | None = None,
        ask: Ask | None = None,
        **opts: Any,
    ) -> None:
        self.screen = Screen()
        self.output = Vt100_Output(self.screen, lambda: Size(rows=30, columns=160), term="xterm")
        self._pipe_cm = create_pipe_input()
        self.pipe = self._pipe_cm.__enter__()
        password = f"{name}-password" if password is None else password
        # As `crossroads play` does: the front's announced key, pinned in the known-hosts file
        # of this test's XDG data dir.
        opts.setdefault("server_key", server_key(actions))
        connection = Connection(actions, updates, name, password, **opts)
        self.ask = ask  # masked questions at login (as in a terminal), answered by typing
        self.client = GameClient(connection, show_rich)
        self.history = history
        self.task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()

    async def _run(self) -> None:
        with create_app_session(input=self.pipe, output=self.output):
            assert await self.client.start(self.ask), self.screen.text()
            self.started.set()
            await run_interactive(self.client, self.history, patch=False, refresh=0.1)

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        started = asyncio.create_task(self.started.wait())
        await asyncio.wait({self.task, started}, timeout=WAIT, return_when="FIRST_COMPLETED")
        if self.task.done():
            self.task.result()
        await until(lambda: self.client.prompt is not None, "the prompt")

    def type(self, keys: str) -> None:
        self.pipe.send_text(keys)

    def buffer(self) -> str:
        prompt = self.client.prompt
        return prompt.app.current_buffer.text if prompt is not None else ""

    async def see(self, text: str, timeout: float = WAIT) -> None:
        await until(lambda: text in self.screen.text(), f"{text!r} on screen", timeout)

    async def stop(self) -> None:
        """Ctrl-D, then wait for the client to leave."""
        if self.task is not None and not self.task.done():
            self.type("\x04")
            await asyncio.wait_for(self.task, WAIT)
        self._pipe_cm.__exit__(None, None, None)
