"""Majordomo (ZeroMQ RFC 7, MDP/0.1) with MMI (RFC 8): the public API and a command line.

    python -m engine.patterns.majordomo broker --bind tcp://*:5555
    python -m engine.patterns.majordomo echo-worker --broker tcp://127.0.0.1:5555 --service echo
    python -m engine.patterns.majordomo request --broker tcp://127.0.0.1:5555 --service echo hi

The broker prints its bound endpoint on the first line of stdout (handy with port 0).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .demo_cli import check_connect, positive, startup, stop_on_signals
from .majordomo_broker import AsyncMajordomoBroker, BrokerCore, MajordomoBroker
from .majordomo_client import AsyncMajordomoClient, MajordomoClient
from .majordomo_common import (
    CLIENT_HEADER,
    CLIENT_RETRIES,
    CLIENT_TIMEOUT_MS,
    DISCONNECT,
    HEARTBEAT,
    HEARTBEAT_INTERVAL_MS,
    HEARTBEAT_LIVENESS,
    MMI_SERVICE,
    READY,
    RECONNECT_DELAY_MS,
    REPLY,
    REQUEST,
    REQUEST_TTL_MS,
    WORKER_HEADER,
    Frames,
    RequestTimeout,
)
from .majordomo_worker import AsyncMajordomoWorker, MajordomoWorker, WorkerCore, WorkerRequest

__all__ = [
    "CLIENT_HEADER",
    "DISCONNECT",
    "HEARTBEAT",
    "MMI_SERVICE",
    "READY",
    "REPLY",
    "REQUEST",
    "WORKER_HEADER",
    "AsyncMajordomoBroker",
    "AsyncMajordomoClient",
    "AsyncMajordomoWorker",
    "BrokerCore",
    "MajordomoBroker",
    "MajordomoClient",
    "MajordomoWorker",
    "RequestTimeout",
    "WorkerCore",
    "WorkerRequest",
    "main",
]


#: The command line's name, in argparse's usage lines and in start-up errors.
PROG = "python -m engine.patterns.majordomo"


def _run_broker(args: argparse.Namespace) -> int:
    # Start-up only, here and below: an error while serving keeps its traceback (demo_cli).
    with startup(PROG, args.bind):
        broker = MajordomoBroker(
            args.bind,
            heartbeat_ms=args.heartbeat_ms,
            liveness=args.liveness,
            request_ttl_ms=args.request_ttl_ms,
        )
    stop_on_signals(broker.stop)
    print(broker.endpoint, flush=True)
    try:
        broker.run()
    finally:
        broker.close()
    return 0


def _run_echo_worker(args: argparse.Namespace) -> int:
    with startup(PROG, args.broker):
        worker = MajordomoWorker(  # connects here, and a bad service name is refused here
            args.broker,
            args.service,
            heartbeat_ms=args.heartbeat_ms,
            liveness=args.liveness,
            reconnect_ms=args.reconnect_ms,
        )
    stop_on_signals(worker.stop)
    tag = [args.tag.encode()] if args.tag else []

    def echo(body: Frames) -> Frames:
        return tag + body

    try:
        worker.serve(echo)
    finally:
        worker.close()
    return 0


def _run_request(args: argparse.Namespace) -> int:
    with startup(PROG, args.broker):
        check_connect(args.broker)  # the client connects only in request()
    with MajordomoClient(args.broker, timeout_ms=args.timeout_ms, retries=args.retries) as client:
        try:
            reply = client.request(args.service, *[b.encode() for b in args.body])
        except RequestTimeout as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
    for frame in reply:
        print(frame.decode(errors="backslashreplace"))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Majordomo (ZeroMQ RFC 7 MDP/0.1, RFC 8 MMI) broker, echo worker and client.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    commands = parser.add_subparsers(dest="command", required=True)

    def heartbeat_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--heartbeat-ms",
            type=positive(int),
            default=HEARTBEAT_INTERVAL_MS,
            help="heartbeat interval; must match between broker and workers (default %(default)s)",
        )
        p.add_argument(
            "--liveness",
            type=positive(int),
            default=HEARTBEAT_LIVENESS,
            help="missed heartbeats before a peer counts as dead (default %(default)s)",
        )

    broker = commands.add_parser("broker", parents=[common], help="run a broker")
    broker.add_argument("--bind", default="tcp://*:5555", help="endpoint (default %(default)s)")
    heartbeat_flags(broker)
    broker.add_argument(
        "--request-ttl-ms",
        type=positive(int),
        default=REQUEST_TTL_MS,
        help="drop queued requests older than this (default %(default)s)",
    )
    broker.set_defaults(run=_run_broker)

    worker = commands.add_parser(
        "echo-worker", parents=[common], help="run a worker that echoes requests"
    )
    worker.add_argument("--broker", required=True, help="broker endpoint to connect to")
    worker.add_argument("--service", required=True, help="service name to register")
    worker.add_argument("--tag", help="prepend this frame to every reply (to tell workers apart)")
    heartbeat_flags(worker)
    worker.add_argument(
        "--reconnect-ms",
        type=positive(int, zero=True),
        default=RECONNECT_DELAY_MS,
        help="pause before reconnecting to a lost broker (default %(default)s)",
    )
    worker.set_defaults(run=_run_echo_worker)

    request = commands.add_parser(
        "request", parents=[common], help="send one request and print the reply frames"
    )
    request.add_argument("--broker", required=True, help="broker endpoint to connect to")
    request.add_argument("--service", required=True, help="service name (e.g. mmi.service)")
    request.add_argument("--timeout-ms", type=positive(int), default=CLIENT_TIMEOUT_MS)
    request.add_argument(
        "--retries", type=positive(int, zero=True), default=CLIENT_RETRIES, help="extra attempts"
    )
    request.add_argument("body", nargs="+", help="request frames (UTF-8)")
    request.set_defaults(run=_run_request)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
