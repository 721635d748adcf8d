"""One libzmq socket from Debian's python3-zmq, driven over stdin/stdout by the interop tests.

Run with /usr/bin/python3 (the system interpreter that has python3-zmq, whose libzmq 4.3.4 is
built with OpenPGM), never with the project's venv:

    /usr/bin/python3 system_peer.py TYPE ENDPOINT bind|connect [OPTION=VALUE ...]

TYPE is pub, sub, xpub or xsub; OPTION is a libzmq socket option by name (RATE, RECOVERY_IVL,
MULTICAST_HOPS, SNDHWM, ...). The protocol is the one of tests/peers/js/peer.js: it prints
``{"event": "ready"}`` and then ``{"event": "message", "frames": [hex, ...]}`` per message
received; it takes ``{"send": [hex, ...]}`` and ``{"subscribe": hex}`` commands on stdin,
each answered by ``{"event": "done"}``. It exits when stdin closes, after LINGER.
"""

import json
import sys
import threading

import zmq

TYPES = {"pub": zmq.PUB, "sub": zmq.SUB, "xpub": zmq.XPUB, "xsub": zmq.XSUB}
RECEIVES = {"sub", "xsub", "xpub"}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    kind, endpoint, mode, *rest = sys.argv[1:]
    ctx = zmq.Context()
    sock = ctx.socket(TYPES[kind])
    for kv in rest:
        name, value = kv.split("=", 1)
        sock.setsockopt(getattr(zmq, name), int(value))
    # A socket is used by one thread at a time: sends go through an inproc pair to the reader.
    commands = ctx.socket(zmq.PAIR)
    commands.bind("inproc://commands")
    feed = ctx.socket(zmq.PAIR)
    feed.connect("inproc://commands")
    getattr(sock, mode)(endpoint)
    emit({"event": "ready", "endpoint": endpoint})

    def read_stdin():
        for line in sys.stdin:
            if line.strip():
                feed.send_string(line)
        feed.send_string("")  # stdin closed

    threading.Thread(target=read_stdin, daemon=True).start()
    poller = zmq.Poller()
    poller.register(commands, zmq.POLLIN)
    if kind in RECEIVES:
        poller.register(sock, zmq.POLLIN)
    while True:
        ready = dict(poller.poll())
        if sock in ready:
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                emit({"event": "message", "frames": [f.hex() for f in frames]})
        if commands in ready:
            line = commands.recv_string()
            if not line:
                break
            cmd = json.loads(line)
            try:
                if "send" in cmd:
                    sock.send_multipart([bytes.fromhex(f) for f in cmd["send"]])
                elif "subscribe" in cmd:
                    sock.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(cmd["subscribe"]))
                emit({"event": "done"})
            except zmq.ZMQError as exc:
                emit({"event": "error", "message": str(exc)})
    sock.close()
    commands.close()
    feed.close()
    ctx.term()


if __name__ == "__main__":
    main()
