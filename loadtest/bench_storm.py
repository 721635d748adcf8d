"""`crossroads bench storm`: players reconnecting all at once, against the listen backlog.

A publisher (XPUB, verbose: each connection's subscription comes up as one message) binds on
loopback; a child process (pyzmq) then connects ``--connections`` SUB connections at once, each
from its own loopback source address. The publisher times from the moment it asks the child to
connect until the last subscription arrived; the engine's also records the longest stall of
its event loop meanwhile (what players already connected would feel). Connections past the
listen backlog lose their SYN and retry after 1 s, then 3 s: the rows show that cost with
BACKLOG 100 (libzmq's default and the engine's) and with the front's LISTEN_BACKLOG, for the
engine's asyncio face (the front's) and for libzmq (pyzmq) as the reference, interleaved, each
figure the median of ``--rounds`` rounds. Each row also gives the SYNs the kernel dropped
from a full accept queue meanwhile (ListenOverflows in /proc/net/netstat, machine-wide).
``--curve`` makes every connection a CURVE session (the publisher a CURVE server, as the
front's player ports are): then the publisher's handshakes are most of the time.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import engine
from engine.security.keys import sodium
from gameserver.cli_numbers import positive
from loadtest.bench_child import ask_child_to_stop, start_child
from loadtest.bench_subscribers import have_pyzmq

#: libzmq's default backlog, which the engine keeps.
DEFAULT_BACKLOG = 100
#: The longest a round may take before it is reported as incomplete.
ROUND_TIMEOUT_S = 30.0
#: Descriptors kept free besides the connections (the loop, pipes, the libraries' own).
SPARE_FDS = 200


@dataclass
class Row:
    publisher: str
    backlog: int
    seconds: list[float] = field(default_factory=list)
    dropped_syns: list[int] = field(default_factory=list)
    stalls_ms: list[float] = field(default_factory=list)
    incomplete: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gameserver.limits import LISTEN_BACKLOG

    parser.add_argument(
        "--connections",
        type=positive(int),
        default=3000,
        metavar="N",
        help="connections made at once in each round (default: 3000)",
    )
    parser.add_argument(
        "--backlog",
        type=positive(int),
        default=LISTEN_BACKLOG,
        metavar="N",
        help=f"the larger backlog, beside libzmq's {DEFAULT_BACKLOG} (default: the front's, "
        f"{LISTEN_BACKLOG})",
    )
    parser.add_argument(
        "--rounds", type=positive(int), default=3, help="rounds per row; the median is shown (3)"
    )
    parser.add_argument(
        "--curve", action="store_true", help="CURVE connections (the front's player ports')"
    )


def run_storm(args: argparse.Namespace) -> int:
    if not have_pyzmq():
        print(
            "bench storm needs pyzmq (the connecting side is libzmq): pip install pyzmq",
            file=sys.stderr,
        )
        return 2
    if args.curve:
        try:
            sodium()  # the engine's side of CURVE: told now, not as a traceback in round 1
        except engine.ZMQError as exc:
            print(f"bench storm --curve: {exc}", file=sys.stderr)
            return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.connections + SPARE_FDS
    if needed > hard:
        print(
            f"bench storm: {args.connections} connections need {needed} descriptors per "
            f"process, and this one may open {hard} at most (ulimit -Hn)",
            file=sys.stderr,
        )
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))  # the child inherits
    rows = [
        Row(publisher, backlog)
        for backlog in (DEFAULT_BACKLOG, args.backlog)
        for publisher in ("engine (asyncio)", "libzmq (pyzmq)")
    ]
    import zmq

    args.server_keys = zmq.curve_keypair() if args.curve else None  # (public, secret)
    process, conn = start_child(_child, (), "connecting")
    try:
        step, steps = 0, args.rounds * len(rows)
        for n in range(1, args.rounds + 1):
            for row in rows:
                step += 1
                print(
                    f"[{step}/{steps}] {row.publisher}, backlog {row.backlog}, round {n}: ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                overflows = listen_overflows()
                if row.publisher.startswith("engine"):
                    got, took, stall = asyncio.run(_engine_round(row.backlog, args, conn))
                else:
                    got, took, stall = _pyzmq_round(row.backlog, args, conn)
                row.dropped_syns.append(listen_overflows() - overflows)
                if got < args.connections:
                    row.incomplete += 1
                row.seconds.append(took)
                if stall is not None:
                    row.stalls_ms.append(stall * 1000)
                print(f"{got}/{args.connections} in {took:.2f} s", file=sys.stderr, flush=True)
    finally:
        ask_child_to_stop(process, conn, 10)
    print(render(rows, args))
    return 0


def render(rows: list[Row], args: argparse.Namespace) -> str:
    median = {(r.publisher, r.backlog): statistics.median(r.seconds) for r in rows}
    lines = [
        f"{args.connections} {'CURVE ' if args.curve else ''}connections at once, median of "
        f"{args.rounds} round(s)",
        "",
        "| publisher | backlog | all in | SYNs dropped | longest loop stall "
        "| against libzmq, same backlog |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        stall = f"{statistics.median(r.stalls_ms):.0f} ms" if r.stalls_ms else "-"
        reference = median[("libzmq (pyzmq)", r.backlog)]
        ratio = (
            "-"
            if r.publisher.startswith("libzmq")
            else f"{median[r.publisher, r.backlog] / reference:.2f}x"
        )
        cut = (
            f" ({r.incomplete} round(s) incomplete after {ROUND_TIMEOUT_S:g} s)"
            if r.incomplete
            else ""
        )
        lines.append(
            f"| {r.publisher} | {r.backlog} | {median[r.publisher, r.backlog]:.2f} s{cut} "
            f"| {statistics.median(r.dropped_syns):g} | {stall} | {ratio} |"
        )
    for publisher in ("engine (asyncio)", "libzmq (pyzmq)"):
        small, large = median[publisher, DEFAULT_BACKLOG], median[publisher, args.backlog]
        lines.append(
            f"\n{publisher}: backlog {args.backlog} against {DEFAULT_BACKLOG}: "
            f"{large:.2f} s against {small:.2f} s (the ratio {large / small:.2f}x)"
        )
    return "\n".join(lines)


# -- the two publishers -----------------------------------------------------------------------


async def _engine_round(
    backlog: int, args: argparse.Namespace, conn: Connection
) -> tuple[int, float, float]:
    import engine.asyncio as azmq

    ctx = azmq.Context()
    pub = _bound_publisher(engine, ctx, backlog, args)
    stalls: list[float] = []
    running = True

    async def watch_the_loop() -> None:
        while running:
            before = time.monotonic()
            await asyncio.sleep(0.001)
            stalls.append(time.monotonic() - before - 0.001)

    watcher = asyncio.create_task(watch_the_loop())
    got = 0
    started, deadline = _start_round(engine, pub, args, conn)
    try:
        while got < args.connections:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(pub.recv(), left)
            except TimeoutError:
                break
            got += 1
        took = time.monotonic() - started
    finally:
        running = False
        await watcher
        await asyncio.to_thread(_close_child_side, conn)
        pub.close(linger=0)
        ctx.term()
    return got, took, max(stalls, default=0.0)


def _pyzmq_round(
    backlog: int, args: argparse.Namespace, conn: Connection
) -> tuple[int, float, None]:
    import zmq

    ctx = zmq.Context()
    pub = _bound_publisher(zmq, ctx, backlog, args)
    got = 0
    started, deadline = _start_round(zmq, pub, args, conn)
    try:
        while got < args.connections:
            left = deadline - time.monotonic()
            if left <= 0 or not pub.poll(int(left * 1000) + 1):
                break
            pub.recv()
            got += 1
        took = time.monotonic() - started
    finally:
        _close_child_side(conn)
        pub.close(linger=0)
        ctx.term()
    return got, took, None


def listen_overflows() -> int:
    """SYNs (and final ACKs) the kernel dropped so far because an accept queue was full."""
    with open("/proc/net/netstat") as netstat:
        lines = netstat.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=False))["ListenOverflows"])
    return 0


def _bound_publisher(zmq: Any, ctx: Any, backlog: int, args: argparse.Namespace) -> Any:
    """An XPUB of `zmq` (the engine or pyzmq: one API) that hands up every subscription."""
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.BACKLOG, backlog)
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)
    if args.server_keys is not None:
        pub.curve_server = 1
        pub.curve_secretkey = args.server_keys[1]
    pub.bind("tcp://127.0.0.1:*")
    return pub


def _start_round(
    zmq: Any, pub: Any, args: argparse.Namespace, conn: Connection
) -> tuple[float, float]:
    """Ask the child to connect to `pub` as many times as asked: (start, deadline)."""
    server_key = None if args.server_keys is None else args.server_keys[0]
    started = time.monotonic()
    conn.send(("connect", pub.getsockopt_string(zmq.LAST_ENDPOINT), args.connections, server_key))
    return started, started + ROUND_TIMEOUT_S


def _close_child_side(conn: Connection) -> None:
    conn.send(("close",))
    conn.recv()  # ("closed",): its connections are gone before the next round binds


# -- the connecting child -----------------------------------------------------------------------


def _child(conn: Connection) -> None:
    import zmq

    ctx = zmq.Context()
    ctx.setsockopt(zmq.MAX_SOCKETS, 16)
    conn.send(("ready",))
    sub: Any = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        if message[0] == "connect":
            _, endpoint, count, server_key = message
            port = endpoint.rsplit(":", 1)[1]
            sub = ctx.socket(zmq.SUB)
            if server_key is not None:  # one client pair for all: the publisher admits any
                sub.curve_serverkey = server_key
                sub.curve_publickey, sub.curve_secretkey = zmq.curve_keypair()
            sub.setsockopt(zmq.SUBSCRIBE, b"storm")
            for i in range(count):
                # Its own source address each: thousands of rounds' connections from one
                # address would run out of ephemeral ports (and TIME_WAIT keeps them a minute).
                sub.connect(f"tcp://127.0.{i // 250 + 1}.{i % 250 + 1}:0;127.0.0.1:{port}")
        elif message[0] == "close":
            if sub is not None:
                sub.close(linger=0)
                sub = None
            conn.send(("closed",))
        else:  # ("stop",)
            break
    ctx.term()
