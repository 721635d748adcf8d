"""The engine's PGM codecs against libzmq with OpenPGM, on a two-namespace LAN, with loss.

Before any engine socket uses them, the sans-I/O source and receiver run over plain sockets
(tests/peers/pgm_codec_peer.py: UDP for epgm, raw IP protocol 113 for pgm) against Debian's
libzmq 4.3.4 (tests/peers/zmq_peer.py), both directions. nftables on the receiving side
drops chosen ODATA packets as they arrive; the receiver must NAK them, the source confirm and
resend them, and every message must arrive whole and in order. When the repairs are dropped
too, the engine's receiver must report a gap and go on, never deliver a broken message.
"""

from __future__ import annotations

import os

import pytest
from pgmkit import LOST, RATE_KBIT, endpoint, frames_of, messages, odata_rule, one_by_one, stats

from loadtest import netns

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


@pytest.mark.parametrize("scheme", ["epgm", "pgm"])
def test_libzmq_pub_to_engine_receiver_repairs_loss(
    scheme: str, lossy: netns.VethPair, system_peer, codec_peer
) -> None:  # type: ignore[no-untyped-def]
    net = lossy
    net.drop(net.ns_b, [odata_rule(scheme, n) for n in LOST])
    sub = codec_peer(net, net.ns_b, "sub", endpoint(scheme, net.address_b))
    pub = system_peer(
        net, net.ns_a, "pub", endpoint(scheme, net.address_a), "connect", RATE=RATE_KBIT
    )
    sent = messages()
    assert one_by_one(pub, sub, sent) == sent
    assert net.dropped(net.ns_b) == [1, 1, 1]  # each lost on the wire once
    got = stats(sub)
    assert got["repaired"] == len(LOST) and got["naks_sent"] >= 1 and got["gaps"] == 0


@pytest.mark.parametrize("scheme", ["epgm", "pgm"])
def test_engine_source_to_libzmq_sub_repairs_loss(
    scheme: str, lossy: netns.VethPair, system_peer, codec_peer
) -> None:  # type: ignore[no-untyped-def]
    net = lossy
    net.drop(net.ns_b, [odata_rule(scheme, n) for n in LOST])
    sub = system_peer(net, net.ns_b, "sub", endpoint(scheme, net.address_b), "connect")
    sub.command(subscribe="")
    pub = codec_peer(net, net.ns_a, "pub", endpoint(scheme, net.address_a), rate=RATE_KBIT)
    sent = messages()
    assert one_by_one(pub, sub, sent) == sent
    assert net.dropped(net.ns_b) == [1, 1, 1]
    got = stats(pub)
    assert got["rdata"] >= len(LOST) and got["ncf"] >= 1 and got["naks"] >= 1


def test_unrepairable_loss_is_reported_as_a_gap(
    lossy: netns.VethPair, system_peer, codec_peer
) -> None:  # type: ignore[no-untyped-def]
    """libzmq keeps resending, the network keeps losing: after RECOVERY_IVL the engine's
    receiver gives up, reports the gap, drops that message, and delivers the rest whole."""
    net = lossy
    net.drop(net.ns_b, [odata_rule("epgm", 3, repairs_too=True)])
    sub = codec_peer(net, net.ns_b, "sub", endpoint("epgm", net.address_b), recovery_ivl=1000)
    pub = system_peer(
        net, net.ns_a, "pub", endpoint("epgm", net.address_a), "connect", RATE=RATE_KBIT
    )
    sent = [[b"t", f"m{i}".encode()] for i in range(8)]
    # Sequences 0-2 carry the first three (each waited for); 3, which the network loses, the
    # fourth message or the first few of the rest that libzmq packs together.
    assert one_by_one(pub, sub, sent[:3]) == sent[:3]
    for frames in sent[3:]:
        pub.command(send=[f.hex() for f in frames])
    assert sub.next_event("gap", timeout=10)["lost"] == 1
    after = [b"t", b"after the gap"]
    pub.command(send=[f.hex() for f in after])
    got: list[list[bytes]] = []
    while after not in got:
        got += frames_of(sub.messages(1))
    # What the lost packet carried (one message, or a few that libzmq packed together) is
    # gone; everything else arrived whole and in order.
    it = iter([*sent[3:], after])
    assert all(any(m == s for s in it) for m in got)
    assert len(got) < len(sent[3:]) + 1
    assert net.dropped(net.ns_b)[0] >= 2  # the ODATA and at least one RDATA


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the error without root")
def test_pgm_without_root_says_so() -> None:
    import subprocess
    import sys

    from peerkit import HERE

    done = subprocess.run(
        [sys.executable, str(HERE / "pgm_codec_peer.py"), "sub", "pgm://127.0.0.1;239.1.1.1:5555"],
        capture_output=True,
        text=True,
        timeout=30,
        input="",
    )
    assert done.returncode != 0 and "Operation not permitted" in done.stderr
