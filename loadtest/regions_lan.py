"""`python -m loadtest.regions lan`: N players on a LAN behind a relay, over tcp and over epgm.

Three network namespaces: ``dc`` runs the publisher, ``nz`` the region's relay (the shaped long
link between them is the one `regions` measures), and ``lan`` the region's N players, all on one
veth LAN with the relay. The relay serves them either over tcp (one connection, hence one copy of
every event, per player) or over epgm multicast (`crossroads relay --bind epgm://...`: one copy
for the whole LAN). The kernel counts what the relay sent on the LAN (its veth's TX counters)
while the same event load goes out; the players time every event.

The point of multicast: the relay's LAN bytes stay the same for any N, against N times as much
over tcp.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from . import netns
from .regions import (
    Link,
    await_report,
    measure,
    probe_until_ready,
    spawn_subscribers,
    start_publisher,
    start_relay,
)

#: The LAN's multicast group and port (the relay's default port, 7312).
LAN_GROUP, LAN_PORT = "239.192.7.1", 7312
TRANSPORTS = ("tcp", "epgm")


def run_lan(
    link: Link, lan: netns.VethPair, args: argparse.Namespace, transport: str, players: int
) -> dict[str, object]:
    """One load to `players` players over `transport`; what the relay sent on the LAN."""
    relay_ip, players_ip = lan.address_a, lan.address_b
    try:
        pub, upstream = start_publisher(link, f"{transport}{players}-pub")
        if transport == "tcp":
            target = start_relay(link, upstream, f"tcp://{relay_ip}:0")
        else:
            start_relay(link, upstream, f"epgm://{relay_ip};{LAN_GROUP}:{LAN_PORT}")
            target = f"epgm://{players_ip};{LAN_GROUP}:{LAN_PORT}"  # joined on the players' side
        subs = spawn_subscribers(
            link, lan.ns_b, f"{transport}{players}-subs", target, players, args
        )
        probe_until_ready(pub, subs)
        bytes0, packets0 = lan.tx_counters(lan.ns_a, lan.dev_a)
        pub.send(f"go {args.messages} {args.size} {args.msg_rate}")
        report = await_report(subs, args)
        bytes1, packets1 = lan.tx_counters(lan.ns_a, lan.dev_a)
    finally:
        link.kill_all()
    return {
        "transport": transport,
        "players": players,
        "lan_bytes": bytes1 - bytes0,
        "lan_packets": packets1 - packets0,
        **report,
    }


def table(rows: list[dict[str, object]]) -> str:
    cols = (
        "transport",
        "players",
        "lan_bytes",
        "lan_packets",
        "received",
        "expected",
        "p50_ms",
        "p99_ms",
    )
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "-")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def growth(rows: list[dict[str, object]]) -> dict[str, float]:
    """Per transport: the relay's LAN bytes with the most players over those with the fewest."""
    out = {}
    for transport in TRANSPORTS:
        mine = sorted((r for r in rows if r["transport"] == transport), key=lambda r: r["players"])  # type: ignore[arg-type, return-value]
        if len(mine) >= 2 and mine[0]["lan_bytes"]:
            out[transport] = round(mine[-1]["lan_bytes"] / mine[0]["lan_bytes"], 2)  # type: ignore[operator]
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.regions lan",
        description="Bytes a relay sends on its region's LAN to N players, over tcp and over "
        "epgm multicast, in three network namespaces (root).",
    )
    p.add_argument(
        "--players",
        type=int,
        nargs="+",
        default=[1, 10, 50],
        help="player counts to measure (1 10 50)",
    )
    p.add_argument("--messages", type=int, default=100, help="events published (100)")
    p.add_argument("--size", type=int, default=100, help="event payload bytes (100)")
    p.add_argument("--msg-rate", type=float, default=10.0, help="events per second (10)")
    p.add_argument("--delay-ms", type=float, default=150.0, help="dc<->nz delay each way (150)")
    p.add_argument("--rate-mbit", type=float, default=2.0, help="dc<->nz rate each way (2)")
    p.add_argument("--tag", default=str(os.getpid()), help="namespace suffix (the PID)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON object")
    return p


def lan_demo(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not re.fullmatch(r"[a-z0-9]{1,8}", args.tag):
        print("regions lan: --tag must be 1-8 lowercase letters or digits", file=sys.stderr)
        return 2
    if any(n < 1 for n in args.players):
        print("regions lan: --players must be at least 1", file=sys.stderr)
        return 2
    reason = netns.unavailable()
    if reason:
        print(f"regions lan: {reason}; run it with sudo", file=sys.stderr)
        return 2

    def every_run(tmp: Path) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        link = Link(args.tag, args.delay_ms, args.rate_mbit, tmp)
        lan = None
        try:
            lan = netns.VethPair(tag=f"l{args.tag}", existing_a=link.nz).up()
            for players in args.players:
                for transport in TRANSPORTS:
                    rows.append(run_lan(link, lan, args, transport, players))
                    if not args.json:
                        print(f"measured {transport} with {players} player(s)", flush=True)
            return rows
        finally:
            if lan is not None:
                lan.down()
            link.close()

    code, rows = measure("regions lan", every_run)
    if rows is None:
        return code
    result = {"rows": rows, "growth": growth(rows), "params": vars(args)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.messages} events of {args.size} B at {args.msg_rate:g}/s to each player")
        print(table(rows))
        for transport, ratio in result["growth"].items():  # type: ignore[attr-defined]
            print(
                f"{transport}: LAN bytes with {max(args.players)} players / with "
                f"{min(args.players)} = {ratio}"
            )
    return 0
