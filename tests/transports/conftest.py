"""Fixtures for the transport tests: a two-host LAN in network namespaces, and reference peers
(zeromq.js, Debian's python3-zmq) started on demand and killed by PID at teardown."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))  # peerkit

from peerkit import (
    LinePeer,
    codec_argv,
    engine_argv,
    js_argv,
    js_unavailable,
    system_argv,
    system_unavailable,
)
from pgmkit import in_ns

from loadtest import netns


@pytest.fixture
def veth() -> Iterator[netns.VethPair]:
    """Two namespaces joined by a veth with a multicast route; skips where they cannot be made."""
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    netns.reap_stale()
    pair = netns.VethPair()
    with pair:
        yield pair


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[list[LinePeer]]:
    """Every reference peer a test starts; all killed by PID at teardown."""
    started: list[LinePeer] = []
    yield started
    while started:
        started.pop().close()


@pytest.fixture
def js_peer(peers: list[LinePeer], tmp_path: Path) -> Callable[..., LinePeer]:
    """Start a zeromq.js socket: js_peer("dish", "udp://...", "bind") -> a ready LinePeer."""
    reason = js_unavailable()
    if reason:
        pytest.skip(reason)

    def start(
        socket_type: str,
        endpoint: str,
        mode: str,
        spawn: Callable[..., object] | None = None,
        **options: object,
    ) -> LinePeer:
        """`spawn` runs it elsewhere (e.g. in a namespace: lambda argv, **kw: veth.spawn(...))."""
        peer = LinePeer(
            js_argv(socket_type, endpoint, mode, **options),
            tmp_path / f"js-{socket_type}-{len(peers)}.log",
            spawn=spawn,
        )
        peers.append(peer)
        peer.next_event("ready")
        return peer

    return start


@pytest.fixture
def system_peer(peers: list[LinePeer], tmp_path: Path) -> Callable[..., LinePeer]:
    """Start a python3-zmq (OpenPGM) socket inside a namespace of `veth`:
    system_peer(veth, ns, "sub", "epgm://...", "connect", RATE=...) -> ready LinePeer."""
    reason = system_unavailable()
    if reason:
        pytest.skip(reason)
    return _starter(peers, tmp_path, system_argv, "sys")


def _starter(peers: list[LinePeer], tmp_path: Path, argv_of: Callable[..., list[str]], tag: str):  # type: ignore[no-untyped-def]
    def start(pair: netns.VethPair, ns: str, *args: str, **options: object) -> LinePeer:
        peer = LinePeer(
            argv_of(*args, **options),
            tmp_path / f"{tag}-{args[0]}-{len(peers)}.log",
            spawn=in_ns(pair, ns),
        )
        peers.append(peer)
        peer.next_event("ready")
        return peer

    return start


@pytest.fixture
def codec_peer(peers: list[LinePeer], tmp_path: Path) -> Callable[..., LinePeer]:
    """The engine's sans-I/O PGM codecs over plain sockets, inside a namespace of `veth`:
    codec_peer(veth, ns, "sub", "epgm://...", recovery_ivl=...) -> a ready LinePeer."""
    return _starter(peers, tmp_path, codec_argv, "codec")


@pytest.fixture
def engine_peer(peers: list[LinePeer], tmp_path: Path) -> Callable[..., LinePeer]:
    """An engine socket (zmq_peer.py --engine) inside a namespace of `veth`:
    engine_peer(veth, ns, "sub", "epgm://...", "connect", RATE=...) -> a ready LinePeer."""
    return _starter(peers, tmp_path, engine_argv, "engine")


@pytest.fixture
def lossy(veth: netns.VethPair) -> netns.VethPair:
    """`veth`, where nftables can drop or count chosen packets (skips where nft is missing)."""
    reason = netns.nft_unavailable()
    if reason:
        pytest.skip(reason)
    return veth
