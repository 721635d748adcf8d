"""AsyncioAuthenticator: the ZAP handler served by a task on the running event loop.

As pyzmq's: `auth = AsyncioAuthenticator(ctx); auth.start()` (inside the loop), configure it
like any Authenticator, and `auth.stop()` when done.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import constants as c
from ..security.zap import ZAP_ENDPOINT
from .base import Authenticator


class AsyncioAuthenticator(Authenticator):
    def __init__(
        self, context: Any = None, loop: Any = None, encoding: str = "utf-8", log: Any = None
    ) -> None:
        super().__init__(context, encoding, log)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.context is None:
            from ..asyncio import Context

            self.context = Context.instance()
        sock = self.context.socket(c.REP)
        sock.linger = 1
        try:
            sock.bind(ZAP_ENDPOINT)
        except BaseException:
            sock.close()
            raise
        self.zap_socket = sock
        self._task = asyncio.get_running_loop().create_task(self._serve(sock))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        super().stop()

    async def _serve(self, sock: Any) -> None:
        while True:
            msg = await sock.recv_multipart()
            await sock.send_multipart(await self.reply_frames_async(msg))
