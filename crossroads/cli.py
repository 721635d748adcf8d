"""The `crossroads` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys

#: A module an optional extra provides -> that extra (`pip install 'crossroads[EXTRA]'`).
EXTRAS = {
    "prompt_toolkit": "client",
    "yaml": "compose",
    "locust": "loadtest",
    "redis": "redis",
    "prometheus_client": "metrics",
}

#: Subcommands whose entry point is not the module's ``main`` (`crossroads status` is
#: `crossroads admin status` under its own name).
ENTRY_POINTS = {"status": "status_main"}

# name -> (module, help). Modules are imported only when their subcommand runs, so
# `crossroads --help` stays fast and a missing optional dependency only affects its command.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("loadtest.bench", "measure the engine against pyzmq (throughput and latency)"),
    "loadtest": ("loadtest.runner", "load-test a server with Locust (simulated players)"),
    "serve": ("gameserver.serve", "run the game: front server and local worker processes"),
    "worker": ("gameserver.worker", "run one stateless game worker for a front server"),
    "keys": ("gameserver.keys_cli", "make and show the cluster's CURVE keys (workers, relays)"),
    "ping": ("gameserver.ping", "check that a front server answers (exit 0/1)"),
    "health": ("gameserver.health", "cheap health check of a front, relay or liveness file"),
    "play": ("client.terminal", "play from the terminal (or --script FILE, or lines on stdin)"),
    "relay": ("relay.cli", "run a regional relay: forwards events and actions for one region"),
    "relay-stats": ("relay.stats", "print a running relay's counters (--json for machines)"),
    "admin": ("crossroads.admin", "operate the game: grant admins, status, announce, kick, ban"),
    "status": ("crossroads.admin", "the game at a glance: players, workers, queue, relays"),
    "compose-local": (
        "crossroads.compose_local",
        "run a docker-compose file's services as local processes (no Docker needed)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossroads",
        description="Crossroads: a multiplayer game server on a pure-Python ZeroMQ engine.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, add_help=False)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, _ = parser.parse_known_args(argv[:1])
    if args.command is None:
        parser.print_help()
        return 0 if not argv else 2
    try:
        module = importlib.import_module(args._module)
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"crossroads {args.command} needs the {extra!r} extra: "
            f"pip install 'crossroads[{extra}]'",
            file=sys.stderr,
        )
        return 1
    entry = getattr(module, ENTRY_POINTS.get(args.command, "main"))
    return int(entry(argv[1:], prog=f"crossroads {args.command}") or 0)


if __name__ == "__main__":
    sys.exit(main())
