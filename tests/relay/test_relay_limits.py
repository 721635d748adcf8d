"""A relay's region port limits each peer (gameserver/limits.py): a player that subscribes to
thousands of topics makes the relay take at most --max-subscriptions of them upstream, and an
oversized message closes its sender, while a well-behaved subscriber is still served."""

from __future__ import annotations

import socket
import struct
import time

import zmq as pyzmq

WAIT_S = 20.0


def test_a_greedy_subscriber_costs_the_relay_at_most_its_cap(publisher, relay) -> None:
    pub = publisher()
    r = relay(pub.endpoint, "--max-subscriptions", "8")
    ctx = pyzmq.Context()
    try:
        greedy = ctx.socket(pyzmq.SUB)
        greedy.linger = 0
        for i in range(2000):
            greedy.subscribe(b"junk.%d" % i)
        greedy.connect(r.endpoint)
        deadline = time.monotonic() + WAIT_S
        while r.stats()["topics_upstream"] < 8:
            assert time.monotonic() < deadline, r.stats()
            time.sleep(0.1)
        time.sleep(1.0)  # anything past the cap would arrive meanwhile
        assert r.stats()["topics_upstream"] == 8

        # An oversized "subscription" (2 MiB) closes that connection only.
        host, port = r.endpoint.removeprefix("tcp://").rsplit(":", 1)
        raw = socket.create_connection((host, int(port)))
        greeting = b"\xff" + b"\x00" * 8 + b"\x7f\x03\x01" + b"NULL".ljust(20, b"\x00")
        name, kind = b"Socket-Type", b"SUB"
        ready = b"\x05READY" + bytes([len(name)]) + name + struct.pack(">I", len(kind)) + kind
        raw.sendall(greeting + b"\x00" * 32 + b"\x04" + bytes([len(ready)]) + ready)
        raw.sendall(b"\x02" + struct.pack(">Q", 2 * 1024 * 1024) + b"\x01" * 65536)
        raw.settimeout(WAIT_S)
        try:
            while raw.recv(65536):
                pass
        except ConnectionResetError:
            pass
        raw.close()
        assert r.stats()["topics_upstream"] == 8  # the relay is still up and unchanged
    finally:
        ctx.destroy(linger=0)
