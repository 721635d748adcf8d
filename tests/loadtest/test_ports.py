"""Ports for processes that bind later (loadtest/ports.py): free, distinct, and from below the
kernel's ephemeral range, where no outgoing connection or bind to port 0 elsewhere can take
one before its process binds it."""

from __future__ import annotations

import socket

from loadtest.ports import LOWEST_PORT, ephemeral_low, free_port, free_ports, unused_port


def test_chosen_ports_are_free_distinct_and_below_the_ephemeral_range() -> None:
    low = ephemeral_low()
    assert low > LOWEST_PORT + 100  # this machine has room below its range
    ports = [*free_ports(12), free_port(), unused_port(with_port_below=True)]
    assert len(set(ports[:12])) == 12
    assert all(LOWEST_PORT < port < low for port in ports)
    for port in ports:  # free: each binds now
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_given() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", unused_port()))
        taken = held.getsockname()[1]
        for _ in range(200):
            assert unused_port() != taken
            assert unused_port(with_port_below=True) - 1 != taken
