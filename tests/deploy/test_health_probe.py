"""The health checker itself: its ZMTP subset against a real libzmq peer, its parsers under
hostile bytes, its argument grammar, and what it imports (its whole point is to cost little)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq  # pyzmq: the reference peer
from deploykit import REPO_ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver import health

#: Modules a check must never load: each costs milliseconds of CPU (socket pulls in enum and
#: selectors; a str host name pulls in encodings.idna and re), and the rest are the game's.
HEAVY = {"socket", "json", "re", "encodings.idna", "enum", "typing", "argparse", "asyncio"}
HEAVY |= {"engine", "orjson", "pydantic", "gameserver.front", "gameserver.ping"}


@pytest.fixture
def libzmq_rep() -> Iterator[tuple[str, list[list[bytes]]]]:
    """A pyzmq REP that answers "health" with "ok" and anything else with "no"."""
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.linger = 0
    rep.bind("tcp://127.0.0.1:0")
    endpoint = rep.getsockopt_string(zmq.LAST_ENDPOINT)
    seen: list[list[bytes]] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if rep.poll(50):
                request = rep.recv_multipart()
                seen.append(request)
                rep.send(b"ok" if request == [b"health"] else b"no")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield endpoint, seen
    stop.set()
    thread.join(5)
    rep.close()
    ctx.term()


def test_request_reaches_a_libzmq_rep_as_one_frame_and_gets_its_answer(
    libzmq_rep: tuple[str, list[list[bytes]]],
) -> None:
    endpoint, seen = libzmq_rep
    assert health.request(endpoint, b"health") == b"ok"
    assert health.request(endpoint, b"x" * 300) == b"no"  # a long frame (8-byte size) too
    assert seen == [[b"health"], [b"x" * 300]]
    assert health.check_relay(endpoint, 2.0) == "ok"


def test_a_peer_that_never_speaks_is_unhealthy_within_the_timeout() -> None:
    with socket.socket() as listener:  # the kernel accepts; nobody ever answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(health.Unhealthy, match=r"no answer in time|timed out"):
            health.request(f"tcp://127.0.0.1:{port}", b"health", timeout=0.3)


def test_a_closed_port_is_unhealthy() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(health.Unhealthy, match="cannot connect"):
            health.request(f"tcp://127.0.0.1:{port}", b"health")


def _reader(data: bytes) -> Callable[[int], bytes]:
    """``read(n)`` over ``data``, as the connection would (the peer closes at the end)."""
    buffer = memoryview(data)
    position = 0

    def read(count: int) -> bytes:
        nonlocal position
        assert count <= health.MAX_FRAME + 64, "asked to buffer past the cap"
        if position + count > len(buffer):
            raise health.Unhealthy("the peer closed the connection")
        chunk = bytes(buffer[position : position + count])
        position += count
        return chunk

    return read


READY = bytes((0x04, len(health._READY))) + health._READY


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_hostile_bytes_only_ever_make_the_peer_unhealthy(data: bytes) -> None:
    for parse in (health.read_greeting, health.read_reply, health.read_frame):
        try:
            parse(_reader(data))
        except health.Unhealthy:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=0, max_size=8), st.booleans())
def test_replies_parse_only_when_req_framed(frames: list[bytes], long_sizes: bool) -> None:
    wire = bytearray(READY)
    for i, frame in enumerate(frames):
        flags = 0x01 if i < len(frames) - 1 else 0
        if long_sizes or len(frame) > 255:
            wire += bytes((flags | 0x02,)) + len(frame).to_bytes(8, "big") + frame
        else:
            wire += bytes((flags, len(frame))) + frame
    try:
        body = health.read_reply(_reader(bytes(wire)))
    except health.Unhealthy:
        assert len(frames) != 2 or frames[0] != b""
    else:
        assert len(frames) == 2 and frames[0] == b"" and body == frames[1]


def test_a_huge_declared_frame_is_refused_before_it_is_read() -> None:
    header = bytes((0x02,)) + (1 << 60).to_bytes(8, "big")
    with pytest.raises(health.Unhealthy, match="cap"):
        health.read_frame(_reader(READY[:0] + header))


def test_greetings_other_than_zmtp3_null_are_refused() -> None:
    good = health._GREETING
    assert health.read_greeting(_reader(good)) is None
    for bad, why in (
        (b"GET / HTTP/1.1\r\n".ljust(64, b"x"), "ZMTP"),
        (good[:10] + b"\x02\x00" + good[12:], "2.x"),
        (good[:12] + b"PLAIN".ljust(20, b"\x00") + good[32:], "NULL"),
    ):
        with pytest.raises(health.Unhealthy, match=why):
            health.read_greeting(_reader(bad))
    # CURVE (a default front's player ports) is named, so `front` can ask the key port instead.
    with pytest.raises(health.SpeaksCurve, match="CURVE"):
        health.read_greeting(_reader(good[:12] + b"CURVE".ljust(20, b"\x00") + good[32:]))


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([], "first argument"),
        (["ping"], "first argument"),
        (["front"], "which endpoint"),
        (["front", "tcp://a:1", "--max-age", "3"], "unknown option"),
        (["file", "--timeout", "1"], "unknown option"),
        (["relay", "tcp://a:1", "--timeout"], "needs a number"),
        (["front", "tcp://a:1", "--min-workers", "-1"], "negative"),
        (["front", "tcp://a:1", "--timeout", "nan"], "needs a finite number"),
        (["file", "a", "b"], "unexpected argument"),
    ],
)
def test_bad_arguments_get_one_clear_line_and_exit_2(argv: list[str], problem: str) -> None:
    done = run_checker(argv)
    assert done.returncode == 2
    assert problem in done.stderr.splitlines()[0] and "Traceback" not in done.stderr


def test_bad_endpoints_are_unhealthy_not_crashes() -> None:
    for endpoint, why in (("ipc:///x", "tcp://"), ("tcp://nohost", "HOST:PORT")):
        done = run_checker(["front", endpoint])
        assert done.returncode == 1 and why in done.stderr and "Traceback" not in done.stderr


def test_help() -> None:
    done = run_checker(["--help"])
    assert done.returncode == 0 and "front ENDPOINT" in done.stdout


def test_the_liveness_file_check(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "alive"
    from_env = {health.HEALTH_FILE_ENV: str(path)}
    assert run_checker(["file", str(path)]).returncode == 1  # missing
    assert "no liveness file" in run_checker(["file"]).stderr
    health.touch(str(path))  # makes the directory too
    assert run_checker(["file", str(path), "-q"]).returncode == 0
    assert run_checker(["file"], env=from_env).returncode == 0
    old = path.stat().st_mtime - 60
    os.utime(path, (old, old))
    done = run_checker(["file", "--max-age", "30"], env=from_env)
    assert done.returncode == 1 and "60s old" in done.stderr
    assert run_checker(["file", "--max-age", "90"], env=from_env).returncode == 0


def test_a_front_check_loads_no_heavy_module(libzmq_rep: tuple[str, list[list[bytes]]]) -> None:
    """Run as the image runs it (-IS, imported from bytecode), against a peer, then list what
    the interpreter loaded."""
    endpoint, _ = libzmq_rep
    code = (
        "import sys; sys.path.append(sys.argv[1]); from gameserver import health\n"
        "try: health.check_relay(sys.argv[2], 2.0)\n"
        "except health.Unhealthy as e: sys.exit(str(e))\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-IS", "-c", code, str(REPO_ROOT), endpoint],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "gameserver.health" in loaded and "_socket" in loaded
    assert not loaded & HEAVY, loaded & HEAVY


def run_checker(
    argv: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-IS", str(REPO_ROOT / "gameserver" / "health.py"), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env=env or {},
        check=False,
    )
