"""One ZeroMQ socket driven over stdin/stdout by the interop tests: libzmq's or the engine's.

    /usr/bin/python3 zmq_peer.py TYPE ENDPOINT bind|connect [OPTION=VALUE ...]
    .venv/bin/python zmq_peer.py --engine TYPE ENDPOINT bind|connect [OPTION=VALUE ...]

Without --engine it must run under /usr/bin/python3, the system interpreter with Debian's
python3-zmq, whose libzmq 4.3.4 is built with OpenPGM. With --engine it runs the engine's
pyzmq-compatible face (`import engine as zmq`) instead, so both sides of a test drive the same
script. TYPE is pub, sub, xpub or xsub, or (engine only: Debian's libzmq has no draft sockets)
radio, dish, server, client, scatter, gather, peer or channel. OPTION is a socket option by
name (RATE, RECOVERY_IVL, MULTICAST_HOPS, SNDHWM, ...).

The protocol is the one of tests/peers/js/peer.js: it prints ``{"event": "ready"}``, then
``{"event": "message", "frames": [hex, ...]}`` per message received (with "group" or
"routing_id" for draft sockets). It takes one JSON command per line on stdin, each answered by
``{"event": "done"}`` (or "error"): ``{"send": [hex, ...]}`` (with "group" or "routing_id"),
``{"subscribe": hex}``, ``{"join": hex}``, ``{"leave": hex}``. It exits when stdin closes.
"""

import json
import sys
import threading
from pathlib import Path

if sys.argv[1:2] == ["--engine"]:
    del sys.argv[1]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import engine as zmq
else:
    import zmq

NAMES = (
    "pub",
    "sub",
    "xpub",
    "xsub",
    "radio",
    "dish",
    "server",
    "client",
    "scatter",
    "gather",
    "peer",
    "channel",
)
SEND_ONLY = {"pub", "radio", "scatter"}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def receive(sock, kind):
    """Every message waiting, as events (draft sockets: one frame with its group or id)."""
    while True:
        try:
            frame = sock.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return
        frames = [frame.bytes]
        while frame.more:
            frame = sock.recv(copy=False)
            frames.append(frame.bytes)
        event = {"event": "message", "frames": [f.hex() for f in frames]}
        if kind == "dish":
            group = frame.group
            event["group"] = group.encode().hex() if isinstance(group, str) else group.hex()
        elif kind in ("server", "peer"):
            event["routing_id"] = frame.routing_id
        emit(event)


def run(sock, cmd):
    frames = [bytes.fromhex(f) for f in cmd.get("send", ())]
    if "group" in cmd:
        sock.send(frames[0], group=bytes.fromhex(cmd["group"]))
    elif "routing_id" in cmd:
        sock.send(frames[0], routing_id=cmd["routing_id"])
    elif frames:
        sock.send_multipart(frames)
    elif "subscribe" in cmd:
        sock.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(cmd["subscribe"]))
    elif "join" in cmd:
        sock.join(bytes.fromhex(cmd["join"]))
    elif "leave" in cmd:
        sock.leave(bytes.fromhex(cmd["leave"]))


def main():
    kind, endpoint, mode, *rest = sys.argv[1:]
    if kind not in NAMES:
        sys.exit(f"zmq_peer: unknown socket type {kind!r}")
    ctx = zmq.Context()
    sock = ctx.socket(getattr(zmq, kind.upper()))
    for kv in rest:
        name, value = kv.split("=", 1)
        sock.setsockopt(getattr(zmq, name), int(value))
    # A socket is used by one thread at a time: commands reach the poller through inproc.
    commands = ctx.socket(zmq.PAIR)
    commands.bind("inproc://commands")
    feed = ctx.socket(zmq.PAIR)
    feed.connect("inproc://commands")
    getattr(sock, mode)(endpoint)
    emit({"event": "ready", "endpoint": sock.getsockopt_string(zmq.LAST_ENDPOINT) or endpoint})

    def read_stdin():
        for line in sys.stdin:
            if line.strip():
                feed.send_string(line)
        feed.send_string("")  # stdin closed

    threading.Thread(target=read_stdin, daemon=True).start()
    poller = zmq.Poller()
    poller.register(commands, zmq.POLLIN)
    if kind not in SEND_ONLY:
        poller.register(sock, zmq.POLLIN)
    while True:
        ready = dict(poller.poll())
        if sock in ready:
            receive(sock, kind)
        if commands in ready:
            line = commands.recv_string()
            if not line:
                break
            try:
                run(sock, json.loads(line))
                emit({"event": "done"})
            except zmq.ZMQError as exc:
                emit({"event": "error", "message": str(exc)})
    for s in (sock, commands, feed):
        s.close()
    ctx.term()


if __name__ == "__main__":
    main()
