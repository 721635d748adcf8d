"""What the pattern demos' command lines share: signals, logging, and bad input as one line.

`python -m engine.patterns.NAME` is an operator's tool: a mistyped endpoint or a NaN interval
must end it with one line on stderr, ``<prog>: <what is wrong>``, never a traceback. The exit
status says whose fault it is:

- **2**, the command line is wrong (argparse's convention for usage errors): a number that
  `positive` refuses, and, at start-up, an endpoint the engine refuses (EINVAL,
  EPROTONOSUPPORT, ENOCOMPATPROTO) or a value a constructor refuses (ValueError).
- **1**, the command line may be right but the machine refused it at start-up: a port already
  taken, an address that is not local, a host that does not resolve, a directory that cannot be
  made (OSError, and the engine's other ZMQErrors).

Only start-up is guarded (`startup`). Once a demo serves, an exception is a bug or a fault that
deserves its traceback; catching ZMQError, ValueError and OSError around `run()` would turn a
bug deep in the serving loop into a tidy one-liner and hide where it happened. Endpoints that a
demo would only connect to inside `run()` are checked before it serves (`check_connect`), so a
bad one is refused as quickly as a bad bind.

Standard library and the engine's public API only (README's layer table: the patterns use the
public API). `gameserver.cli_numbers` re-exports `positive`, so the game's commands and these
demos refuse numbers in the same words; nothing here may import gameserver.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .. import Context
from .. import constants as c
from ..errors import ZMQError

#: The engine's errnos that mean "this endpoint is written wrong", not "the machine said no".
USAGE_ERRNOS = frozenset({c.EINVAL, c.EPROTONOSUPPORT, c.ENOCOMPATPROTO})
#: Exit statuses: the command line is wrong; the machine refused a start-up step.
EXIT_USAGE = 2
EXIT_REFUSED = 1


def positive(kind: type, *, zero: bool = False) -> Callable[[str], Any]:
    """An argparse ``type=``: one finite number of `kind`, above 0 (or at least 0, `zero`).

    ``nan`` and ``inf`` are refused: ``float()`` takes them, and a NaN timeout passes every
    ``<= 0`` check, then fails deep inside a socket call (or spins, or never fires).
    """

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError("must not be negative" if zero else "must be positive")
        return value

    return parse


def exit_status(exc: BaseException) -> int:
    """2 when `exc` says the command line is wrong, 1 when the machine refused (see above)."""
    if isinstance(exc, ZMQError):
        return EXIT_USAGE if exc.errno in USAGE_ERRNOS else EXIT_REFUSED
    return EXIT_REFUSED if isinstance(exc, OSError) else EXIT_USAGE


def describe(exc: BaseException, about: Sequence[str] = ()) -> str:
    """`exc` as one line. `about`: the endpoints (or paths) the failed step used, named when the
    error does not say which (a taken port reads only "Address already in use")."""
    if isinstance(exc, OSError) and exc.strerror:
        # "[Errno 17] File exists: 'x'" reads worse than "x: File exists".
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())  # one line, whatever the message held
    if about and not any(name in text for name in about):
        text += f" ({', '.join(about)})"
    return text


@contextlib.contextmanager
def startup(prog: str, *about: str) -> Iterator[None]:
    """Guard a demo's start-up (constructors, binds, `check_connect`): a ZMQError, ValueError or
    OSError ends the program with ``<prog>: <message>`` on stderr and status 2 or 1.

    Wrap only the steps before serving (see the module's docstring for why). Raises
    SystemExit, so the caller's ``finally`` blocks (closing a context) still run.
    """
    try:
        yield
    except (ZMQError, ValueError, OSError) as exc:
        print(f"{prog}: {describe(exc, about)}", file=sys.stderr, flush=True)
        raise SystemExit(exit_status(exc)) from None


def check_connect(
    *endpoints: str, socket_type: int = c.DEALER, routing_id: bytes | None = None
) -> None:
    """Raise the ZMQError that connecting to each endpoint (with `routing_id`) would.

    For the demos whose connect happens only inside ``run()`` (the Pirate workers, a Majordomo
    client, Titanic), where a bad endpoint would otherwise surface mid-serve as a traceback.
    A throwaway socket of a private context connects and is closed at once: connect() checks
    the endpoint synchronously and dials in the background, so at most a peer that is already
    up sees a connection open and close, as a port scan would.
    """
    ctx = Context()
    try:
        sock = ctx.socket(socket_type)
        sock.linger = 0
        if routing_id:
            sock.setsockopt(c.ROUTING_ID, routing_id)
        for endpoint in endpoints:
            sock.connect(endpoint)
    finally:
        ctx.destroy(linger=0)


def stop_on_signals(stop: Callable[[], None]) -> None:
    """Route SIGINT and SIGTERM to `stop` so run() returns and sockets close cleanly."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop())


def setup_logging(verbose: bool, level: int = logging.INFO) -> None:
    """CLI logging: one plain line per event on stdout (tests and operators read it)."""
    logging.basicConfig(
        stream=sys.stdout, format="%(message)s", level=logging.DEBUG if verbose else level
    )


def verbose_option() -> argparse.ArgumentParser:
    """A parent parser giving each subcommand -v/--verbose (log debug events too)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log debug events too")
    return common
