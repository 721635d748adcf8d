"""The namespace helper every multicast test stands on: names, routes, idempotence, cleanup."""

from __future__ import annotations

import subprocess
import sys

from loadtest import netns


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_pair_is_a_lan_with_a_multicast_route(veth: netns.VethPair) -> None:
    assert {veth.ns_a, veth.ns_b} <= namespaces()
    for ns, dev, addr in veth.ends():
        assert f"inet {addr}/24" in veth.run(ns, "ip", "addr", "show", "dev", dev)
        assert f"224.0.0.0/4 dev {dev}" in veth.run(ns, "ip", "route", "show")


def test_up_and_down_are_idempotent_and_names_unique(veth: netns.VethPair) -> None:
    other = netns.VethPair()
    assert other.ns_a != veth.ns_a and other.dev_a != veth.dev_a
    other.up()
    other.up()  # a second up is a no-op
    assert {other.ns_a, other.ns_b} <= namespaces()
    other.down()
    other.down()  # and so is a second down
    assert not {other.ns_a, other.ns_b} & namespaces()
    assert {veth.ns_a, veth.ns_b} <= namespaces()  # the fixture's pair was left alone


def test_down_kills_what_spawn_started(veth: netns.VethPair) -> None:
    other = netns.VethPair().up()
    proc = other.spawn(other.ns_a, ["sleep", "60"])
    other.down()
    assert proc.poll() is not None


def test_reap_stale_removes_pairs_of_dead_runs(veth: netns.VethPair) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a PID that no longer runs: the pair below looks left behind by it
    # Built under the reap lock: the suite's other processes reap too (the fixtures do), and
    # one killed this pair's `ip` commands mid-build (CI, 2026-12-07: "link set up: -9").
    with netns.reap_lock():
        stale = netns.VethPair(tag=f"{dead.pid}x0").up()
    netns.reap_stale()
    # Gone: by this reap, or by another process's that came between.
    assert not {stale.ns_a, stale.ns_b} & namespaces()
    assert {veth.ns_a, veth.ns_b} <= namespaces()  # a live run's pair is kept


def test_multicast_crosses_the_veth(veth: netns.VethPair) -> None:
    """A UDP datagram to a group, sent in a, arrives in b: the route and the veth carry it."""
    receive = (
        "import socket,struct,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('0.0.0.0',5999))\n"
        "s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,"
        f"socket.inet_aton('239.192.9.9')+socket.inet_aton('{veth.address_b}'))\n"
        "print('ready',flush=True)\n"
        "s.settimeout(10)\n"
        "print(s.recv(100).decode(),flush=True)\n"
    )
    rx = veth.spawn(veth.ns_b, [sys.executable, "-c", receive], stdout=subprocess.PIPE, text=True)
    assert rx.stdout is not None
    assert rx.stdout.readline().strip() == "ready"
    send = (
        "import socket\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('{veth.address_a}'))\n"
        "s.sendto(b'over the lan',('239.192.9.9',5999))\n"
    )
    veth.run(veth.ns_a, sys.executable, "-c", send)
    assert rx.stdout.readline().strip() == "over the lan"


def test_a_lan_behind_an_existing_namespace(veth: netns.VethPair) -> None:
    """A second pair can hang a new namespace off one that exists (a LAN behind a relay host):
    down() removes only the new side and leaves the existing one as it was."""
    lan = netns.VethPair(existing_a=veth.ns_b).up()
    assert lan.ns_a == veth.ns_b and lan.ns_b in namespaces()
    assert f"inet {lan.address_a}/24" in lan.run(lan.ns_a, "ip", "addr", "show", "dev", lan.dev_a)
    lan.down()
    assert lan.ns_b not in namespaces()
    assert {veth.ns_a, veth.ns_b} <= namespaces()
    assert lan.dev_a not in veth.run(veth.ns_b, "ip", "link", "show")
