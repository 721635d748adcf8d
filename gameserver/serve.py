"""`crossroads serve`: the front server plus N local worker processes, ready to play.

Startup: validate the world and the store (clear errors before anything runs), bind the front,
start the workers (each a `crossroads worker` child in its own process group, so a terminal's
Ctrl-C reaches only this process), print the endpoints, and print ``ready`` once every worker
has reported in. A worker that dies is replaced.

Shutdown on SIGINT/SIGTERM: the front stops taking requests and finishes the accepted ones,
then the workers are stopped (SIGTERM, SIGKILL after a grace period) and the sockets closed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import engine

from . import collector, logs
from . import settings as cfg
from .cluster_keys import ALLOWED_WORKERS, FrontSecurity, KeyAnnouncer, KeysError, ensure_cluster
from .durability import check_durable
from .front import Front, FrontError
from .health import HEALTH_FILE_ENV, Toucher
from .limits import SocketLimits
from .local_workers import LocalPort
from .metrics import MetricsError, front_registry, offset_bind, start_metrics
from .process_watch import process_ended
from .scheduling import add_no_sched_batch, use_batch_policy
from .seed import seed_world
from .store import SQLITE_SCHEME, StoreError, open_store, shown_url
from .world import World, WorldError, load_world

log = logging.getLogger(__name__)

#: How long startup waits for every worker's READY before printing ``ready`` anyway.
STARTUP_TIMEOUT_S = 60.0
#: Grace between SIGTERM and SIGKILL for a worker (it only has to finish one idle loop).
WORKER_STOP_S = 5.0
#: A worker that dies is replaced after this delay, doubled while it keeps dying (to the cap),
#: so a worker that cannot start (store down) does not spin the machine.
RESPAWN_INIT_S = 0.5
RESPAWN_MAX_S = 30.0
#: A worker that lived this long was healthy: its replacement starts with the first delay.
HEALTHY_RUN_S = 30.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def connectable(endpoint: str) -> str:
    """A bound wildcard endpoint as a local client would connect to it."""
    for wildcard in ("tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"):
        if endpoint.startswith(wildcard):
            return "tcp://127.0.0.1:" + endpoint[len(wildcard) :]
    return endpoint


def say(text: str) -> None:
    """Tell the operator (stdout; logs go to stderr)."""
    print(text, flush=True)


@dataclass
class WorkerSlot:
    name: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = RESPAWN_INIT_S
    restart_at: float | None = None
    restarts: int = 0
    #: Done once the process has ended (process_watch): the supervisor sleeps until then.
    ended: asyncio.Task[None] | None = None


@dataclass
class Supervisor:
    """Starts the local workers, replaces the ones that die, and stops them all."""

    settings: cfg.Settings
    front_endpoint: str
    #: The local worker port (local_workers.py): the workers connect there, with its secret in
    #: their environment. None: they use `front_endpoint` and the cluster's keys.
    local: LocalPort | None = None
    slots: list[WorkerSlot] = field(default_factory=list)

    def command(self, name: str) -> list[str]:
        s = self.settings
        front = self.front_endpoint if self.local is None else self.local.endpoint
        cmd = [sys.executable, "-m", "gameserver.worker", "--front", front]
        # The store URL (its password, perhaps) goes in the environment (see _start), never
        # on a command line that `ps` shows every local user.
        cmd += ["--name", name, "--log-level", s.log_level]
        cmd += ["--cpu-burn", str(s.cpu_burn), "--heartbeat-interval", str(s.heartbeat_interval)]
        cmd += ["--heartbeat-liveness", str(s.heartbeat_liveness), "--exit-with-parent"]
        if s.allow_volatile_store:
            cmd += ["--allow-volatile-store"]
        if self.local is None:  # else PLAIN on the local port, by the environment's secret
            cmd += ["--insecure-workers"] if s.insecure_workers else ["--keys-dir", str(s.keys_dir)]
        cmd += ["--log-format", s.log_format]
        if not s.sched_batch:
            cmd += ["--no-sched-batch"]
        if s.metrics_bind:  # worker i serves metrics on the front's port + i
            offset = 1 + [slot.name for slot in self.slots].index(name)
            cmd += ["--metrics-bind", offset_bind(s.metrics_bind, offset)]
        if s.world is not None:
            cmd += ["--world", str(s.world)]
        return cmd

    def start_all(self, count: int) -> None:
        for i in range(1, count + 1):
            slot = WorkerSlot(f"w{i}")
            self.slots.append(slot)
            self._start(slot)

    def _start(self, slot: WorkerSlot) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        env.pop(HEALTH_FILE_ENV, None)  # the front's liveness file is the front's alone
        env[cfg.env_name("store")] = self.settings.store
        if self.local is not None:
            env[cfg.env_name("local_worker_secret")] = self.local.secret
        slot.process = subprocess.Popen(
            self.command(slot.name),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,  # workers only log; keep our stdout for the operator's lines
            start_new_session=True,  # Ctrl-C reaches serve only, which stops them in order
        )
        slot.started = time.monotonic()
        slot.restart_at = None
        proc = slot.process
        slot.ended = asyncio.create_task(process_ended(proc.pid, lambda: proc.poll() is None))
        verb = "restarted" if slot.restarts else "started"
        say(f"worker {slot.name} {verb}: pid {slot.process.pid}")

    def check(self, now: float) -> None:
        """Replace dead workers (with back-off)."""
        for slot in self.slots:
            proc = slot.process
            if proc is not None and proc.poll() is not None:
                lived = now - slot.started
                slot.delay = RESPAWN_INIT_S if lived >= HEALTHY_RUN_S else slot.delay
                log.warning(
                    "worker %s (pid %d) exited with %s; restarting in %.1fs",
                    slot.name,
                    proc.pid,
                    proc.returncode,
                    slot.delay,
                )
                slot.process = slot.ended = None
                slot.restart_at = now + slot.delay
                slot.delay = min(slot.delay * 2, RESPAWN_MAX_S)
            if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
                slot.restarts += 1
                self._start(slot)

    def endings(self) -> set[asyncio.Task[None]]:
        """What the supervising loop sleeps on besides its timer: a worker's end."""
        return {s.ended for s in self.slots if s.ended is not None and not s.ended.done()}

    def due_in(self, now: float) -> float | None:
        """Seconds until a dead worker's replacement is due (None: none is)."""
        due = [s.restart_at for s in self.slots if s.process is None and s.restart_at is not None]
        return max(0.0, min(due) - now) if due else None

    async def stop_all(self) -> None:
        for slot in self.slots:
            if slot.ended is not None:
                slot.ended.cancel()
        procs = [s.process for s in self.slots if s.process is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_S
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for proc in procs:
            if proc.poll() is None:
                log.warning("worker pid %d ignored SIGTERM; killing it", proc.pid)
                proc.kill()
            proc.wait()


def check_store(settings: cfg.Settings, world: World) -> None:
    """Open the store once: a bad URL or an unreachable server fails here, clearly."""
    if settings.store.startswith(SQLITE_SCHEME):
        Path(settings.store[len(SQLITE_SCHEME) :]).parent.mkdir(parents=True, exist_ok=True)
    for warning in check_durable(settings.store, settings.allow_volatile_store):
        log.warning("%s", warning)
    with open_store(settings.store) as store:
        seed_world(store, world)


def front_security(settings: cfg.Settings) -> FrontSecurity | None:
    """The front's keys (made on first run), the worker port's allow-list (unless the operator
    chose --insecure-workers) and whether the player ports speak CURVE; None: no CURVE at all."""
    if settings.insecure_workers:
        log.warning(
            "--insecure-workers: ANY process that reaches %s can take jobs and read players' "
            "passwords; use it only on a trusted, private network",
            settings.workers_bind,
        )
    if not settings.secure_players:
        log.warning(
            "--insecure-players: the player ports %s and %s speak CLEARTEXT; anyone in the path "
            "reads players' passwords, session tokens and chat. Use it only on a trusted network",
            settings.actions_bind,
            settings.updates_bind,
        )
        if settings.insecure_workers:
            return None
    keys_dir = settings.keys_dir
    pair, created = ensure_cluster(keys_dir)
    for path in created:
        say(f"created {path}")
    say(f"front public key {pair.public.decode()}  (workers and relays need it: {keys_dir})")
    allowed = None if settings.insecure_workers else keys_dir / ALLOWED_WORKERS
    return FrontSecurity(pair, allowed, players=settings.secure_players)


async def serve(settings: cfg.Settings, world: World) -> int:
    # Serve's own workers connect over a private Unix socket (local_workers.py): its directory
    # goes when serve does, whichever way it ends.
    try:
        local = LocalPort.create() if settings.workers > 0 else None
    except OSError as exc:
        print(f"crossroads serve: cannot make the local workers' directory: {exc}", file=sys.stderr)
        return 1
    try:
        return await _serve(settings, world, local)
    finally:
        if local is not None:
            local.remove()


async def _serve(settings: cfg.Settings, world: World, local: LocalPort | None) -> int:
    tick = settings.tick_interval or world.clock.tick_seconds / 2
    try:
        security = front_security(settings)
    except KeysError as exc:
        print(f"crossroads serve: {exc}", file=sys.stderr)
        return 1
    try:
        front = Front(
            actions_bind=settings.actions_bind,
            updates_bind=settings.updates_bind,
            workers_bind=settings.workers_bind,
            max_pending=settings.max_pending,
            rate=settings.rate,
            burst=settings.burst,
            logins_per_s=settings.logins_per_s,
            registration_burst=settings.registration_burst,
            tick_interval=tick,
            heartbeat_interval=settings.heartbeat_interval,
            heartbeat_liveness=settings.heartbeat_liveness,
            drain_timeout=settings.drain_timeout,
            security=security,
            limits=SocketLimits(
                settings.max_connections, settings.max_subscriptions, settings.player_heartbeat
            ),
            # Workers that keep a copy of the store (not SQLite's) serve their own players.
            sticky_workers=not settings.store.startswith(SQLITE_SCHEME),
            local_workers=local,
        )
    except FrontError as exc:
        print(f"crossroads serve: {exc}", file=sys.stderr)
        return 1
    try:
        metrics = await start_metrics(
            settings.metrics_bind, lambda: front_registry(front, logs.process_id())
        )
    except MetricsError as exc:
        print(f"crossroads serve: {exc}", file=sys.stderr)
        front.close(linger=0)
        return 1
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, front.shutdown)
    supervisor = Supervisor(settings, connectable(front.workers_endpoint), local)
    say(f"crossroads serve: world {world.world.name!r}, store {shown_url(settings.store)}")
    # Where a local client connects, then what is really bound (0.0.0.0: every interface).
    say(f"actions {connectable(front.actions_endpoint)}  (bound {front.actions_endpoint})")
    say(f"updates {connectable(front.updates_endpoint)}  (bound {front.updates_endpoint})")
    open_port = security is None or security.allowed_workers is None
    admits = "ANY process (insecure)" if open_port else "allowed keys only"
    say(f"workers {front.workers_endpoint}  (crossroads worker --front ...; {admits})")
    if front.local_workers_endpoint is not None:
        say(f"local {front.local_workers_endpoint}  (serve's own workers: this run's secret)")
    announcer = None
    if security is not None and security.players:
        key_bind = settings.key_bind or cfg.key_bind_for(settings.actions_bind)
        try:
            announcer = KeyAnnouncer(front.context, key_bind, security.pair.public)
        except engine.ZMQError as exc:
            front.close(linger=0)
            print(
                f"crossroads serve: cannot bind the key endpoint {key_bind} (--key-bind): {exc}",
                file=sys.stderr,
            )
            return 1
        say(f"key {connectable(announcer.endpoint)}  (players learn the front's key here)")
    else:
        say("players CLEARTEXT (--insecure-players): passwords and tokens cross the network open")
    announcing = None if announcer is None else asyncio.create_task(announcer.serve())
    if metrics is not None:
        say(f"metrics {metrics.url}  (Prometheus; keep this port private)")
    runner = asyncio.create_task(front.run())
    try:
        supervisor.start_all(settings.workers)
        waiting = asyncio.create_task(front.wait_for_workers(settings.workers, STARTUP_TIMEOUT_S))
        await asyncio.wait({runner, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if waiting.done() and not waiting.result():
            log.warning("only %d of %d workers reported in", front.worker_count, settings.workers)
        if not runner.done():
            collector.settle()  # start-up's objects live as long as we do: out of every GC
            if settings.workers == 0:  # a front for remote workers: until one joins, no answers
                say(
                    "no local workers (--workers 0): actions wait for a `crossroads worker "
                    f"--front {connectable(front.workers_endpoint)}` to join"
                )
            say(f"ready: {front.worker_count} worker(s); Ctrl-C to stop")
        health = Toucher(settings.health_file)
        while not runner.done():
            if front.draining:  # nothing is replaced or touched now: only the front's end
                await asyncio.wait({runner})
                continue
            # Asleep until the front ends, a worker ends, a replacement or the health file is
            # due: an idle server has nothing to check in between.
            now = time.monotonic()
            dues = [d for d in (supervisor.due_in(now), health.due_in(now)) if d is not None]
            await asyncio.wait(
                {runner, *supervisor.endings()},
                timeout=min(dues, default=None),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not front.draining:
                supervisor.check(time.monotonic())
                health.beat(time.monotonic())
        waiting.cancel()
        await runner  # re-raises a crash of the front
    finally:
        runner.cancel()
        if announcing is not None and announcer is not None:
            announcing.cancel()
            announcer.close()
        if metrics is not None:
            await metrics.close()
        await supervisor.stop_all()
        await asyncio.sleep(0.05)  # one more loop pass: the last replies reach the sockets
        front.close()
    say(f"stopped: {front.stats.replies} replies, {front.stats.published} events published")
    return 0


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Run the game: the front server (actions, updates, worker backend) and local worker "
            "processes. Every option can also be set by its CROSSROADS_* environment variable."
        ),
    )
    cfg.add_options(
        parser,
        {
            "workers": "--workers",
            "store": "--store",
            "world": "--world",
            "actions_bind": "--actions-bind",
            "updates_bind": "--updates-bind",
            "workers_bind": "--workers-bind",
            "log_level": "--log-level",
            "max_pending": "--max-pending",
            "rate": "--rate",
            "burst": "--burst",
            "logins_per_s": "--logins-per-s",
            "registration_burst": "--registration-burst",
            "tick_interval": "--tick-interval",
            "heartbeat_interval": "--heartbeat-interval",
            "heartbeat_liveness": "--heartbeat-liveness",
            "drain_timeout": "--drain-timeout",
            "cpu_burn": "--cpu-burn",
            "health_file": "--health-file",
            "keys_dir": "--keys-dir",
            "insecure_workers": "--insecure-workers",
            "allow_volatile_store": "--allow-volatile-store",
            "max_connections": "--max-connections",
            "max_subscriptions": "--max-subscriptions",
            "player_heartbeat": "--player-heartbeat",
            "secure_players": "--secure-players",
            "key_bind": "--key-bind",
            "log_format": "--log-format",
            "metrics_bind": "--metrics-bind",
        },
    )
    add_no_sched_batch(parser)
    parser.add_argument(
        "--insecure-players",
        dest="secure_players",
        action="store_const",
        const=False,
        help="player ports WITHOUT encryption (passwords and tokens in clear; warned at start); "
        f"env {cfg.env_name('secure_players')}=false",
    )
    return parser


def main(argv: list[str], prog: str = "crossroads serve") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        settings = cfg.load(args)
    except cfg.SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    cfg.setup_logging(settings.log_level, "front", settings.log_format)
    if settings.sched_batch:
        use_batch_policy()  # before the workers start: they inherit it
    try:
        world = load_world(settings.world)
    except WorldError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    try:
        check_store(settings, world)
    except (StoreError, OSError) as exc:
        print(f"{prog}: cannot use store {shown_url(settings.store)}: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(serve(settings, world))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
