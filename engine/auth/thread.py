"""ThreadAuthenticator: the ZAP handler served by a background thread (sync face).

As pyzmq's: `auth = ThreadAuthenticator(ctx); auth.start(); auth.allow("127.0.0.1");
auth.configure_curve(domain="*", location=keys_dir)`, and `auth.stop()` when done. The policy
may be changed at any time from any thread.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

from .. import constants as c
from .. import sync
from ..errors import ContextTerminated
from ..security.zap import ZAP_ENDPOINT
from .base import Authenticator, Judgement, PendingVerdict

_STOP = b"TERMINATE"
_ids = itertools.count()


class ThreadAuthenticator(Authenticator):
    def __init__(self, context: Any = None, encoding: str = "utf-8", log: Any = None) -> None:
        super().__init__(context, encoding, log)
        self.thread: threading.Thread | None = None
        self.pipe_endpoint = f"inproc://engine.auth.thread-{id(self):x}-{next(_ids)}"
        self._pipe: Any = None
        #: Where the serving thread awaits an async CURVE callback (made at the first).
        self._verdict_loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Bind the ZAP endpoint on a new thread; raises here if it cannot (already bound)."""
        if self.context is None:
            self.context = sync.Context.instance()
        started = threading.Event()
        failure: list[BaseException] = []
        self.thread = threading.Thread(
            target=self._serve, args=(started, failure), name="zap-authenticator", daemon=True
        )
        self.thread.start()
        started.wait()
        if failure:
            self.thread.join()
            self.thread = None
            raise failure[0]
        self._pipe = self.context.socket(c.PAIR, socket_class=sync.Socket)
        self._pipe.linger = 0
        self._pipe.connect(self.pipe_endpoint)

    def stop(self) -> None:
        if self.thread is None:
            return
        self._pipe.send(_STOP)
        self.thread.join()
        self._pipe.close()
        self._pipe = None
        self.thread = None

    def is_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _serve(self, started: threading.Event, failure: list[BaseException]) -> None:
        ctx = self.context
        try:
            # Blocking sockets whatever the context's face: this thread waits on them (an
            # asyncio context's own sockets would want a loop here; pyzmq's thread makes
            # blocking ones too).
            zap = ctx.socket(c.REP, socket_class=sync.Socket)
            zap.linger = 1
            pipe = ctx.socket(c.PAIR, socket_class=sync.Socket)
            pipe.linger = 0
            try:
                zap.bind(ZAP_ENDPOINT)
                pipe.bind(self.pipe_endpoint)
            except BaseException:
                zap.close()
                pipe.close()
                raise
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        self.zap_socket = zap
        started.set()
        from ..poll import Poller

        poller = Poller()
        poller.register(zap, c.POLLIN)
        poller.register(pipe, c.POLLIN)
        try:
            while True:
                ready = dict(poller.poll())
                if pipe in ready:
                    pipe.recv()
                    break
                if zap in ready:
                    self.handle_zap_message(zap.recv_multipart())
        except ContextTerminated:
            pass  # the context went away without stop(): nothing left to serve
        finally:
            zap.close()
            pipe.close()
            self.zap_socket = None
            if self._verdict_loop is not None:
                self._verdict_loop.close()
                self._verdict_loop = None

    def _settle(self, pending: PendingVerdict) -> Judgement:
        """An async callback's verdict, awaited on this thread's own loop (as pyzmq's thread
        runs its handler on one): the next request waits for it meanwhile, as in pyzmq."""
        loop = self._verdict_loop
        if loop is None:
            loop = self._verdict_loop = asyncio.new_event_loop()
        return loop.run_until_complete(pending.settled(self.log))
