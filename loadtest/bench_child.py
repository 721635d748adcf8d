"""A bench's helper process: spawned, told what to do over a pipe, ended by PID.

The fan-out row's subscribers (bench_subscribers), the logins row's newcomers
(bench_newcomers) and the listening players (bench_listeners) run in a child process so that
their work does not hold up the loop that times the server. All start the same way (spawn,
then wait for the child's ``("ready",)``, or its ``("failed", why)``) and end the same way
(join, then kill).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

#: Longest wait for a child to import and say it is ready.
START_TIMEOUT_S = 60.0


def start_child(
    target: Callable[..., None], args: tuple[Any, ...], what: str
) -> tuple[BaseProcess, Connection]:
    """Spawn ``target(*args, conn)`` and wait until it sends ``("ready",)`` on ``conn``;
    RuntimeError naming ``what`` if it does not within START_TIMEOUT_S."""
    spawn = multiprocessing.get_context("spawn")
    conn, child = spawn.Pipe()
    process = spawn.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    child.close()
    try:
        said = conn.recv() if conn.poll(START_TIMEOUT_S) else None
    except (EOFError, OSError):
        said = None
    if said != ("ready",):
        stop_child(process, conn, 0)
        # A child that could not set up says why: ("failed", one line).
        why = f": {said[1]}" if isinstance(said, tuple) and said[0] == "failed" else ""
        raise RuntimeError(f"the {what} process did not start{why}")
    return process, conn


def stop_child(process: BaseProcess, conn: Connection, join_s: float) -> None:
    """Wait up to ``join_s`` for the child to end, then kill it by PID; close the pipe."""
    process.join(join_s)
    if process.is_alive():
        process.kill()
        process.join(5)
    conn.close()


def ask_child_to_stop(process: BaseProcess, conn: Connection, join_s: float) -> None:
    """Send the child ``("stop",)`` (if its pipe is still open), then stop_child."""
    try:
        conn.send(("stop",))
    except OSError:
        pass
    stop_child(process, conn, join_s)
