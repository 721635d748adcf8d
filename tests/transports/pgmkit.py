"""What the PGM interop tests share: the LAN's group, the loss they inject, the messages they
send, and how they drive a publisher and a subscriber (reference peers or the engine's)."""

from __future__ import annotations

from collections.abc import Callable

from peerkit import LinePeer

from loadtest import netns

GROUP, PORT = "239.192.1.1", 5555
#: ODATA sequences the network loses (libzmq numbers from 0: one APDU per message sent apart).
LOST = (2, 5, 6)
#: Fast enough that a 6 KB message is not slowed by the default 100 kbit/s.
RATE_KBIT = 10000


def messages() -> list[list[bytes]]:
    """Small messages, a multipart one, and one that spans five APDUs."""
    out = [[b"room.hall", f"event {i}".encode()] for i in range(10)]
    out.insert(4, [b"room.hall", b"part one", b"part two", b""])
    out.insert(8, [b"room.big", bytes(range(256)) * 25])
    return out


def odata_rule(scheme: str, sqn: int, *, repairs_too: bool = False) -> str:
    """An nft match for the data packet with this sequence (PGM type 4 = ODATA, 5 = RDATA)."""
    if scheme == "epgm":  # PGM inside UDP: its type is 12 bytes into the UDP header, sqn 24
        kind = "@th,96,8 { 4, 5 }" if repairs_too else "@th,96,8 4"
        return f"udp dport {PORT} {kind} @th,192,32 {sqn}"
    kind = "@th,32,8 { 4, 5 }" if repairs_too else "@th,32,8 4"
    return f"ip protocol 113 {kind} @th,128,32 {sqn}"


def endpoint(scheme: str, address: str) -> str:
    return f"{scheme}://{address};{GROUP}:{PORT}"


def in_ns(veth: netns.VethPair, ns: str) -> Callable[..., object]:
    """A spawn function that starts a peer inside namespace `ns`."""
    return lambda argv, **kw: veth.spawn(ns, argv, **kw)


def stats(peer: LinePeer) -> dict:
    """A codec peer's counters (pgm_codec_peer.py)."""
    assert peer.process.stdin is not None
    peer.process.stdin.write('{"stats": true}\n')
    peer.process.stdin.flush()
    return peer.next_event("stats")


def frames_of(events: list[dict]) -> list[list[bytes]]:
    return [[bytes.fromhex(f) for f in e["frames"]] for e in events]


def one_by_one(pub: LinePeer, sub: LinePeer, sent: list[list[bytes]]) -> list[list[bytes]]:
    """Send each message once the previous one arrived: then each message is its own APDUs,
    so the sequence numbers in LOST are the ones meant, whichever side packs the stream."""
    received = []
    for frames in sent:
        pub.command(send=[f.hex() for f in frames])
        received += frames_of(sub.messages(1))
    return received
