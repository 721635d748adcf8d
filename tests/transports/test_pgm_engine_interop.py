"""Engine PUB/SUB (and XPUB/XSUB) over pgm:// and epgm:// against libzmq with OpenPGM.

Each side runs in its own network namespace of a two-host LAN (loadtest.netns): the engine's
sync face and Debian's libzmq 4.3.4 drive the same peer script (tests/peers/zmq_peer.py).
nftables on the receiving side drops chosen ODATA packets as they arrive; the receiver must
NAK, the source confirm and repair, and every message must arrive whole and in order. The
options RATE, RECOVERY_IVL and MULTICAST_HOPS must do what libzmq's do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from logkit import wait_log_line
from pgmkit import (
    GROUP,
    LOST,
    PORT,
    RATE_KBIT,
    endpoint,
    frames_of,
    messages,
    odata_rule,
    one_by_one,
)

from loadtest import netns

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scheme", ["epgm", "pgm"])
def test_libzmq_pub_to_engine_sub_repairs_loss(
    scheme: str, lossy: netns.VethPair, system_peer, engine_peer
) -> None:  # type: ignore[no-untyped-def]
    net = lossy
    net.drop(net.ns_b, [odata_rule(scheme, n) for n in LOST])
    sub = engine_peer(net, net.ns_b, "sub", endpoint(scheme, net.address_b), "connect")
    sub.command(subscribe="")
    pub = system_peer(
        net, net.ns_a, "pub", endpoint(scheme, net.address_a), "connect", RATE=RATE_KBIT
    )
    sent = messages()
    assert one_by_one(pub, sub, sent) == sent
    assert net.dropped(net.ns_b) == [1, 1, 1]  # each lost on the wire once, and repaired


@pytest.mark.parametrize("scheme", ["epgm", "pgm"])
def test_engine_pub_to_libzmq_sub_repairs_loss(
    scheme: str, lossy: netns.VethPair, system_peer, engine_peer
) -> None:  # type: ignore[no-untyped-def]
    net = lossy
    net.drop(net.ns_b, [odata_rule(scheme, n) for n in LOST])
    sub = system_peer(net, net.ns_b, "sub", endpoint(scheme, net.address_b), "connect")
    sub.command(subscribe="")
    pub = engine_peer(
        net, net.ns_a, "pub", endpoint(scheme, net.address_a), "connect", RATE=RATE_KBIT
    )
    sent = messages()
    assert one_by_one(pub, sub, sent) == sent
    assert net.dropped(net.ns_b) == [1, 1, 1]


def test_engine_to_engine_with_a_burst_lost(lossy: netns.VethPair, engine_peer) -> None:  # type: ignore[no-untyped-def]
    """Messages sent back to back (packed several per packet, some over several packets)
    with a run of packets lost: all repaired, all in order, the SUB filtering by topic."""
    net = lossy
    net.drop(net.ns_b, [odata_rule("epgm", n) for n in range(3, 9)])
    sub = engine_peer(net, net.ns_b, "sub", endpoint("epgm", net.address_b), "bind")
    sub.command(subscribe=b"room.".hex())
    pub = engine_peer(net, net.ns_a, "pub", endpoint("epgm", net.address_a), "bind", RATE=RATE_KBIT)
    sent = [[b"room.%d" % (i % 3), bytes([i]) * (40 * i)] for i in range(120)]
    for frames in sent:
        pub.command(send=[f.hex() for f in frames])
        if frames[0] == b"room.0":
            pub.command(send=[b"other".hex(), b"filtered out".hex()])
    assert frames_of(sub.messages(len(sent))) == sent
    assert net.dropped(net.ns_b) == [1] * 6


def test_xpub_and_xsub(veth: netns.VethPair, system_peer, engine_peer) -> None:  # type: ignore[no-untyped-def]
    """An engine XPUB sends everything over PGM (no subscriptions travel), and a libzmq SUB
    filters; an XSUB filters nothing itself, libzmq's as the engine's (only a SUB does), so
    over PGM each takes every message whatever it subscribed to."""
    net = veth
    sub = system_peer(net, net.ns_b, "sub", endpoint("epgm", net.address_b), "connect")
    sub.command(subscribe=b"a".hex())
    xpub = engine_peer(net, net.ns_a, "xpub", endpoint("epgm", net.address_a), "connect")
    xpub.command(send=[b"b-topic".hex(), b"dropped by the SUB".hex()])
    xpub.command(send=[b"a-topic".hex(), b"kept".hex()])
    assert frames_of(sub.messages(1)) == [[b"a-topic", b"kept"]]
    everything = [[b"b", b"not asked for"], [b"a", b"asked for"]]
    # Other groups and ports: OpenPGM's socket on PORT does not share it (no SO_REUSEADDR).
    for group, (receiving, sending) in enumerate(
        ((engine_peer, system_peer), (system_peer, engine_peer)), start=2
    ):
        port = 5554 + group
        xsub = receiving(
            net, net.ns_b, "xsub", f"epgm://{net.address_b};239.192.1.{group}:{port}", "connect"
        )
        xsub.command(send=[b"\x01a".hex()])  # XSUB: a subscription is a message
        pub = sending(
            net, net.ns_a, "pub", f"epgm://{net.address_a};239.192.1.{group}:{port}", "connect"
        )
        for frames in everything:
            pub.command(send=[f.hex() for f in frames])
        assert frames_of(xsub.messages(2)) == everything


def test_rate_paces_the_source(veth: netns.VethPair, system_peer, engine_peer) -> None:  # type: ignore[no-untyped-def]
    """RATE is kbit/s on the wire: 100 KiB at 400 kbit/s cannot arrive in under about 2 s."""
    net = veth
    sub = system_peer(net, net.ns_b, "sub", endpoint("epgm", net.address_b), "connect")
    sub.command(subscribe="")
    pub = engine_peer(net, net.ns_a, "pub", endpoint("epgm", net.address_a), "connect", RATE=400)
    pub.command(send=[b"t".hex(), b"warm-up".hex()])
    sub.messages(1)
    body = bytes(1024)
    start = time.monotonic()
    for _ in range(100):
        pub.command(send=[b"t".hex(), body.hex()])
    sub.messages(100, timeout=60)
    elapsed = time.monotonic() - start
    wire_bytes = 100 * (len(body) + 4 + 2 + 24 + 28)  # framing, offset, PGM and IP/UDP headers
    assert elapsed >= 0.9 * wire_bytes * 8 / 400_000, elapsed


def test_multicast_hops_is_the_ttl(lossy: netns.VethPair, engine_peer, system_peer) -> None:  # type: ignore[no-untyped-def]
    net = lossy  # its packets are counted with nftables
    net.count(net.ns_b, [f"udp dport {PORT} ip ttl 7", f"udp dport {PORT} ip ttl != 7"])
    sub = system_peer(net, net.ns_b, "sub", endpoint("epgm", net.address_b), "connect")
    sub.command(subscribe="")
    pub = engine_peer(
        net, net.ns_a, "pub", endpoint("epgm", net.address_a), "connect", MULTICAST_HOPS=7
    )
    pub.command(send=[b"t".hex(), b"hop".hex()])
    assert frames_of(sub.messages(1)) == [[b"t", b"hop"]]
    with_ttl_7, others = net.counted(net.ns_b)
    assert with_ttl_7 >= 1 and others == 0


def test_recovery_interval_bounds_the_wait_and_the_gap_is_reported(
    lossy: netns.VethPair, system_peer, engine_peer
) -> None:  # type: ignore[no-untyped-def]
    """libzmq keeps repairing, the network keeps losing one packet: after RECOVERY_IVL the
    engine gives up on it, logs the gap, and delivers everything after it, whole.

    The lost packet carries one message alone: the next ones are sent once the engine has
    given up (it learns of packet 2 from the source's heartbeat SPMs). Sent at once, libzmq
    could pack them all into packet 2, and then nothing would be left to deliver."""
    net = lossy
    net.drop(net.ns_b, [odata_rule("epgm", 2, repairs_too=True)])
    sub = engine_peer(
        net, net.ns_b, "sub", endpoint("epgm", net.address_b), "connect", RECOVERY_IVL=1000
    )
    sub.command(subscribe="")
    pub = system_peer(
        net, net.ns_a, "pub", endpoint("epgm", net.address_a), "connect", RATE=RATE_KBIT
    )
    sent = [[b"t", b"m%d" % i] for i in range(6)]
    assert one_by_one(pub, sub, sent[:2]) == sent[:2]
    start = time.monotonic()
    pub.command(send=[f.hex() for f in sent[2]])  # packet 2, which the network loses
    wait_log_line(sub.log, "lost for good", timeout=15)
    assert time.monotonic() - start >= 0.9  # RECOVERY_IVL, not the 10 s default
    for frames in sent[3:]:
        pub.command(send=[f.hex() for f in frames])
    got = frames_of(sub.messages(len(sent) - 3, timeout=15))
    assert got == sent[3:]  # what packet 2 carried is gone; everything after it came whole


def test_pgm_without_root_says_so() -> None:
    """A raw IP socket needs root, or rather CAP_NET_RAW: without it the error says so, and
    names epgm:// as the way without privilege. (As root, the capability is dropped for the
    child with setpriv, which is what an unprivileged user lacks.)"""
    script = (
        "import engine as zmq\n"
        "s = zmq.Context().socket(zmq.SUB)\n"
        f"try:\n    s.connect('pgm://127.0.0.1;{GROUP}:{PORT}')\n"
        "except zmq.ZMQError as e:\n    print(e.errno, e)\n"
    )
    argv = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root, and no setpriv to drop CAP_NET_RAW")
        argv = ["setpriv", "--bounding-set=-net_raw", *argv]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    errno, _, text = done.stdout.strip().partition(" ")
    assert int(errno) == 1  # EPERM
    assert "root" in text and "epgm://" in text
