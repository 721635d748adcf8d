"""The engine's sans-I/O PGM codecs over plain sockets, driven like zmq_peer.py.

This is how the codecs meet libzmq before any engine socket uses them: a PGM source
(`engine.pgm.sender`) or receiver (`engine.pgm.receiver`) wired to a UDP socket (epgm) or a raw
IP protocol-113 socket (pgm, root only), run inside a network namespace by the interop tests:

    python pgm_codec_peer.py pub|sub (e)pgm://ADDRESS;GROUP:PORT [rate=KBIT] [recovery_ivl=MS]
                                                                  [hops=N] [max_tpdu=BYTES]

Events (JSON lines, as peer.js and zmq_peer.py): ready, message (frames as hex), gap (lost
packets), stats (on request). Commands: {"send": [hex...]}, {"stats": true}. Exits when stdin
closes; a source first sends its queued data and the closing SPMs.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import socket
import struct
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.pgm import packets as wire
from engine.pgm.receiver import GapReported, MessageReceived, PgmReceiver, ReceiverConfig
from engine.pgm.sender import PgmSender, SenderConfig, max_apdu, window_sqns

IP_HEADER = 20
UDP_HEADER = 8
#: libzmq's defaults for RATE (kbit/s), RECOVERY_IVL (ms), MULTICAST_HOPS, MULTICAST_MAXTPDU.
DEFAULTS = {"rate": 100, "recovery_ivl": 10000, "hops": 1, "max_tpdu": 1500}
#: Cap on one message in this test peer.
MAX_MESSAGE = 1 << 20


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def parse_endpoint(endpoint: str) -> tuple[bool, str, str, int]:
    """(udp encapsulation?, interface address, group, port) of ``(e)pgm://addr;group:port``."""
    scheme, rest = endpoint.split("://", 1)
    address, rest = rest.split(";", 1)
    group, port = rest.rsplit(":", 1)
    return scheme == "epgm", address, group, int(port)


def open_socket(udp: bool, address: str, group: str, port: int, hops: int) -> socket.socket:
    if udp:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))  # multicast data and unicast NAKs both come to this port
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, wire.IPPROTO_PGM)
    membership = socket.inet_aton(group) + socket.inet_aton(address)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("b", hops))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.setblocking(False)
    return sock


def main() -> int:
    role, endpoint, *rest = sys.argv[1:]
    opts = dict(DEFAULTS)
    for kv in rest:
        name, value = kv.split("=", 1)
        opts[name] = int(value)
    udp, address, group, port = parse_endpoint(endpoint)
    sock = open_socket(udp, address, group, port, opts["hops"])
    overhead = IP_HEADER + (UDP_HEADER if udp else 0)
    sqns = window_sqns(opts["rate"], opts["recovery_ivl"], opts["max_tpdu"])
    now = time.monotonic()
    sender = receiver = None
    if role == "pub":
        source_port = random.choice([p for p in range(1024, 65535) if p != port])
        sender = PgmSender(
            SenderConfig(
                gsi=os.urandom(6),
                source_port=source_port,
                data_port=port,
                nla=address,
                group=group,
                max_tpdu=opts["max_tpdu"],
                ip_overhead=overhead,
                rate=opts["rate"] * 1000 / 8,
                window_sqns=sqns,
            ),
            now,
        )
    else:
        receiver = PgmReceiver(
            ReceiverConfig(
                data_port=port,
                group=group,
                window_sqns=sqns,
                recovery_ivl=opts["recovery_ivl"] / 1000,
                max_message_size=MAX_MESSAGE,
            )
        )
    emit({"event": "ready", "endpoint": endpoint, "apdu_max": max_apdu(opts["max_tpdu"], overhead)})

    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ)
    pending = b""
    closing = False

    def stats() -> dict:
        return asdict(sender.stats if sender else receiver.stats)  # type: ignore[union-attr]

    while True:
        now = time.monotonic()
        if sender:
            sender.handle_timer(now)
            for packet in sender.datagrams():
                sock.sendto(packet, (group, port))
            if closing and not sender.pending_bytes:
                sender.close()
                for packet in sender.datagrams():
                    sock.sendto(packet, (group, port))
                return 0
            due = sender.next_timer(now)
        else:
            receiver.handle_timer(now)  # type: ignore[union-attr]
            for packet, host in receiver.datagrams():  # type: ignore[union-attr]
                sock.sendto(packet, (host, port))
            for event in receiver.events():  # type: ignore[union-attr]
                if isinstance(event, MessageReceived):
                    emit({"event": "message", "frames": [f.hex() for f in event.frames]})
                elif isinstance(event, GapReported):
                    emit({"event": "gap", "lost": event.lost})
            due = receiver.next_timer()  # type: ignore[union-attr]
            if closing:
                return 0
        timeout = None if due is None else max(0.0, due - time.monotonic())
        for key, _ in sel.select(timeout):
            if key.fileobj is sock:
                while True:
                    try:
                        datagram, (host, _port) = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    if not udp:
                        try:
                            host, _dst, datagram = wire.strip_ipv4(datagram)
                        except wire.MalformedPacket:
                            continue
                    if sender:
                        sender.packet_received(datagram, time.monotonic())
                    else:
                        receiver.packet_received(datagram, host, time.monotonic())  # type: ignore[union-attr]
            else:
                chunk = os.read(sys.stdin.fileno(), 65536)
                if not chunk:
                    closing = True
                    sel.unregister(sys.stdin.fileno())
                    continue
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if not line.strip():
                        continue
                    cmd = json.loads(line)
                    if "send" in cmd:
                        sender.send([bytes.fromhex(f) for f in cmd["send"]])  # type: ignore[union-attr]
                        emit({"event": "done"})
                    elif "stats" in cmd:
                        emit({"event": "stats", **stats()})
                        emit({"event": "done"})


if __name__ == "__main__":
    sys.exit(main())
