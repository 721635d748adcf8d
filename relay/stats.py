"""Relay counters, their JSON form, and `crossroads relay-stats`: read a relay's stats endpoint.

The relay answers any request on its REP stats socket with one JSON object (`RelayStats.as_dict`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import engine as zmq

#: How long `relay-stats` waits for an answer: a live relay answers in milliseconds, and a dead
#: one must not hang a monitoring script.
DEFAULT_TIMEOUT_S = 3.0
#: Row order and labels of the printed table.
TABLE_ROWS: tuple[tuple[str, str], ...] = (
    ("upstream", "upstream"),
    ("upstream_up", "upstream link up"),
    ("actions_upstream_up", "actions upstream link up"),
    ("downstream", "downstream"),
    ("uptime_s", "uptime (s)"),
    ("messages_in", "messages in"),
    ("bytes_in", "bytes in"),
    ("messages_out", "messages out"),
    ("bytes_out", "bytes out"),
    ("fanout", "fan-out (bytes out / in)"),
    ("subscribers", "current subscribers"),
    ("topics_upstream", "topics subscribed upstream"),
    ("actions_requests", "actions forwarded up"),
    ("actions_replies", "actions replies down"),
    ("catchups_local", "catch-ups answered here"),
    ("catchups_forwarded", "catch-ups sent upstream"),
)
#: An answer without these is not a relay's stats (e.g. the front's actions port answering).
RELAY_KEYS = frozenset({"upstream", "downstream", "messages_in", "messages_out"})


@dataclass
class RelayStats:
    """What a relay has forwarded since it started. Bytes are message payload (all frames)."""

    upstream: str = ""
    downstream: str = ""
    started: float = field(default_factory=time.monotonic)
    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    subscribers: int = 0
    topics_upstream: int = 0
    actions_requests: int = 0
    actions_replies: int = 0
    catchups_local: int = 0
    catchups_forwarded: int = 0
    upstream_up: bool = False
    actions_upstream_up: bool | None = None  # None: the relay carries no actions
    #: The newest event from upstream and when it arrived (wall clock), for the lag metric.
    last_event: list[bytes] | None = None
    last_event_at: float = 0.0

    @property
    def fanout(self) -> float:
        """Bytes out ÷ bytes in: how many times the region re-used each byte from upstream."""
        return self.bytes_out / self.bytes_in if self.bytes_in else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "downstream": self.downstream,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "messages_out": self.messages_out,
            "bytes_out": self.bytes_out,
            "fanout": round(self.fanout, 3),
            "subscribers": self.subscribers,
            "topics_upstream": self.topics_upstream,
            "actions_requests": self.actions_requests,
            "actions_replies": self.actions_replies,
            "catchups_local": self.catchups_local,
            "catchups_forwarded": self.catchups_forwarded,
            "upstream_up": self.upstream_up,
            "actions_upstream_up": self.actions_upstream_up,
        }

    def summary(self) -> str:
        """One log line."""
        return (
            f"in {self.messages_in} msgs/{self.bytes_in} B, out {self.messages_out} msgs/"
            f"{self.bytes_out} B, fan-out {self.fanout:.2f}, {self.subscribers} subscribers, "
            f"{self.topics_upstream} topics upstream"
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def format_table(stats: dict[str, Any]) -> str:
    """A two-column text table of a stats object."""
    rows = [(label, _cell(stats[key])) for key, label in TABLE_ROWS if key in stats]
    width = max(len(label) for label, _ in rows)
    vwidth = max(len(value) for _, value in rows)
    rule = f"+-{'-' * width}-+-{'-' * vwidth}-+"
    lines = [rule, f"| {'stat'.ljust(width)} | {'value'.ljust(vwidth)} |", rule]
    lines += [f"| {label.ljust(width)} | {value.rjust(vwidth)} |" for label, value in rows]
    lines.append(rule)
    return "\n".join(lines)


class StatsError(Exception):
    """No relay stats from that endpoint; the message says why, in one line."""


def fetch(endpoint: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """Ask the relay at ``endpoint`` for its stats; raises StatsError (TimeoutError if nobody
    answers) with a message fit for the operator."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.rcvtimeo = int(timeout * 1000)
    # A secure port given by mistake refuses the handshake, and then the request has
    # nowhere to go: the send waits no longer than the answer would.
    sock.sndtimeo = int(timeout * 1000)
    try:
        sock.connect(endpoint)
        try:
            sock.send(b"stats")
            answer = sock.recv()
        except zmq.Again:
            raise TimeoutError(f"no answer from {endpoint} within {timeout:g} s") from None
    except zmq.ZMQError as exc:
        raise StatsError(f"cannot use {endpoint}: {exc}") from None
    finally:
        sock.close(0)
        ctx.term()
    try:
        stats = json.loads(answer)
    except ValueError:
        stats = None
    if not isinstance(stats, dict) or not stats.keys() >= RELAY_KEYS:
        raise StatsError(
            f"{endpoint} answered, but not with a relay's stats: is it a relay's --stats-bind?"
        )
    return stats


def main(argv: list[str] | None = None, prog: str = "crossroads relay-stats") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Print a running relay's counters.")
    parser.add_argument("endpoint", help="the relay's --stats-bind endpoint, e.g. tcp://host:7310")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for an answer"
    )
    args = parser.parse_args(argv)
    if not 0 < args.timeout < math.inf:  # not `<= 0`: float() takes "nan", which passes that
        print(f"{prog}: --timeout must be positive", file=sys.stderr)
        return 2
    try:
        stats = fetch(args.endpoint, args.timeout)
    except (TimeoutError, StatsError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(stats, sort_keys=True) if args.json else format_table(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
