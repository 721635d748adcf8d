"""A plain engine XPUB publisher for the relay tests, driven by commands on stdin.

Prints ``bound ENDPOINT`` and ``ready``, then ``sub TOPIC`` / ``unsub TOPIC`` for each
subscription message the XPUB hands over (``--verbose``: every subscribe, not only new ones) and
``sent N`` after each command. Commands, one a line:

* ``burst TOPIC COUNT SIZE`` - COUNT messages ``[TOPIC\\0, payload of SIZE bytes]``.
* ``rate TOPIC PER_SECOND`` - keep publishing ``[TOPIC\\0, b"<pid> <seq>"]`` (0 stops).
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time

import engine as zmq

#: Poll step of the main loop: bounds command latency and the rate schedule's jitter.
POLL_MS = 5


def topic_frame(topic: str) -> bytes:
    return topic.encode() + b"\0"  # the front's topics end in a NUL byte


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="tcp://127.0.0.1:0")
    parser.add_argument("--verbose", action="store_true", help="report every subscribe")
    args = parser.parse_args()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.sndhwm = 0  # unbounded: the tests count every byte, none may be dropped
    if args.verbose:
        pub.setsockopt(zmq.XPUB_VERBOSE, 1)
    print(f"bound {pub.bind(args.bind)}", flush=True)
    commands: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [commands.put(line) for line in sys.stdin], daemon=True).start()
    print("ready", flush=True)
    rate_topic, interval, due, seq = b"", 0.0, 0.0, 0
    pid = str(os.getpid()).encode()
    while True:
        if pub.poll(POLL_MS, zmq.POLLIN):
            msg = pub.recv_multipart()
            verb = "sub" if msg[0][:1] == b"\x01" else "unsub"
            topic = msg[0][1:].rstrip(b"\0").decode()
            print(f"{verb} {topic}", flush=True)
        while not commands.empty():
            words = commands.get().split()
            if words[0] == "burst":
                topic, count, size = topic_frame(words[1]), int(words[2]), int(words[3])
                for _ in range(count):
                    pub.send_multipart([topic, b"x" * size])
                print(f"sent {count}", flush=True)
            elif words[0] == "rate":
                rate_topic, per_second = topic_frame(words[1]), float(words[2])
                interval = 1.0 / per_second if per_second else 0.0
                due = time.monotonic()
                print("sent 0", flush=True)
        if interval and time.monotonic() >= due:
            seq += 1
            pub.send_multipart([rate_topic, pid + b" " + str(seq).encode()])
            due += interval


if __name__ == "__main__":
    sys.exit(main())
