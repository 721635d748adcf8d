"""The engine's udp:// datagram codec over a plain UDP socket, driven like system_peer.py.

    python udp_codec_peer.py radio HOST:PORT [iface=ADDRESS]       send datagrams there
    python udp_codec_peer.py dish HOST:PORT [iface=ADDRESS]        read datagrams there

For a dish, HOST may be a multicast group (joined on `iface`). Events: ready, message (group and
frames as hex, as peer.js prints a DISH's messages), stats (on request). Commands: {"send":
[hex], "group": hex} (radio), {"raw": hex} (radio: any bytes, to test what a dish drops),
{"stats": true}. Exits when stdin closes.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine import udp_datagram as udp


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    role, target, *rest = sys.argv[1:]
    options = dict(kv.split("=", 1) for kv in rest)
    host, port_text = target.rsplit(":", 1)
    port = int(port_text)
    iface = options.get("iface", "0.0.0.0")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    multicast = socket.inet_aton(host)[0] >> 4 == 0xE
    if role == "dish":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0" if multicast else host, port))
        if multicast:
            membership = socket.inet_aton(host) + socket.inet_aton(iface)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    elif multicast:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    codec = udp.DatagramCodec()
    emit({"event": "ready", "endpoint": target})
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ)
    pending = b""
    while True:
        for key, _ in sel.select():
            if key.fileobj is sock:
                datagram = sock.recv(udp.READ_SIZE)
                decoded = codec.decode(datagram)
                if decoded is not None:
                    group, body = decoded
                    emit({"event": "message", "group": group.hex(), "frames": [body.hex()]})
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                return 0
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not line.strip():
                    continue
                cmd = json.loads(line)
                if "send" in cmd:
                    (body,) = cmd["send"]
                    datagram = udp.encode_radio(bytes.fromhex(cmd["group"]), bytes.fromhex(body))
                    sock.sendto(datagram, (host, port))
                elif "raw" in cmd:
                    sock.sendto(bytes.fromhex(cmd["raw"]), (host, port))
                elif "stats" in cmd:
                    emit(
                        {
                            "event": "stats",
                            "received": codec.received,
                            "malformed": codec.malformed,
                            "oversize": codec.oversize,
                        }
                    )
                emit({"event": "done"})


if __name__ == "__main__":
    sys.exit(main())
