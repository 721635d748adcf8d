"""`crossroads bench players`' results: rounds and rows as measured, the figures each row is
judged by (beside what issue 12 measured before, "now", and its target), and the table."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

#: What the issue measured before the work ("now") and what it asks for, per row and figure.
NOW = {
    ("rate", 100): "p99 44 ms",
    ("rate", 1000): "p50 3.1 s, 107 err",
    ("rate", 5000): "collapses",
    ("closed", 0): "144-226/s",
    ("seq", 0): "p50 3.7 ms",
    ("fanout", 0): "last 72.5 ms",
    ("ping", 0): "p99 105 ms",
    ("logins", 0): "time out",
    ("login_play", 0): "-",
    ("cpu_look", 0): "3,200-5,700 us",
}


@dataclass
class Round:
    """One round of one row: latencies in ms, CPU seconds per server process."""

    actions: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    #: From the client core's send to its answer: the latency less the bench's own lateness
    #: in sending (on a busy box, many players in one Python loop start late).
    after_send: list[float] = field(default_factory=list, repr=False)
    cpu: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)

    def pct(self, q: float, values: list[float] | None = None) -> float:
        values = self.latencies if values is None else values
        return percentile(values, q)


@dataclass
class Row:
    kind: str
    players: int = 0
    rounds: list[Round] = field(default_factory=list)
    status: str = "pending"
    note: str = ""
    #: Relays between the server and the row's subscribers (the fan-out row's --fan-relays).
    relays: int = 0

    @property
    def label(self) -> str:
        return {
            "rate": f"rate {self.players:,} players",
            "floor": "floor: relay, no work",
            "closed": f"closed loop {self.players:,}",
            "seq": "sequential look, 1",
            "fanout": f"fan-out to {self.players:,}"
            + (f" via {self.relays} relay{'s' if self.relays > 1 else ''}" if self.relays else ""),
            "logins": f"{self.players:,} new logins",
        }[self.kind]

    def median(self, fn: Callable[[Round], float]) -> float:
        return statistics.median(fn(r) for r in self.rounds) if self.rounds else 0.0

    def cpu_per_action_us(self) -> dict[str, float]:
        """Median over rounds of each process's CPU µs per answered action, and the total."""
        names = list(self.rounds[0].cpu) if self.rounds else []
        out = {
            name: self.median(lambda r, n=name: r.cpu[n] * 1e6 / max(r.actions, 1))
            for name in names
        }
        out["total"] = self.median(lambda r: sum(r.cpu.values()) * 1e6 / max(r.actions, 1))
        return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def key_figures(row: Row, args: argparse.Namespace) -> list[tuple[str, float, str, str, float]]:
    """(figure, measured, now, target, measured/target) for the row's targets."""
    p50 = row.median(lambda r: r.pct(50))
    p99 = row.median(lambda r: r.pct(99))
    out = []
    if row.kind == "rate":
        now = NOW.get(("rate", row.players), "-")
        out.append(("p99 ms", p99, now, "<= 50", p99 / 50))
        sent = row.median(lambda r: r.pct(99, r.after_send))
        out.append(("p99 after send ms", sent, "-", "-", 0.0))  # where the tail is: not a target
        if row.players == 100 and args.action in ("look", "say"):
            target = 500 if args.action == "look" else 700
            cpu = row.cpu_per_action_us()["total"]
            now = NOW[("cpu_look", 0)] if args.action == "look" else "-"
            out.append((f"CPU us/{args.action}", cpu, now, f"<= {target}", cpu / target))
    elif row.kind == "floor":
        cpu = row.cpu_per_action_us()["total"]
        out.append(("CPU us/message", cpu, "-", "-", 0.0))  # a reference, not a target
    elif row.kind == "closed":
        rate = row.median(lambda r: r.extra["rate"])
        out.append(("actions/s", rate, NOW[("closed", 0)], ">= 1500", rate / 1500))
    elif row.kind == "seq":
        out.append(("p50 ms", p50, NOW[("seq", 0)], "<= 1", p50 / 1))
    elif row.kind == "fanout":
        out.append(("last arrival p50 ms", p50, NOW[("fanout", 0)], "<= 20", p50 / 20))
        ping = row.median(lambda r: r.extra["ping_p99"])
        out.append(("ping p99 ms", ping, NOW[("ping", 0)], "<= 20", ping / 20))
        if all("subscribers_us" in r.extra for r in row.rounds):  # a reference, not a target
            receiving = row.median(lambda r: r.extra["subscribers_us"])
            out.append(("subscribers' CPU us/event", receiving, "-", "-", 0.0))
    elif row.kind == "logins":
        whole = row.median(lambda r: r.extra["all_s"])
        out.append(("all logged in, s", whole, NOW[("logins", 0)], "<= 10", whole / 10))
        play = row.median(lambda r: r.extra["play_p99"])
        out.append(("players' p99 ms", play, "-", "<= 100", play / 100))
    return out


def table(rows: list[Row], args: argparse.Namespace) -> str:
    procs = ["front"] + [f"w{i}" for i in range(1, args.workers + 1)]
    procs += [f"r{i}" for i in range(1, max((row.relays for row in rows), default=0) + 1)]
    header = (
        "row",
        "p50 ms",
        "p99 ms",
        "errors",
        *(f"{p} us" for p in procs),
        "total us",
        "figure",
        "measured",
        "now",
        "target",
        "vs target",
    )
    body: list[tuple[str, ...]] = []
    for row in rows:
        if row.status != "ok":
            body.append((row.label, row.note[:60], *("" for _ in header[2:])))
            continue
        cpu = row.cpu_per_action_us()
        cells = (
            row.label,
            f"{row.median(lambda r: r.pct(50)):.2f}",
            f"{row.median(lambda r: r.pct(99)):.2f}",
            str(sum(r.errors for r in row.rounds)),
            *(f"{cpu.get(p, 0.0):,.0f}" for p in procs),
            f"{cpu['total']:,.0f}",
        )
        figures = key_figures(row, args) or [("", 0.0, "", "", 0.0)]
        for i, (name, value, now, target, ratio) in enumerate(figures):
            lead = cells if i == 0 else ("",) * len(cells)
            shown = f"{ratio:.2f}x" if target != "-" else ""
            body.append((*lead, name, f"{value:,.2f}", now, target, shown))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
