"""Who may connect to a bound endpoint: libzmq's TCP_ACCEPT_FILTER and IPC_FILTER_* rules.

Each option adds one rule to the socket (libzmq 4.3.5's "deprecated", still honoured, options);
a listener keeps the rules it was bound with. With no rule for its transport a listener takes
everyone; with some, a connection that no rule admits is closed as it is accepted, before a
greeting is read or a byte of state is kept for it, and the monitor sees ACCEPT_FAILED.

The parsing is libzmq's, probed against libzmq 4.3.5 through pyzmq: "address[/bits]", the
address numeric only (no host or interface names), in any form the C library reads
("127.1" included), bracketed IPv6 allowed; the bits as strtol reads them ("8x" is 8), "0"
admitting every address of the family, none meaning the whole address. With IPV6 set, an IPv4
address is kept IPv4-mapped and its bits count over 128 (so "127.0.0.1/33" is taken there and
refused without IPV6).
"""

from __future__ import annotations

import grp
import ipaddress
import pwd
import re
import socket
import struct

from .native import native_getaddrinfo

AcceptNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The longest rule libzmq takes: its length must fit an unsigned char.
MAX_RULE_BYTES = 255
#: What strtol reads of the bits: leading blanks, a sign, digits; the rest is ignored.
_LEADING_NUMBER = re.compile(r"\s*([+-]?\d+)")
#: struct ucred as SO_PEERCRED gives it on Linux: pid_t, uid_t, gid_t.
_UCRED = struct.Struct("=iII")


def parse_tcp_rule(text: bytes, ipv6: bool) -> AcceptNetwork:
    """One TCP_ACCEPT_FILTER value as a network; ValueError for one libzmq refuses."""
    if not 0 < len(text) <= MAX_RULE_BYTES:
        raise ValueError(f"a rule is 1-{MAX_RULE_BYTES} bytes")
    rule = text.split(b"\0", 1)[0].decode("ascii", "replace")  # a C string ends at NUL
    address, slash, bits_text = rule.rpartition("/")
    if not slash:
        address = rule
    elif not bits_text:
        raise ValueError("nothing after the '/'")
    if len(address) >= 2 and address[0] == "[" and address[-1] == "]":
        address = address[1:-1]
    if address == "*":  # the C library reads it as the loopback; libzmq's wildcard, not here
        raise ValueError("'*' is a bind's wildcard, not an address")
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    flags = socket.AI_NUMERICHOST | (socket.AI_V4MAPPED if ipv6 else 0)
    try:
        infos = native_getaddrinfo(address, 0, family, socket.SOCK_STREAM, flags)
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"{address!r} is not a numeric address") from None
    found = ipaddress.ip_address(infos[0][4][0].split("%", 1)[0])
    if not slash:
        bits = found.max_prefixlen
    elif bits_text == "0":
        bits = 0
    else:
        number = _LEADING_NUMBER.match(bits_text)
        bits = int(number.group(1)) if number else 0
        if not 1 <= bits <= found.max_prefixlen:
            raise ValueError(f"{bits_text!r} is not 1-{found.max_prefixlen} bits")
    return ipaddress.ip_network((int(found), bits), strict=False)


def tcp_admits(rules: tuple[AcceptNetwork, ...], peer: str) -> bool:
    """Does a rule take a TCP peer at this address? An IPv4 peer meets an IPv4-mapped rule as
    the mapped address it would be on a dual-stack socket."""
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = address
    if address.version == 4:
        mapped = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed)
    return any((mapped if rule.version == 6 else address) in rule for rule in rules)


def ipc_admits(
    uids: frozenset[int], gids: frozenset[int], pids: frozenset[int], sock: socket.socket
) -> bool:
    """Does a rule take the process at the other end of this Unix socket? Its user, its
    primary group or its process id listed, or its user a member of a listed group (looked up
    in the system's user and group databases, as libzmq does)."""
    try:
        pid, uid, gid = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
    except (OSError, AttributeError, struct.error):
        return False
    if uid in uids or gid in gids or pid in pids:
        return True
    if not gids:
        return False
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    for listed in gids:
        try:
            if user in grp.getgrgid(listed).gr_mem:
                return True
        except KeyError:
            continue
    return False
