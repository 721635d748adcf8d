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
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import engine
import engine.asyncio as ezmq
from engine.patterns.paranoid_pirate import AsyncParanoidPirateWorker, Job, WorkerCore

from . import collector, logs
from . import settings as cfg
from .cluster_keys import KeysError, worker_credentials
from .durability import check_durable
from .health import TOUCH_EVERY_S, Toucher
from .jobs import Observer, run_jobs
from .metrics import (
    ActionMeter,
    MetricsError,
    action_observer,
    refresh_players_online,
    start_metrics,
    worker_registry,
)
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
#: How often an orphan check looks whether the process that started us is gone.
PARENT_CHECK_S = 1.0
#: Jobs a worker holds at once (its credit, announced with READY): enough to batch the commits
#: of a busy front's burst, few enough that a dead worker's jobs are re-sent quickly.
DEFAULT_CREDIT = 16
#: Random bytes in each routing id. Names and pids repeat across containers (every container's
#: worker is pid 6-8) and the front refuses a duplicate id; 48 bits make a clash between
#: processes alive at the same time negligible.
ROUTING_ID_RANDOM_BYTES = 6


def routing_name(name: str) -> str:
    """A routing id prefix unique to this process: name, host, pid and a random suffix (the
    host and pid are for people reading logs; the suffix is what makes it unique)."""
    host = socket.gethostname().split(".")[0][:32] or "host"
    return f"{name}.{host}.{os.getpid()}.{secrets.token_hex(ROUTING_ID_RANDOM_BYTES)}"


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
    announces ``credit``, the front sends up to that many jobs at once, and each pass of the
    pattern's loop takes every job that has arrived and hands them to ``handler`` together,
    then sends the answers. ``handler(bodies)`` returns one answer per body, in order."""

    handler: Callable[[list[list[bytes]]], list[list[bytes]]]

    def __init__(self, *args: Any, credit: int = DEFAULT_CREDIT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.credit = credit

    def _connect(self) -> tuple[Any, list[bytes]]:
        sock, ready = self._open()
        return sock, [*ready, b"%d" % self.credit]

    async def _take(self, sock: Any) -> list[Job]:
        """Every job that has arrived (at most the credit: the front sends no more)."""
        jobs = []
        for _ in range(self.credit + 1):  # + a heartbeat that may sit among them
            try:
                msg = await sock.recv_multipart(engine.DONTWAIT)
            except engine.Again:
                break
            job = self.core.on_message(msg, time.monotonic())
            if job is not None:
                jobs.append(job)
        return jobs

    async def _answer(self, sock: Any, jobs: list[Job]) -> None:
        answers = self.handler([job.body for job in jobs])
        for job, answer in zip(jobs, answers, strict=True):
            await sock.send_multipart(self.core.reply(job, answer))


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

    @property
    def handled(self) -> int:
        return self.pirate.handled

    async def run(self) -> None:
        await self.pirate.run()

    def stop(self) -> None:
        """Stop once the answers sent so far have reached the socket; safe from a signal
        handler. Jobs run on the loop's thread, so none is ever cut short: this runs between
        batches (the asyncio face writes on the next loop pass, and the worker closes with
        linger 0, hence the short delay)."""
        asyncio.get_running_loop().call_later(REPLY_FLUSH_S, self.pirate.stop)

    def _handle(self, bodies: list[list[bytes]]) -> list[list[bytes]]:
        # On the loop's thread: a job is a few hundred microseconds of store calls, and a
        # thread hop per job cost more than the job (15-20 % of the worker's CPU). Heartbeats
        # wait meanwhile; only a batch stuck for the whole heartbeat expiry (a store locked
        # for seconds) makes the front re-send its jobs elsewhere, which exactly-once makes
        # harmless.
        return run_jobs(self.service, bodies, cpu_burn=self.cpu_burn, observer=self.observer)


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
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_S)
    log.warning("the serving process %d is gone; stopping", parent)
    worker.stop()


#: A worker that has not heard its front for this long after starting says why that may be.
UNHEARD_WARNING_S = 10.0


async def _warn_if_unheard(worker: GameWorker, front: str, keyed: bool) -> None:
    """One warning with the likely causes when the front never answers: with CURVE a refused
    key looks like silence from here (the front logs the refusal with the key)."""
    await asyncio.sleep(UNHEARD_WARNING_S)
    if worker.core.last_heard == float("-inf"):
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
        help="name in logs; the routing id adds host, pid and a random suffix (default: w)",
    )
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
    return asyncio.run(serve_worker(settings, args.name, args.exit_with_parent, routing_id))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
