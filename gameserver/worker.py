"""A stateless game worker: `crossroads worker --front tcp://host:7303 --store URL`.

It connects to the front's worker endpoint as a Paranoid Pirate worker (RFC 6: READY, then
heartbeats both ways), and runs each job through :class:`~gameserver.service.GameService` on
its event loop (a job is short; see ``GameWorker._handle``). Everything it knows
lives in the shared store, so workers can run on any machine and die at any moment: the front
re-dispatches a dead worker's job, and the store's action ids make the retry exactly-once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import engine
import engine.asyncio as ezmq
from engine.patterns.paranoid_pirate import AsyncParanoidPirateWorker, Job, WorkerCore

from . import collector, logs
from . import settings as cfg
from .cluster_keys import KeysError, worker_credentials
from .durability import check_durable
from .health import TOUCH_EVERY_S, Toucher
from .jobs import Answer, Observer, run_jobs
from .metrics import (
    ActionMeter,
    MetricsError,
    action_observer,
    refresh_players_online,
    start_metrics,
    worker_registry,
)
from .process_watch import process_ended, wait_process_ended
from .scheduling import add_no_sched_batch, use_batch_policy
from .seed import seed_world
from .service import GameService
from .store import StoreError, open_store, shown_url
from .world import WorldError, load_world

log = logging.getLogger(__name__)

#: Cap on the reconnect back-off: a restarted front gets its workers back within seconds
#: (the pattern's 32 s suits a queue that may be gone for long).
RECONNECT_MAX_S = 4.0
#: After a stop request arrives mid-job, let the reply reach the socket before closing it
#: (the asyncio face writes on the next loop pass; the worker closes with linger 0).
REPLY_FLUSH_S = 0.05
#: How often an orphan check looks whether the process that started us is gone, where the
#: process has no pidfd to wait on (process_watch).
PARENT_CHECK_S = 1.0
#: Jobs a worker holds at once (its credit, announced with READY): enough to batch the commits
#: of a busy front's burst, few enough that a dead worker's jobs are re-sent quickly.
DEFAULT_CREDIT = 16
#: Niceness of the password-hashing process: play comes first, yet a busy server still hashes
#: (at 19 it would get about 1.5 % of a core against one busy process, and logins time out;
#: at 10 about 10 %, a few logins a second).
LOGIN_NICENESS = 10
#: How long a stopping worker waits for logins still hashing (one hash is about 30 ms).
LOGIN_DRAIN_S = 2.0
#: Random bytes in each routing id. Names and pids repeat across containers (every container's
#: worker is pid 6-8) and the front refuses a duplicate id; 48 bits make a clash between
#: processes alive at the same time negligible.
ROUTING_ID_RANDOM_BYTES = 6


def routing_name(name: str) -> str:
    """A routing id prefix unique to this process: name, host, pid and a random suffix (the
    host and pid are for people reading logs; the suffix is what makes it unique)."""
    host = socket.gethostname().split(".")[0][:32] or "host"
    return f"{name}.{host}.{os.getpid()}.{secrets.token_hex(ROUTING_ID_RANDOM_BYTES)}"


#: A worker's --name: it starts the routing id (at most 255 bytes, with the host, pid and
#: suffix after it) and every log line, so it is short and plain.
WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def worker_name(text: str) -> str:
    """An argparse ``type=`` for --name."""
    if not WORKER_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text[:80]!r}: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    return text


#: Handshakes in a row that the front ends unfinished before a worker says its --front-key is
#: likely wrong (one alone may be a front that restarted mid-handshake).
UNFINISHED_HANDSHAKES_TOLD = 2


class HeardCore(WorkerCore):
    """The Paranoid Pirate worker's state, plus when the front was last heard (for health)."""

    last_heard = float("-inf")

    def on_message(self, msg: list[bytes], now: float) -> Job | None:
        self.last_heard = now
        return super().on_message(msg, now)

    def hears_front(self, now: float) -> bool:
        return now - self.last_heard < self.ttl


class BatchingPirate(AsyncParanoidPirateWorker):
    """A Paranoid Pirate worker with credit-based flow control (the Guide's chapter 7): READY
    announces ``credit``, the front sends up to that many jobs at once, and every job that one
    read brought goes to ``handler`` together, in the loop pass that read them (the socket's
    on_recv_batch: no task wakes per batch), and their answers go out at once.
    ``handler(bodies)`` returns one answer per body, in order: its frames, or an awaitable of
    them (a login hashing elsewhere), sent when it is done. ``run()`` itself only keeps time:
    heartbeats, the front's expiry and reconnecting."""

    handler: Callable[[list[list[bytes]]], list[Answer]]

    def __init__(self, *args: Any, credit: int = DEFAULT_CREDIT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.credit = credit
        #: Answers still being computed (logins hashing), each sent by its own task.
        self.later: set[asyncio.Task[None]] = set()
        self._sock: Any = None
        #: The current connection's monitor, read for a refused handshake (one per connection:
        #: each reconnect makes a fresh socket), and whether a refusal was told already.
        self._monitor: Any = None
        self._monitor_task: asyncio.Task[None] | None = None
        self.refusal_told = False

    def _connect(self) -> tuple[Any, list[bytes]]:
        sock, ready = self._open()
        self._sock = sock
        self._watch_refusals(sock)
        return sock, [*ready, b"%d" % self.credit]

    def _watch_refusals(self, sock: Any) -> None:
        """Tell, once and at once, when the front refuses this worker's key, or ends its
        handshake because --front-key is not the front's key. Without this either looked like
        silence here: the socket retries the handshake quietly, and only the front's log (for
        a refused key) said why. (connect() only schedules the dial, so a monitor made just
        after it sees the first handshake.)"""
        self._unwatch()
        self._monitor = sock.get_monitor_socket(
            engine.EVENT_HANDSHAKE_FAILED_AUTH
            | engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            | engine.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | engine.EVENT_HANDSHAKE_SUCCEEDED
        )
        self._monitor_task = asyncio.ensure_future(self._tell_refusal(self._monitor))

    async def _tell_refusal(self, monitor: Any) -> None:
        unfinished = 0  # handshakes the front ended, in a row
        while not self.refusal_told:
            event = await engine.recv_monitor_message(monitor)
            kind = event["event"]
            if kind == engine.EVENT_HANDSHAKE_SUCCEEDED:
                unfinished = 0
            elif kind == engine.EVENT_HANDSHAKE_FAILED_AUTH:
                self.refusal_told = True
                log.warning(
                    "the front at %s refused this worker's key (ZAP status %s): it must be on "
                    "the front's workers/ allow-list (`crossroads keys worker NAME` there, then "
                    "--worker-key NAME.key_secret here), and --front-key the front's current key",
                    self.backend,
                    event["value"],
                )
            elif event["value"] == engine.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
                self.refusal_told = True
                log.warning(
                    "the front at %s does not take CURVE workers (is it running with "
                    "--insecure-workers? then so must this worker)",
                    self.backend,
                )
            else:
                # A CURVE server that cannot open the HELLO (boxed for another key) closes
                # without a word. Twice in a row: not one connection lost to bad luck.
                unfinished += 1
                if unfinished >= UNFINISHED_HANDSHAKES_TOLD:
                    self.refusal_told = True
                    log.warning(
                        "the front at %s ended this worker's handshake %d times before it "
                        "finished: is --front-key the front's public key? (the front prints "
                        "it at start: 'front public key ...')",
                        self.backend,
                        unfinished,
                    )

    def _unwatch(self) -> None:
        if self._monitor_task is not None:
            self._monitor_task.cancel()
            self._monitor_task = None
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None

    async def run(self) -> None:
        core = self.core
        self._running = True
        self._woken_by_stop = False
        #: A batch's crash (a bug in a handler) ends run(), as it did when run() took the jobs.
        crashed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sock = self._start(crashed)
        try:
            while self._running:
                now = time.monotonic()
                if core.lost(now):
                    self._stop_taking(sock)
                    delay = self._backoff()
                    if self._running:
                        await self._sleep(asyncio.sleep(delay))
                    if not self._running:
                        break
                    sock = self._start(crashed)
                    continue
                for msg in core.due(now):
                    self._send(sock, msg)
                await self._sleep(asyncio.wait([crashed], timeout=core.timeout(now)))
                if crashed.done():
                    crashed.result()
        finally:
            self._stop_taking(sock)
            self._unwatch()
            if not crashed.done():
                crashed.cancel()

    def _start(self, crashed: asyncio.Future[None]) -> Any:
        """A fresh connection: READY queued (the connecting side queues until it is up), and
        the jobs it brings handed to ``_on_messages``."""
        sock, ready = self._connect()
        sock.send_multipart_now(ready)
        sock.on_recv_batch(lambda msgs: self._on_messages(sock, msgs), crashed)
        return sock

    @staticmethod
    def _stop_taking(sock: Any) -> None:
        sock.on_recv_batch(None)
        sock.close(linger=0)

    def _on_messages(self, sock: Any, msgs: list[list[bytes]]) -> None:
        now = time.monotonic()
        on_message = self.core.on_message
        jobs = [job for msg in msgs if (job := on_message(msg, now)) is not None]
        if jobs:  # else heartbeats
            self._answer_now(sock, jobs)
            self.handled += len(jobs)

    def _answer_now(self, sock: Any, jobs: list[Job]) -> None:
        answers = self.handler([job.body for job in jobs])
        for job, answer in zip(jobs, answers, strict=True):
            if isinstance(answer, list):
                self._send(sock, self.core.reply(job, answer))
            else:
                task = asyncio.ensure_future(self._answer_later(sock, job, answer))
                self.later.add(task)
                task.add_done_callback(self.later.discard)

    @staticmethod
    def _send(sock: Any, msg: list[bytes]) -> None:
        try:
            sock.send_multipart_now(msg)
        except engine.Again:
            # The front holds at most `credit` jobs here, far below the high-water mark: a
            # full pipe means a front that stopped reading; it will take this worker for dead.
            log.warning("the front is not reading; a message to it was dropped")

    async def _answer_later(self, sock: Any, job: Job, answer: Awaitable[list[bytes]]) -> None:
        body = await answer
        if sock is not self._sock:
            return  # the front was lost meanwhile, and has given the job to another worker
        try:
            await sock.send_multipart(self.core.reply(job, body))
        except engine.ZMQError:
            pass  # closed since: the same as above


class HashingProcess:
    """Where a worker's logins hash their passwords: a process of its own, at low CPU priority.

    Argon2id is about 30 ms of one core (passwords.py). Run on the loop, it held up every
    action behind it; here it runs beside play, and at nice LOGIN_NICENESS the kernel gives
    it mostly the CPU that play leaves idle. A process, not a thread: a low-priority thread
    preempted while holding the GIL would stall the loop, an inversion a process cannot
    cause. One process, because the front already bounds the logins a worker holds
    (logins.py); it is started with the worker, so the first login does not wait for it.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def start(self) -> None:
        """Start the process and wait until it runs a first job: a worker that says READY
        hashes at once (on a loaded machine the start takes a second or more, and a login
        that slow was resent by its client, on a new connection: a second login)."""
        self._pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_hashing_process,
            initargs=(os.getpid(),),
        )
        await asyncio.wrap_future(self._pool.submit(int))

    async def run(self, work: Callable[[], object]) -> object:
        try:
            return await self._submit(work)
        except BrokenProcessPool:
            # The process died (killed, out of memory): a new one, or every later login of
            # this worker would fail. A second death in a row is the caller's error.
            log.warning("the password-hashing process died; starting another")
            self.close()
            return await self._submit(work)

    async def _submit(self, work: Callable[[], object]) -> object:
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        return await asyncio.wrap_future(self._pool.submit(work))

    def pids(self) -> list[int]:
        """The hashing process's PID, once started (for operators and tests)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return list(processes)

    def close(self, *, wait: bool = False) -> None:
        """Stop the process (a login still hashing is dropped). ``wait`` for the pool's own
        thread to finish, as the worker does when it stops: on Python 3.11 that thread closes
        the pipe the interpreter's exit hook then writes to, and an exit that overtook it
        printed "OSError: [Errno 9] Bad file descriptor" into the log (seen once in CI, in
        a JSON log, where it broke one object per line)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


def _start_hashing_process(worker_pid: int) -> None:
    """In the hashing process: lower its priority, and leave with its worker, even a killed
    one (the pool's pipes would keep it waiting forever)."""
    os.nice(LOGIN_NICENESS)
    threading.Thread(target=_exit_with, args=(worker_pid,), daemon=True).start()


def _exit_with(worker_pid: int) -> None:
    wait_process_ended(worker_pid, lambda: os.getppid() == worker_pid, PARENT_CHECK_S)
    os._exit(0)


class GameWorker:
    """One worker: ``await run()`` until ``stop()``; the jobs it holds are answered first."""

    def __init__(
        self,
        front: str,
        service: GameService,
        *,
        cpu_burn: int = 0,
        credit: int = DEFAULT_CREDIT,
        heartbeat_interval: float = 1.0,
        heartbeat_liveness: int = 3,
        name: str | None = None,
        context: ezmq.Context | None = None,
        observer: Observer | None = None,
        routing_id: str | None = None,
    ) -> None:
        self.service = service
        self.observer = observer
        self.cpu_burn = cpu_burn
        #: This process's routing id prefix (the front sees it plus a connection number); given
        #: when chosen earlier, so the process's log lines carry it from the first one.
        self.id = routing_id or (None if name is None else routing_name(name))
        self.pirate = BatchingPirate(
            front,
            self._handle,
            credit=credit,
            interval=heartbeat_interval,
            liveness=heartbeat_liveness,
            reconnect_max=RECONNECT_MAX_S,
            name=None if self.id is None else self.id.encode(),
            context=context,
        )
        self.core = self.pirate.core = HeardCore(
            interval=heartbeat_interval,
            liveness=heartbeat_liveness,
            reconnect_max=RECONNECT_MAX_S,
        )
        self.hashing = HashingProcess()
        self._stopping = False
        self._stopper: asyncio.Task[None] | None = None

    @property
    def handled(self) -> int:
        return self.pirate.handled

    async def run(self) -> None:
        try:
            await self.hashing.start()
            if not self._stopping:  # stopped while the hashing process started
                await self.pirate.run()
        finally:
            for task in self.pirate.later:  # the front re-sends what was not answered
                task.cancel()
            self.hashing.close(wait=True)  # stopping anyway: blocking only delays the exit

    def stop(self) -> None:
        """Stop once the answers sent so far have reached the socket; safe from a signal
        handler. Jobs run on the loop's thread, so none is ever cut short: this runs between
        batches (the asyncio face writes on the next loop pass, and the worker closes with
        linger 0, hence the short delay). Logins still hashing get up to LOGIN_DRAIN_S."""
        if self._stopper is None:  # kept: the loop holds its tasks only weakly
            self._stopper = asyncio.get_running_loop().create_task(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        later = self.pirate.later
        if later:
            await asyncio.wait(list(later), timeout=LOGIN_DRAIN_S)
        await asyncio.sleep(REPLY_FLUSH_S)
        self.pirate.stop()

    def _handle(self, bodies: list[list[bytes]]) -> list[Answer]:
        # On the loop's thread: a job is a few hundred microseconds of store calls, and a
        # thread hop per job cost more than the job (15-20 % of the worker's CPU). Heartbeats
        # wait meanwhile; only a batch stuck for the whole heartbeat expiry (a store locked
        # for seconds) makes the front re-send its jobs elsewhere, which exactly-once makes
        # harmless.
        # Logins hash in their own process (HashingProcess) and answer when done.
        return run_jobs(
            self.service,
            bodies,
            cpu_burn=self.cpu_burn,
            observer=self.observer,
            offload=self.hashing.run,
        )


def open_service(store_url: str, world_path: str | os.PathLike[str] | None) -> GameService:
    """The worker's GameService; raises StoreError/WorldError with a readable message."""
    world = load_world(world_path)
    store = open_store(store_url)
    try:
        seed_world(store, world)
    except BaseException:
        store.close()
        raise
    return GameService(store, world)


async def _watch_parent(parent: int, worker: GameWorker) -> None:
    await process_ended(parent, lambda: os.getppid() == parent, PARENT_CHECK_S)
    log.warning("the serving process %d is gone; stopping", parent)
    worker.stop()


#: A worker that has not heard its front for this long after starting says why that may be.
UNHEARD_WARNING_S = 10.0


async def _warn_if_unheard(worker: GameWorker, front: str, keyed: bool) -> None:
    """One warning with the likely causes when the front never answers: with CURVE a refused
    key looks like silence from here (the front logs the refusal with the key)."""
    await asyncio.sleep(UNHEARD_WARNING_S)
    if worker.core.last_heard == float("-inf") and not worker.pirate.refusal_told:
        cause = (
            "is this worker's key in the front's workers/ allow-list, and --front-key the "
            "front's current key? (the front logs refused keys)"
            if keyed
            else "is the front up, and does it run with --insecure-workers?"
        )
        log.warning("no word from the front at %s after %.0fs: %s", front, UNHEARD_WARNING_S, cause)


async def _keep_health_file(worker: GameWorker, path: str) -> None:
    """Touch the liveness file while the front is heard: a worker cut off from its front is
    alive but useless, and its health check says so."""
    toucher = Toucher(path)
    while True:
        now = time.monotonic()
        if worker.core.hears_front(now):
            toucher.beat(now)
        await asyncio.sleep(TOUCH_EVERY_S)


async def serve_worker(
    settings: cfg.Settings, name: str, exit_with_parent: bool, routing_id: str | None = None
) -> int:
    try:
        for warning in check_durable(settings.store, settings.allow_volatile_store):
            log.warning("%s", warning)
        service = await asyncio.to_thread(open_service, settings.store, settings.world)
    except (StoreError, WorldError) as exc:
        log.error("%s", exc)
        return 1
    context = ezmq.Context()
    try:
        worker_credentials(context, settings)  # CURVE to the front (cluster_keys.py)
    except KeysError as exc:
        log.error("%s", exc)
        service.close()
        context.destroy(linger=0)
        return 2
    meter = ActionMeter(service.commands)
    worker = GameWorker(
        settings.front,
        service,
        cpu_burn=settings.cpu_burn,
        heartbeat_interval=settings.heartbeat_interval,
        heartbeat_liveness=settings.heartbeat_liveness,
        name=name,
        context=context,
        observer=action_observer(meter),
        routing_id=routing_id,
    )
    logs.identify("worker", worker.id)
    try:
        metrics = await start_metrics(
            settings.metrics_bind, lambda: worker_registry(meter, logs.process_id())
        )
    except MetricsError as exc:
        log.error("%s", exc)
        context.destroy(linger=0)
        service.close()
        return 1
    collector.settle()  # the world, the store and the models live as long as we do
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.stop)
    watchers = (
        [asyncio.create_task(_watch_parent(os.getppid(), worker))] if exit_with_parent else []
    )
    watchers.append(
        asyncio.create_task(
            _warn_if_unheard(worker, settings.front, keyed=not settings.insecure_workers)
        )
    )
    if settings.health_file:
        watchers.append(asyncio.create_task(_keep_health_file(worker, settings.health_file)))
    if metrics is not None:
        watchers.append(asyncio.create_task(refresh_players_online(meter, service.store)))
    log.info("worker %s serving %s for %s", worker.id, shown_url(settings.store), settings.front)
    try:
        await worker.run()
    finally:
        for watcher in watchers:
            watcher.cancel()
        if metrics is not None:
            await metrics.close()
        context.destroy(linger=0)
        service.close()
    log.info("worker %s stopped after %d job(s)", worker.id, worker.handled)
    return 0


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run one stateless game worker for a front server (any machine will do).",
    )
    cfg.add_options(
        parser,
        {
            "front": "--front",
            "store": "--store",
            "world": "--world",
            "cpu_burn": "--cpu-burn",
            "heartbeat_interval": "--heartbeat-interval",
            "heartbeat_liveness": "--heartbeat-liveness",
            "log_level": "--log-level",
            "health_file": "--health-file",
            "keys_dir": "--keys-dir",
            "front_key": "--front-key",
            "worker_key": "--worker-key",
            "insecure_workers": "--insecure-workers",
            "allow_volatile_store": "--allow-volatile-store",
            "log_format": "--log-format",
            "metrics_bind": "--metrics-bind",
        },
    )
    parser.add_argument(
        "--name",
        default="w",
        type=worker_name,
        help="name in logs; the routing id adds host, pid and a random suffix (default: w)",
    )
    add_no_sched_batch(parser)
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one exits (used by `crossroads serve`)",
    )
    return parser


def main(argv: list[str], prog: str = "crossroads worker") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        settings = cfg.load(args)
    except cfg.SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    routing_id = logs.identify("worker", routing_name(args.name))
    cfg.setup_logging(settings.log_level, "worker", settings.log_format)
    if settings.sched_batch:
        use_batch_policy()
    return asyncio.run(serve_worker(settings, args.name, args.exit_with_parent, routing_id))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
