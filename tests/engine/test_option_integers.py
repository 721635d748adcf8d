"""Integer options at their edges, compared with libzmq (pyzmq): a value that does not fit the C
type pyzmq passes (a C int; int64_t for AFFINITY and MAXMSGSIZE) is OverflowError before the
option's own range is looked at; INVERT_MATCHING and MULTICAST_LOOP are flags libzmq reads as
"not 0"; BLOCKY is a context option only. The engine took 2**31 for SNDHWM and any other
integer option, kept INVERT_MATCHING = 2 as 2, and took BLOCKY on a socket."""

from __future__ import annotations

from typing import Any

import zmq as pyzmq

import engine

SOCKET_OPTIONS = [
    *("SNDHWM", "RCVHWM", "LINGER", "RCVTIMEO", "SNDTIMEO", "RECONNECT_IVL", "BACKLOG"),
    *("RECONNECT_IVL_MAX", "MAXMSGSIZE", "AFFINITY", "RATE", "RECOVERY_IVL", "SNDBUF"),
    *("RCVBUF", "MULTICAST_HOPS", "TCP_KEEPALIVE_IDLE", "HEARTBEAT_IVL", "HEARTBEAT_TTL"),
    *("HEARTBEAT_TIMEOUT", "HANDSHAKE_IVL", "CONNECT_TIMEOUT", "TCP_MAXRT", "TOS", "USE_FD"),
    *("MULTICAST_MAXTPDU", "INVERT_MATCHING", "MULTICAST_LOOP", "LOOPBACK_FASTPATH", "IPV6"),
    *("IPV4ONLY", "IMMEDIATE", "CONFLATE", "ROUTER_MANDATORY", "RECONNECT_STOP", "BLOCKY"),
    *("CURVE_SERVER", "PLAIN_SERVER", "ZAP_ENFORCE_DOMAIN", "IPC_FILTER_UID"),
]
EDGES = [2, -1, 255, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, -(2**31), -(2**31) - 1, -(2**63)]
CONTEXT_OPTIONS = ["IO_THREADS", "MAX_SOCKETS", "BLOCKY", "IPV6", "MAX_MSGSZ"]


def _failure(lib: Any, exc: BaseException) -> str:
    return f"errno {exc.errno}" if isinstance(exc, lib.ZMQError) else type(exc).__name__


def _socket_outcome(lib: Any, sock: Any, option: int, value: int) -> str:
    try:
        sock.setsockopt(option, value)
    except (lib.ZMQError, OverflowError, TypeError) as exc:
        return _failure(lib, exc)
    try:
        return f"taken, reads {sock.getsockopt(option)}"
    except lib.ZMQError as exc:
        return f"taken, reading is {_failure(lib, exc)}"


def _context_outcome(lib: Any, ctx: Any, option: int, value: int) -> str:
    try:
        ctx.set(option, value)
    except (lib.ZMQError, OverflowError, TypeError) as exc:
        return _failure(lib, exc)
    return "taken"


def _table(lib: Any) -> list[tuple[str, int, str]]:
    ctx = lib.Context()
    try:
        rows = []
        for name in SOCKET_OPTIONS:
            for value in EDGES:
                sock = ctx.socket(lib.ROUTER)  # fresh: CURVE_SERVER's side effects stay apart
                got = _socket_outcome(lib, sock, getattr(lib, name), value)
                sock.close(linger=0)
                if name in ("CURVE_SERVER", "ZAP_ENFORCE_DOMAIN"):
                    got = got.split(", reads")[0]  # (pyzmq reads a bool here, the engine an int)
                rows.append((name, value, got))
        for name in CONTEXT_OPTIONS:
            for value in EDGES:
                other = lib.Context()
                try:
                    rows.append(
                        (name, value, _context_outcome(lib, other, getattr(lib, name), value))
                    )
                finally:
                    other.term()
        return rows
    finally:
        ctx.destroy(linger=0)


def test_integer_options_meet_their_edges_as_in_pyzmq() -> None:
    ours, theirs = _table(engine), _table(pyzmq)
    assert len(ours) > 400
    differ = [(o, t) for o, t in zip(ours, theirs, strict=True) if o != t]
    assert differ == [], differ[:10]
