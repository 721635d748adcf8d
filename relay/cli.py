"""`crossroads relay`: run one regional relay until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import engine
from gameserver import logs
from gameserver.cli_numbers import positive
from gameserver.cluster_keys import (
    RELAY,
    KeyAnnouncer,
    KeyPair,
    KeysError,
    ensure_pair,
    load_pair,
    secret_file,
)
from gameserver.health import HEALTH_FILE_ENV
from gameserver.known_hosts import (
    KnownHosts,
    ServerKeyChanged,
    key_endpoint_for,
    known_hosts_path,
    server_key,
)
from gameserver.logs import LOG_FORMATS
from gameserver.metrics import MetricsError, start_metrics
from gameserver.settings import default_keys_dir, endpoint_problem, host_port, key_bind_for

from .forwarder import (
    DEFAULT_HWM,
    DEFAULT_MULTICAST_RATE,
    MULTICAST_SCHEMES,
    PLAYER_SUBSCRIPTIONS,
    Relay,
)
from .metrics import relay_registry

log = logging.getLogger("relay")

#: Relay ports mirror the front's (7301 actions, 7302 updates) ten higher, so a relay and a front
#: fit on one machine.
DEFAULT_BIND = "tcp://*:7312"
#: Where a relay with --key announces its public key (its player ports are 7311/7312).
DEFAULT_KEY_BIND = "tcp://*:7310"
#: Seconds between stats log lines; a minute is enough to watch bandwidth without log spam.
DEFAULT_STATS_INTERVAL = 60.0


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Forward game events from an upstream front or relay to a region's players, "
        "sending upstream only the topics someone in the region subscribes to.",
    )
    p.add_argument("--upstream", required=True, help="upstream XPUB, e.g. tcp://dc:7302")
    p.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        help=f"XPUB for the region ({DEFAULT_BIND}); epgm://IFACE;GROUP:PORT (or pgm://, as root) "
        "serves the region's LAN over multicast",
    )
    p.add_argument(
        "--multicast-rate",
        type=int,
        default=DEFAULT_MULTICAST_RATE,
        metavar="KBIT",
        help=f"pgm/epgm send rate in kbit/s ({DEFAULT_MULTICAST_RATE})",
    )
    p.add_argument(
        "--multicast-hops",
        type=int,
        default=1,
        metavar="N",
        help="pgm/epgm TTL: 1 keeps it on the LAN (1)",
    )
    p.add_argument("--actions-upstream", help="upstream actions ROUTER, e.g. tcp://dc:7301")
    p.add_argument("--actions-bind", help="ROUTER for the region's actions, e.g. tcp://*:7311")
    p.add_argument("--stats-bind", help="REP answering stats requests, e.g. tcp://*:7319")
    p.add_argument(
        "--stats-interval",
        type=positive(float, zero=True),
        default=DEFAULT_STATS_INTERVAL,
        help="seconds between stats log lines (0: never)",
    )
    p.add_argument(
        "--max-subscriptions",
        type=int,
        default=PLAYER_SUBSCRIPTIONS,
        metavar="N",
        help=f"topics one downstream peer may hold ({PLAYER_SUBSCRIPTIONS}: a player needs 3); "
        "raise it on a relay that feeds other relays",
    )
    p.add_argument(
        "--hwm",
        type=positive(int, zero=True),
        default=DEFAULT_HWM,
        help="per-peer queue bound (0: none)",
    )
    p.add_argument(
        "--history",
        type=positive(int, zero=True),
        default=0,
        help="events kept per public topic to answer the region's catch-ups locally (0: off; "
        "needs the actions proxy; the relay does not check session tokens)",
    )
    p.add_argument(
        "--health-file",
        default=os.environ.get(HEALTH_FILE_ENV) or None,
        metavar="PATH",
        help="liveness file kept fresh while the upstream links are up, for "
        f"`crossroads-health file` (env {HEALTH_FILE_ENV}; default: none)",
    )
    p.add_argument(
        "--upstream-key",
        metavar="KEY",
        help="the upstream's CURVE public key (Z85 or a .key file); default: the one "
        "remembered in --known-hosts, else the upstream's announcement, trusted on first use; "
        "a key that starts with '-' goes as --upstream-key=KEY",
    )
    p.add_argument(
        "--upstream-key-endpoint",
        metavar="ENDPOINT",
        help="where the upstream announces its key (default: the port below "
        "--actions-upstream's, else two below --upstream's: 7300 for a front, 7310 for a relay)",
    )
    p.add_argument(
        "--known-hosts",
        type=Path,
        metavar="PATH",
        help=f"remembered upstream keys (default: {known_hosts_path()})",
    )
    p.add_argument(
        "--key",
        type=Path,
        metavar="PATH",
        help="this relay's .key_secret for its region's CURVE (default: relay.key_secret in "
        "--keys-dir, made on first run)",
    )
    p.add_argument(
        "--keys-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where the relay's own key is kept without --key (default: {default_keys_dir()})",
    )
    p.add_argument(
        "--key-bind",
        default=None,
        metavar="ENDPOINT",
        help="where the region's players learn this relay's key (default: the port below "
        f"--actions-bind's, where players look; without it {DEFAULT_KEY_BIND})",
    )
    p.add_argument(
        "--insecure-players",
        action="store_true",
        help="the region's ports WITHOUT encryption (players' passwords and tokens in clear; "
        "warned at start); the upstream link still uses the upstream's key if it has one",
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    p.add_argument(
        "--log-format",
        default=os.environ.get("CROSSROADS_LOG_FORMAT", "text"),
        choices=LOG_FORMATS,
        help="text, or json: one object per line (env CROSSROADS_LOG_FORMAT; default: text)",
    )
    p.add_argument(
        "--metrics-bind",
        default=os.environ.get("CROSSROADS_METRICS_BIND") or None,
        metavar="HOST:PORT",
        help="serve Prometheus /metrics here, on a private interface; PORT alone: loopback "
        "(env CROSSROADS_METRICS_BIND; default: off)",
    )
    return p


def upstream_key_endpoint(args: argparse.Namespace) -> str | None:
    """Where the upstream announces its key: the port below its actions port (a front's 7300
    beside 7301, a relay's 7310 beside 7311), which is two below its updates port."""
    if args.upstream_key_endpoint:
        return args.upstream_key_endpoint
    if args.actions_upstream:
        return key_endpoint_for(args.actions_upstream)
    below_updates = key_endpoint_for(args.upstream)
    return None if below_updates is None else key_endpoint_for(below_updates)


def learn_upstream_key(args: argparse.Namespace) -> bytes | None:
    """The upstream's key as a player's client learns it (gameserver/known_hosts.py): given,
    else pinned, else announced and pinned; raises ServerKeyChanged or KeysError."""
    pinned_as = args.actions_upstream or args.upstream
    key = server_key(
        pinned_as,
        given=args.upstream_key,
        known_hosts=KnownHosts(args.known_hosts or known_hosts_path()),
        key_endpoint=upstream_key_endpoint(args),
        on_first_use=lambda k: log.warning("trusting %s's key %s (first use)", pinned_as, k),
    )
    if key is None:
        log.warning(
            "the upstream %s announces no key: its links are CLEARTEXT (give --upstream-key "
            "for a secure front whose announcement is unreachable)",
            pinned_as,
        )
    return key


def own_key(args: argparse.Namespace) -> KeyPair | None:
    """The region's key pair: --key, else relay.key_secret in the keys dir (made on first run);
    None with --insecure-players."""
    if args.insecure_players:
        log.warning(
            "--insecure-players: the region's ports speak CLEARTEXT; anyone in the path reads "
            "players' passwords and session tokens"
        )
        return None
    if args.bind.startswith(MULTICAST_SCHEMES):
        log.warning(
            "the region is served over multicast, which has no CURVE: its events travel in "
            "clear on the LAN, and so do its actions (--actions-bind) unless the players use "
            "the front's ports"
        )
        return None
    if args.key is not None:
        return load_pair(args.key)
    keys_dir = args.keys_dir or default_keys_dir()
    pair, created = ensure_pair(keys_dir, RELAY)
    if created:  # told the operator on stdout, as `crossroads serve` tells its own
        print(f"created {secret_file(keys_dir, RELAY)}", flush=True)
    return pair


async def serve(args: argparse.Namespace, prog: str = "crossroads relay") -> int:
    try:
        upstream_key = await asyncio.to_thread(learn_upstream_key, args)
        key = own_key(args)
    except (KeysError, ServerKeyChanged) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    try:
        relay = Relay(
            args.upstream,
            args.bind,
            actions_upstream=args.actions_upstream,
            actions_bind=args.actions_bind,
            stats_bind=args.stats_bind,
            stats_interval=args.stats_interval,
            hwm=args.hwm,
            history=args.history,
            health_file=args.health_file,
            multicast_rate=args.multicast_rate,
            multicast_hops=args.multicast_hops,
            upstream_key=upstream_key,
            key=key,
            max_subscriptions=args.max_subscriptions,
        )
    except (ValueError, engine.ZMQError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    announcer = None
    if key is not None:
        key_bind = args.key_bind or (
            key_bind_for(args.actions_bind) if args.actions_bind else DEFAULT_KEY_BIND
        )
        try:
            announcer = KeyAnnouncer(relay.context, key_bind, key.public)
        except engine.ZMQError as exc:
            relay.close()
            print(f"{prog}: cannot bind --key-bind {key_bind}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        metrics = await start_metrics(
            args.metrics_bind, lambda: relay_registry(relay, logs.process_id())
        )
    except MetricsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        if announcer is not None:
            announcer.close()
        relay.close(linger=0)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The resolved endpoints, one per line: scripts and tests read them.
    print(f"updates {relay.endpoint}")
    if relay.actions_endpoint:
        print(f"actions {relay.actions_endpoint}")
    if relay.stats_endpoint:
        print(f"stats {relay.stats_endpoint}")
    if announcer is not None and key is not None:
        print(f"key {announcer.endpoint} {key.public.decode()}")
    if metrics is not None:
        print(f"metrics {metrics.url}")
    print("ready", flush=True)
    announcing = None if announcer is None else asyncio.create_task(announcer.serve())
    try:
        await relay.run(stop)
    finally:
        if announcing is not None and announcer is not None:
            announcing.cancel()
            announcer.close()
        if metrics is not None:
            await metrics.close()
        relay.close()
    return 0


def first_endpoint_problem(args: argparse.Namespace) -> str | None:
    """The first of the relay's endpoint and address options that is not one, said in one
    line; None if all are."""
    options = (
        ("--upstream", args.upstream, False),
        ("--bind", args.bind, True),
        ("--actions-upstream", args.actions_upstream, False),
        ("--actions-bind", args.actions_bind, True),
        ("--stats-bind", args.stats_bind, True),
        ("--key-bind", args.key_bind, True),
        ("--upstream-key-endpoint", args.upstream_key_endpoint, False),
    )
    for flag, value, binding in options:
        if value is not None and (problem := endpoint_problem(value, binding=binding)):
            return f"{flag} {problem}"
    if args.metrics_bind:
        try:
            host_port(args.metrics_bind)
        except ValueError as exc:
            return f"--metrics-bind {exc}"
    return None


def main(argv: list[str] | None = None, prog: str = "crossroads relay") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.log_format not in LOG_FORMATS:  # a default from the environment skips `choices`
        print(f"{prog}: --log-format must be one of {', '.join(LOG_FORMATS)}", file=sys.stderr)
        return 2
    logs.setup(args.log_level, "relay", args.log_format)
    if (problem := first_endpoint_problem(args)) is not None:
        # Before anything is learnt, made or bound: a typo must not leave a key file behind.
        print(f"{prog}: {problem}", file=sys.stderr)
        return 2
    if (args.actions_upstream is None) != (args.actions_bind is None):
        print(f"{prog}: --actions-upstream and --actions-bind go together", file=sys.stderr)
        return 2
    if args.multicast_rate <= 0 or not 0 < args.multicast_hops < 256:
        print(f"{prog}: --multicast-rate must be positive, --multicast-hops 1-255", file=sys.stderr)
        return 2
    if args.max_subscriptions < 1:
        print(f"{prog}: --max-subscriptions must be at least 1", file=sys.stderr)
        return 2
    if args.history and args.actions_bind is None:
        print(f"{prog}: --history answers catch-ups, so it needs --actions-bind", file=sys.stderr)
        return 2
    return asyncio.run(serve(args, prog))


if __name__ == "__main__":
    sys.exit(main())
