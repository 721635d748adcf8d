"""`crossroads bench players`' options: what each row runs with, checked as they are parsed
(a bad value is one line from argparse, never a traceback)."""

from __future__ import annotations

import argparse

from gameserver.cli_numbers import count_list, positive

#: The rows, in the order they run.
ROWS = ("rate", "floor", "closed", "seq", "fanout", "logins")


def _rows(text: str) -> list[str]:
    rows = [r.strip() for r in text.split(",") if r.strip()]
    if not rows or any(r not in ROWS for r in rows):
        raise argparse.ArgumentTypeError(f"rows are a comma list of {','.join(ROWS)}")
    return list(dict.fromkeys(rows))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows",
        type=_rows,
        default=list(ROWS),
        metavar="LIST",
        help=f"comma list of {','.join(ROWS)} (default: all)",
    )
    parser.add_argument(
        "--players",
        type=count_list,
        default=[100, 1000, 5000],
        metavar="LIST",
        help="players in one room for the rate rows (default: 100,1000,5000)",
    )
    parser.add_argument(
        "--rate",
        type=positive(float),
        default=100.0,
        metavar="PER_S",
        help="total actions/s of the rate and logins rows, messages/s of the floor row "
        "(default: 100)",
    )
    parser.add_argument(
        "--action",
        default="mix",
        help="what players do: mix (look 40%%, say 20%%, move 30%%, take/drop "
        "10%%) or one command such as look (default: mix)",
    )
    parser.add_argument(
        "--closed-players",
        type=positive(int),
        default=100,
        metavar="N",
        help="players of the closed-loop row, and existing players of the logins "
        "row (default: 100)",
    )
    parser.add_argument(
        "--subscribers",
        type=positive(int),
        default=1000,
        metavar="N",
        help="subscribers of the fan-out row (default: 1000)",
    )
    parser.add_argument(
        "--fan-relays",
        type=positive(int, zero=True),
        default=0,
        metavar="N",
        help="the fan-out row's subscribers behind N `crossroads relay` processes, an even "
        "share each, as a deployment's regions (their CPU counted with the server's); 0: all "
        "on the front (default: 0)",
    )
    parser.add_argument(
        "--fan-events",
        type=positive(int),
        default=10,
        metavar="N",
        help="room events per fan-out round (default: 10)",
    )
    parser.add_argument(
        "--logins",
        type=positive(int),
        default=200,
        metavar="N",
        help="simultaneous first logins of the logins row (default: 200)",
    )
    parser.add_argument(
        "--listeners",
        type=positive(int, zero=True),
        default=50,
        metavar="N",
        help="players (of the rate, closed and logins rows) that also follow their topics on an "
        "update connection, from a child process (default: 50)",
    )
    parser.add_argument(
        "--workers",
        type=positive(int),
        default=2,
        metavar="N",
        help="worker processes of the server (and of the floor row's relay) (default: 2)",
    )
    parser.add_argument(
        "--store",
        choices=("sqlite", "redis"),
        default="sqlite",
        help="sqlite (a temporary file per row) or redis (a real redis-server "
        "on a free port) (default: sqlite)",
    )
    parser.add_argument(
        "--duration",
        type=positive(float),
        default=8.0,
        metavar="SECONDS",
        help="measured time per round (default: 8)",
    )
    parser.add_argument(
        "--warmup",
        type=positive(float, zero=True),
        default=1.0,
        metavar="SECONDS",
        help="unmeasured time first (default: 1)",
    )
    parser.add_argument(
        "--rounds",
        type=positive(int),
        default=3,
        metavar="N",
        help="rounds per row; figures are their median (default: 3)",
    )
    parser.add_argument(
        "--bench-gc",
        choices=("paused", "on"),
        default="paused",
        help="the bench process's own garbage collector during measured rounds: paused "
        "(collected before each round, so its pauses are not counted as the server's) or on "
        "(default: paused)",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
