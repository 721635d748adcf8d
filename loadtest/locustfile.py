"""Locust load test for Crossroads: ``locust -f loadtest/locustfile.py --host tcp://HOST:7301``.

Each :class:`PlayerUser` logs in under a unique name, follows its topics on the update socket
(``--updates``, e.g. a regional relay; default: the actions port + 1 on the same host), then
plays: look 40%, move 30%, say 20%, take/drop 10%. Every action is a Locust request
(type ``game``, name = the verb) timed over the real round trip; error replies and timeouts are
failures, game refusals ("You see no lamp here.") are not. A ``say`` is also measured as
``broadcast``: from sending it to its event arriving on the speaker's own SUB socket.

Built on :mod:`loadtest.syncclient`: the players' client core (:mod:`client.protocol`) driven on
the engine's sync face, gevent-cooperative.
"""

from __future__ import annotations

import csv
import gc
import math
import os
import random
import secrets
import sys
import time
from typing import Any

import gevent
from locust import User, argument_parser, events, task
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

import engine as zmq
from gameserver.known_hosts import server_key
from gameserver.world import World, WorldError, load_world
from loadtest.loadgen_gc import StartupFreezer
from loadtest.syncclient import SessionError, SyncGameClient

PASSWORD = "loadtest"


def _build_locust_defaults_once() -> None:
    """Locust 2.47's worker sorts each spawn message's options into its own and the locustfile's
    by calling ``default_args_dict()`` once per option, and that builds Locust's whole argument
    parser each time (about 3 ms; some 60 options). The master sends a spawn message every
    second of the ramp-up, so in a 1,000-user run this was half of each worker process's CPU
    (py-spy), taken from the simulated players. The defaults cannot change within a process:
    build them once, and hand out copies, as the original hands out fresh dicts."""
    build = argument_parser.default_args_dict
    if hasattr(build, "__wrapped__"):
        return  # this module imported twice
    defaults: dict[str, Any] = {}

    def default_args_dict() -> dict[str, Any]:
        if not defaults:
            defaults.update(build())
        return dict(defaults)

    default_args_dict.__wrapped__ = build  # type: ignore[attr-defined]
    argument_parser.default_args_dict = default_args_dict


_build_locust_defaults_once()

#: The GIL's switch interval in a Locust process, in seconds (Python's default: 5 ms). Each
#: process runs its simulated players in gevent's hub thread and the engine's I/O thread beside
#: it (engine/iothread.py), and a reply the I/O thread has read waits for the GIL until the hub
#: lets go. At 5 ms those waits showed up in every player's round trips once the hub was busy:
#: at 1,000 users, `crossroads loadtest -u 1000 --processes 2 --wait 1-3` timed a median action
#: of 18-20 ms at the default and 10-13 ms at 0.5 ms (look, move, say), on the same server.
GIL_SWITCH_INTERVAL_S = 0.0005
sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

#: How long a ``say`` may take to come back on the speaker's SUB before it counts as failed.
BROADCAST_TIMEOUT_S = 5.0
_context: Any = None
_world: World | None = None
_updates_key: bytes | None = None
_environment: Environment | None = None


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    parser.add_argument(
        "--updates",
        default=os.environ.get("CROSSROADS_LOADTEST_UPDATES", ""),
        help="update endpoint to subscribe to (front or relay; default: --host's port + 1)",
    )
    parser.add_argument(
        "--server-key",
        default=os.environ.get("CROSSROADS_SERVER_KEY", ""),
        help="the front's CURVE public key (default: pinned in the known-hosts file, else "
        "learnt from its announcement on first use; one that starts with '-' goes as "
        "--server-key=KEY)",
    )
    parser.add_argument(
        "--key-endpoint",
        default=os.environ.get("CROSSROADS_LOADTEST_KEY_ENDPOINT", ""),
        help="where the front announces its key (default: the port below --host's)",
    )
    parser.add_argument(
        "--updates-key-endpoint",
        default=os.environ.get("CROSSROADS_LOADTEST_UPDATES_KEY_ENDPOINT", ""),
        help="where --updates' server announces its own key, when it is a relay (7310 for "
        "its 7312); default: --updates shares the front's key",
    )
    parser.add_argument(
        "--request-timeout", type=float, default=5.0, help="seconds before an action fails"
    )
    parser.add_argument(
        "--login-timeout", type=float, default=30.0, help="seconds before a login fails"
    )
    parser.add_argument(
        "--wait", default="0.1-0.5", help="seconds between a player's actions, MIN-MAX"
    )


#: Keeps the players' long-lived state out of this process's garbage collections (loadgen_gc).
_freezer = StartupFreezer()


@events.init.add_listener
def _remember(environment: Environment, **_: Any) -> None:
    global _environment
    _environment = environment
    _freezer.settle()


@events.quit.add_listener
def _final_csv(**_: Any) -> None:
    """Write ``PREFIX_final.csv`` once every user stopped: Locust's own ``PREFIX_stats.csv`` is
    rewritten once a second and can miss the last second of a run."""
    env = _environment
    prefix = getattr(env.parsed_options, "csv_prefix", None) if env and env.parsed_options else None
    if env is None or not prefix or isinstance(env.runner, WorkerRunner):
        return
    with open(f"{prefix}_final.csv", "w", newline="") as f:
        StatsCSV(env, PERCENTILES_TO_REPORT).requests_csv(csv.writer(f))


@events.quit.add_listener
def _stop_csv_writers(**_: Any) -> None:
    """Stop Locust's own CSV writer before Locust closes its files. Locust (2.47) closes them
    right after this event without stopping the greenlet that rewrites them every second; on a
    slow exit (a loaded machine) that greenlet wakes once more and prints a ValueError
    traceback under the summary. It is found among live objects: Locust keeps no handle."""
    for obj in gc.get_objects():
        if isinstance(obj, gevent.Greenlet) and not obj.dead:
            run = getattr(obj, "_run", None)
            if getattr(run, "__name__", "") == "stats_writer":
                obj.kill(block=True)


def updates_for(actions: str) -> str:
    """The front's default update endpoint next to ``actions`` (7301 -> 7302)."""
    host, _, port = actions.rpartition(":")
    return f"{host}:{int(port) + 1}"


def shared_context(actions: str, options: Any = None) -> Any:
    """One engine context (one I/O thread) per process, shared by every simulated player; a
    CURVE client of the front when it has a key (learnt once per process, as a player's
    client learns it: gameserver/known_hosts.py)."""
    global _context
    if _context is None:
        key = server_key(
            actions,
            given=getattr(options, "server_key", "") or None,
            key_endpoint=getattr(options, "key_endpoint", "") or None,
        )
        context = zmq.Context()
        context.set(zmq.MAX_SOCKETS, 65536)  # two sockets per player; default is 1023
        if key is not None:
            context.curve_serverkey = key
            context.curve_publickey, context.curve_secretkey = zmq.curve_keypair()
        _context = context
    return _context


def updates_key(updates: str, options: Any = None) -> bytes | None:
    """The key of a relay that --updates points at (learnt once per process); None: the
    front's key serves the updates too."""
    global _updates_key
    endpoint = getattr(options, "updates_key_endpoint", "") or None
    if endpoint is None:
        return None
    if _updates_key is None:
        _updates_key = server_key(updates, key_endpoint=endpoint)
    return _updates_key


def arrival_spread_s(options: Any) -> float:
    """Seconds over which to spread the first logins of the users Locust starts together.

    Locust's master hands out new users in batches, one batch of ``floor(rate)`` users every
    ``floor(rate) / rate`` seconds (locust/dispatch.py), and each batch starts at once. Players
    who arrive at a rate of 10 a second do not arrive ten at a time on the second; logged in
    together, a batch queues behind its own password hashes, so every login of a ramp-up timed
    its neighbours' hashing too (a login p50 of 90 ms at 100 users against 22 ms alone). Each
    new user therefore waits a uniform share of the batch's interval before logging in.
    """
    rate = float(getattr(options, "spawn_rate", 0.0) or 0.0)
    return math.floor(rate) / rate if rate >= 1.0 else 0.0


def world() -> World | None:
    """The default world, for exits and item names (None if it cannot be loaded)."""
    global _world
    if _world is None:
        try:
            _world = load_world(None)
        except WorldError:
            return None
    return _world


class PlayerUser(User):
    """One simulated player on its own action and update sockets."""

    def wait_time(self) -> float:
        """Seconds until this player's next action: uniform within ``--wait``."""
        return random.uniform(*self.wait_range)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        actions = self.host or "tcp://127.0.0.1:7301"
        updates = (getattr(options, "updates", "") if options else "") or updates_for(actions)
        timeout = getattr(options, "request_timeout", 5.0) if options else 5.0
        self.login_timeout = getattr(options, "login_timeout", 30.0) if options else 30.0
        low, _, high = (getattr(options, "wait", "") if options else "").partition("-")
        self.wait_range = (float(low or 0.1), float(high or low or 0.5))
        context = shared_context(actions, options)
        self.client = SyncGameClient(
            actions, updates, context, timeout=timeout, updates_key=updates_key(updates, options)
        )
        self.carrying: list[str] = []
        self.name = "lt" + secrets.token_hex(7)
        gevent.sleep(random.uniform(0.0, arrival_spread_s(options)))
        self._logged_in()
        _freezer.player_started()

    def _logged_in(self) -> bool:
        """Log in if not yet (a failed login is retried by the next task instead of acting)."""
        if self.client.token is None:
            login = lambda: self.client.login(self.name, PASSWORD, self.login_timeout)  # noqa: E731
            return self._measure("login", login) is not None
        return True

    def on_stop(self) -> None:
        client = getattr(self, "client", None)  # None if the run stopped inside on_start
        if client is not None:
            client.close()

    def _fire(
        self, verb: str, ms: float, size: int = 0, exc: Exception | None = None, kind: str = "game"
    ) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=verb,
            response_time=ms,
            response_length=size,
            exception=exc,
            context={},
        )

    def _measure(self, verb: str, call: Any) -> Any:
        """Run ``call`` and report it; returns its reply, or None when it failed."""
        start = time.perf_counter()
        try:
            done = call()
        except SessionError as exc:  # an error answer, or no answer in time
            self._fire(verb, (time.perf_counter() - start) * 1000, exc=exc)
            return None
        self._fire(verb, done.round_trip_ms, done.size)
        return done.reply

    @task(40)
    def look(self) -> None:
        if not self._logged_in():
            return
        self._measure("look", lambda: self.client.act("look"))

    @task(30)
    def move(self) -> None:
        if not self._logged_in():
            return
        w = world()
        room = w.rooms.get(self.client.room or "") if w else None
        if room and room.exits:
            direction = random.choice(sorted(room.exits))
        else:
            direction = random.choice(("north", "south", "east", "west"))
        self._measure("move", lambda: self.client.act(f"go {direction}"))

    @task(20)
    def say(self) -> None:
        if not self._logged_in():
            return
        message = secrets.token_hex(6)
        self.client.listening.add(message)
        sent = time.perf_counter()
        if self._measure("say", lambda: self.client.act(f"say {message}")) is None:
            self.client.listening.discard(message)
            return
        arrived = self.client.hear(message, BROADCAST_TIMEOUT_S)
        if arrived is None:
            exc = TimeoutError(f"own say not heard within {BROADCAST_TIMEOUT_S}s")
            self._fire("broadcast", BROADCAST_TIMEOUT_S * 1000, exc=exc, kind="update")
        else:
            self._fire("broadcast", (arrived - sent) * 1000, kind="update")

    @task(10)
    def take_or_drop(self) -> None:
        if not self._logged_in():
            return
        if self.carrying or random.random() < 0.3:  # dropping nothing is a refusal: still timed
            item = self.carrying.pop() if self.carrying else "lamp"
            self._measure("drop", lambda: self.client.act(f"drop {item}"))
            return
        w = world()
        items = list(w.items.values()) if w else []
        here = [i for i in items if i.room == self.client.room and i.takeable]
        pick = random.choice(here) if here else None
        item = (pick.aliases or [pick.name])[0] if pick else "lamp"  # a refusal is fine too
        reply = self._measure("take", lambda: self.client.act(f"take {item}"))
        if reply is not None and reply.ok:
            self.carrying.append(item)
