"""`crossroads admin`: the operator's commands.

* ``grant NAME [--revoke]`` writes the admin role straight into the store: whoever can reach the
  store runs the game, so this needs the store URL and nothing else.
* ``status`` asks the front (a ping: workers, queue, replies; twice, for the rate), the store
  (players online, maintenance) and any relays (their stats endpoints).
* ``announce``, ``kick``, ``ban``, ``unban`` and ``maintenance`` go through the game's own
  authenticated channel: the shell logs in as an admin account (``--as NAME``; the password from
  ``CROSSROADS_ADMIN_PASSWORD`` or a prompt, never the command line), runs the admin command in
  the game, prints its answer and quits. The server checks the role on every command, so a
  player who is no admin gets "Only admins may use ..." whatever tool they use.

Every failure is one line on stderr and a non-zero exit: 1 refused or unreachable, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
import urllib.request
from typing import Any

from client.session import GameSession, RequestRefused, ServerUnavailable, SessionError
from engine.patterns.lazy_pirate import RequestFailed
from gameserver import settings as cfg
from gameserver.cli_numbers import positive
from gameserver.known_hosts import KeysError, ServerKeyChanged, add_key_options, key_from_options
from gameserver.moderation import ModerationError, grant, summary
from gameserver.ping import ping
from gameserver.store import StoreError, open_store
from relay.stats import StatsError
from relay.stats import fetch as relay_stats

PASSWORD_ENV = "CROSSROADS_ADMIN_PASSWORD"
NAME_ENV = "CROSSROADS_ADMIN_NAME"
#: Seconds one in-game request may take, retries included, before the shell gives up.
DEFAULT_TIMEOUT_S = 5.0
#: Most of a worker's /metrics text read (it is a few kilobytes).
MAX_METRICS_BYTES = 1 << 20
#: The interval between the two pings ``status`` takes to compute jobs per second.
DEFAULT_INTERVAL_S = 1.0


class AdminError(Exception):
    """What went wrong, in one line for the operator."""


# -- the parser ------------------------------------------------------------------------------------


def _store_option(parser: argparse.ArgumentParser) -> None:
    cfg.add_options(parser, {"store": "--store"})


def _game_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="admin",
        default=os.environ.get(NAME_ENV),
        metavar="NAME",
        help=f"the admin account to act as (env {NAME_ENV}); its password comes from "
        f"{PASSWORD_ENV} or a prompt",
    )
    cfg.add_options(parser, {"actions": "--server", "updates": "--updates"})
    add_key_options(parser, "--server")
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up on the server after this long ({DEFAULT_TIMEOUT_S:g})",
    )


#: `crossroads admin status`, also `crossroads status`.
STATUS_DESCRIPTION = "Players online, workers and their jobs per second, queue depth, relays."


def _status_options(p: argparse.ArgumentParser) -> None:
    cfg.add_options(p, {"actions": "--server"})
    add_key_options(p, "--server")
    _store_option(p)
    p.add_argument(
        "--relay",
        action="append",
        default=[],
        metavar="ENDPOINT",
        help="a relay's --stats-bind endpoint (repeatable)",
    )
    p.add_argument(
        "--worker-metrics",
        action="append",
        default=[],
        metavar="URL",
        help="a worker's /metrics URL (repeatable): that worker's id and jobs/s",
    )
    p.add_argument(
        "--interval",
        type=positive(float, zero=True),
        default=DEFAULT_INTERVAL_S,
        metavar="SECONDS",
        help=f"time between the two pings that give jobs/s ({DEFAULT_INTERVAL_S:g})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the game: grant admins, see its status, and (as an admin) announce, "
        "kick, ban and close it for maintenance.",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = sub.add_parser("grant", help="make an account an admin (writes the store)")
    p.description = "Give an existing account the admin role, or take it away (--revoke)."
    p.add_argument("name", help="the account (it must have logged in once)")
    p.add_argument("--revoke", action="store_true", help="take the admin role away")
    _store_option(p)

    p = sub.add_parser("status", help="players, workers, queue, relays")
    p.description = STATUS_DESCRIPTION
    _status_options(p)

    p = sub.add_parser("announce", help="tell every player something")
    p.description = "Broadcast an announcement to everyone in the game."
    p.add_argument("message", nargs="+", help="the announcement")
    _game_options(p)

    for action, text in (("kick", "end a player's session now"), ("ban", "keep a player out")):
        p = sub.add_parser(action, help=text)
        p.description = text[0].upper() + text[1:] + " (an admin command, run in the game)."
        p.add_argument("name", help="the player")
        p.add_argument("reason", nargs="*", help="why (shown to the player)")
        _game_options(p)

    p = sub.add_parser("unban", help="let a banned player in again")
    p.description = "Lift a player's ban."
    p.add_argument("name", help="the player")
    _game_options(p)

    p = sub.add_parser("maintenance", help="close the game to all but admins, or open it")
    p.description = (
        "on: only admins may log in, players online are sent away with the time to come back; "
        "off: open again; without a state: say whether it is on."
    )
    p.add_argument("state", nargs="?", choices=("on", "off"), help="on or off")
    p.add_argument("--until", help="when the game opens again, as players should read it")
    p.add_argument("--message", default="", help="a word on why")
    _game_options(p)
    return parser


# -- grant and status ------------------------------------------------------------------------------


def do_grant(args: argparse.Namespace) -> str:
    settings = cfg.load(args)
    with open_store(settings.store) as store:
        name = grant(store, args.name, admin=not args.revoke)
    return f"{name} is no longer an admin." if args.revoke else f"{name} is now an admin."


def worker_reading(url: str) -> tuple[str, float]:
    """(the worker's id, requests it handled so far) from its /metrics text."""
    try:
        with urllib.request.urlopen(url, timeout=DEFAULT_TIMEOUT_S) as answer:
            text = answer.read(MAX_METRICS_BYTES).decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        raise AdminError(f"cannot read {url}: {exc}") from None
    handled, worker_id = 0.0, "?"
    for line in text.splitlines():
        if line.startswith("crossroads_actions_total{"):
            handled += float(line.rpartition(" ")[2])
        elif line.startswith("crossroads_process_info{"):
            worker_id = line.partition('id="')[2].partition('"')[0] or "?"
    return worker_id, handled


def front_key(args: argparse.Namespace, actions: str) -> bytes | None:
    """The front's key, learnt and pinned as `crossroads play` does (gameserver/known_hosts.py)."""
    try:
        return key_from_options(args, actions)
    except (KeysError, ServerKeyChanged) as exc:
        raise AdminError(str(exc)) from None


def collect_status(args: argparse.Namespace) -> dict[str, Any]:
    settings = cfg.load(args)
    key = front_key(args, settings.actions)
    try:
        first = ping(settings.actions, server_key=key)
        before = {url: worker_reading(url) for url in args.worker_metrics}
        start = time.monotonic()
        time.sleep(args.interval)  # the rates need two readings some time apart
        second = ping(settings.actions, server_key=key)
        after = {url: worker_reading(url) for url in args.worker_metrics}
        elapsed = max(time.monotonic() - start, 1e-3)
    except RequestFailed:
        raise AdminError(f"the front at {settings.actions} does not answer") from None
    replies = int(second.get("replies", 0)) - int(first.get("replies", 0))  # type: ignore[call-overload]
    workers = int(second.get("workers", 0))  # type: ignore[call-overload]
    status: dict[str, Any] = {
        "front": settings.actions,
        "workers": workers,
        "workers_idle": second.get("idle"),
        "queue_depth": second.get("pending"),
        "draining": second.get("draining"),
        "jobs_per_s": round(replies / elapsed, 1),
        "jobs_per_s_per_worker": round(replies / elapsed / workers, 1) if workers else 0.0,
        "refused": second.get("refused"),
        "rate_limited": second.get("rate_limited"),
        "busy": second.get("busy"),
    }
    status["worker_rates"] = {
        after[url][0]: round((after[url][1] - before[url][1]) / elapsed, 1) for url in after
    }
    with open_store(settings.store) as store:
        status.update(summary(store))
    relays = {}
    for endpoint in args.relay:
        try:
            stats = relay_stats(endpoint)
            relays[endpoint] = {
                "upstream_up": stats.get("upstream_up"),
                "subscribers": stats.get("subscribers"),
                "messages_in": stats.get("messages_in"),
            }
        except (TimeoutError, StatsError) as exc:
            relays[endpoint] = {"error": str(exc)}
    status["relays"] = relays
    return status


def format_status(status: dict[str, Any]) -> str:
    closed = status["maintenance"]
    lines = [
        f"front        {status['front']}{'  (draining)' if status['draining'] else ''}",
        f"players      {status['players_online']} online",
        f"workers      {status['workers']} ({status['workers_idle']} idle), "
        f"{status['jobs_per_s']} jobs/s ({status['jobs_per_s_per_worker']} per worker)",
        f"queue        {status['queue_depth']} waiting; refused {status['refused']}, "
        f"rate-limited {status['rate_limited']}, busy {status['busy']}",
        "maintenance  "
        + ("off" if closed is None else f"on until {closed['until']} (by {closed['by']})"),
    ]
    for worker_id, rate in status["worker_rates"].items():
        lines.append(f"worker       {worker_id}: {rate} jobs/s")
    for endpoint, relay in status["relays"].items():
        if "error" in relay:
            lines.append(f"relay        {endpoint}: {relay['error']}")
        else:
            up = "up" if relay["upstream_up"] else "DOWN"
            lines.append(
                f"relay        {endpoint}: upstream {up}, {relay['subscribers']} subscribers, "
                f"{relay['messages_in']} events in"
            )
    return "\n".join(lines)


# -- the in-game admin commands --------------------------------------------------------------------


def game_line(args: argparse.Namespace) -> str:
    """The admin command to run in the game, from the shell's arguments."""
    match args.action:
        case "announce":
            return "announce " + " ".join(args.message)
        case "kick" | "ban":
            return " ".join([args.action, args.name, *args.reason])
        case "unban":
            return f"unban {args.name}"
        case "maintenance":
            if args.state is None:
                return "maintenance"
            if args.state == "off":
                return "maintenance off"
            if not args.until:
                raise AdminError("maintenance on needs --until (when players may come back)")
            return f"maintenance on {args.until} | {args.message}".rstrip(" |")
    raise AssertionError(args.action)


def admin_password() -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise AdminError(f"no password: set {PASSWORD_ENV} (or run it in a terminal)")
    return getpass.getpass("admin password: ")


async def run_in_game(args: argparse.Namespace, line: str) -> tuple[bool, str]:
    """Log in as the admin, run ``line``, quit; (the command's ok, its text)."""
    settings = cfg.load(args)
    if not args.admin:
        raise AdminError(f"which admin account? --as NAME (or {NAME_ENV})")
    password = admin_password()
    key = await asyncio.to_thread(front_key, args, settings.actions)
    session = GameSession(
        settings.actions, settings.updates, timeout=args.timeout, retries=2, server_key=key
    )
    try:
        try:
            # must_exist: a typo in --as must not register a new account with the admin password
            await session.login(args.admin, password, must_exist=True)
        except RequestRefused as exc:
            raise AdminError(f"cannot log in as {args.admin}: {exc}") from None
        reply = await session.act(line)
        if not reply.session_ended:
            await session.act("quit")
        return reply.ok, reply.text
    except ServerUnavailable:
        raise AdminError(f"the server at {settings.actions} does not answer") from None
    except SessionError as exc:
        raise AdminError(str(exc)) from None
    finally:
        await session.close()


def main(argv: list[str], prog: str = "crossroads admin") -> int:
    args = build_parser(prog).parse_args(argv)
    return run(args, label=f"{prog} {args.action}", prog=prog)


def status_main(argv: list[str], prog: str = "crossroads status") -> int:
    """`crossroads status`: `crossroads admin status` under its own name (usage and errors
    name what the operator typed)."""
    parser = argparse.ArgumentParser(prog=prog, description=STATUS_DESCRIPTION)
    _status_options(parser)
    args = parser.parse_args(argv)
    args.action = "status"
    return run(args, label=prog, prog=prog)


def run(args: argparse.Namespace, *, label: str, prog: str) -> int:
    """Carry out one parsed action; errors are one line, starting with ``label``."""
    try:
        if args.action == "grant":
            print(do_grant(args))
            return 0
        if args.action == "status":
            status = collect_status(args)
            print(json.dumps(status, sort_keys=True) if args.json else format_status(status))
            return 0
        line = game_line(args)
        ok, text = asyncio.run(run_in_game(args, line))
    except cfg.SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except (AdminError, ModerationError, StoreError, OSError) as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{label}: interrupted", file=sys.stderr)
        return 1
    if not ok:
        print(f"{label}: {text}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
