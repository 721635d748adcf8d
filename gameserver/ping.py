"""`crossroads ping`: one round trip to the front's action endpoint; exit 0 if it answered.

Meant for health checks (docker-compose, scripts). The front answers the ping itself, with
its worker count, so ``--min-workers 1`` also checks that someone can do the work.
"""

from __future__ import annotations

import argparse
import math
import sys

import engine
from engine.patterns.lazy_pirate import LazyPirateClient, RequestFailed

from . import settings as cfg
from .known_hosts import KeysError, ServerKeyChanged, add_key_options, key_from_options
from .protocol import PING_BODY, Pong, ProtocolError, decode_reply

#: A health check should answer fast or fail: a healthy front replies in milliseconds.
DEFAULT_TIMEOUT_S = 2.0


def ping(
    endpoint: str, timeout: float = DEFAULT_TIMEOUT_S, server_key: bytes | None = None
) -> dict[str, object]:
    """The front's pong (its health counters); raises RequestFailed if there is none.

    `server_key`: the front's CURVE public key, for a front with secure player ports.
    """
    pongs: list[Pong] = []

    def is_pong(body: list[bytes]) -> bool:  # parses the answer, once
        try:
            reply = decode_reply(body[0]) if len(body) == 1 else None
        except ProtocolError:
            return False
        if isinstance(reply, Pong):
            pongs.append(reply)
        return isinstance(reply, Pong)

    context = engine.Context()
    if server_key is not None:
        context.curve_serverkey = server_key
        context.curve_publickey, context.curve_secretkey = engine.curve_keypair()
    try:
        with LazyPirateClient(endpoint, timeout=timeout, retries=0, context=context) as client:
            client.request(PING_BODY, validator=is_pong)
        return pongs[-1].model_dump()
    finally:
        context.destroy(linger=0)


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Check that a front server answers; exit 0 if so, 1 if not."
    )
    # --server as `play`, `status` and `loadtest` name it; --front as the README's deployments
    # and health checks have always written it.
    cfg.add_options(parser, {"actions": ("--server", "--front")})
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the answer (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--min-workers",
        type=int,
        default=0,
        metavar="N",
        help="also fail unless at least N workers are connected (default: 0)",
    )
    add_key_options(parser, "--server")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    return parser


def main(argv: list[str], prog: str = "crossroads ping") -> int:
    args = build_parser(prog).parse_args(argv)
    if not 0 < args.timeout < math.inf:  # not `<= 0`: float() takes "nan", which passes that
        print(f"{prog}: --timeout must be positive", file=sys.stderr)
        return 2
    if args.min_workers < 0:
        print(f"{prog}: --min-workers must not be negative", file=sys.stderr)
        return 2
    try:
        settings = cfg.load(args)
    except cfg.SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    try:
        key = key_from_options(args, settings.actions, timeout=args.timeout)
    except KeysError as exc:
        print(f"{prog}: --server-key: {exc}", file=sys.stderr)
        return 2
    except ServerKeyChanged as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    try:
        pong = ping(settings.actions, args.timeout, key)
    except RequestFailed:
        if not args.quiet:
            print(
                f"{prog}: no answer from {settings.actions} within {args.timeout:g}s",
                file=sys.stderr,
            )
        return 1
    except engine.ZMQError as exc:
        print(f"{prog}: cannot reach {settings.actions}: {exc}", file=sys.stderr)
        return 1
    workers = pong.get("workers", 0)
    if not args.quiet:
        print(f"pong from {settings.actions}: {workers} worker(s), {pong.get('pending')} queued")
    if not isinstance(workers, int) or workers < args.min_workers:
        if not args.quiet:
            print(f"{prog}: fewer than {args.min_workers} workers connected", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
