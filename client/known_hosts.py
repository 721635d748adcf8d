"""The client's name for the key-pinning logic, which lives in gameserver.known_hosts because
relays, `crossroads ping` and the load tester share it (one decision, one place)."""

from gameserver.known_hosts import (
    KeysError,
    KnownHosts,
    ServerKeyChanged,
    add_key_options,
    add_updates_key_options,
    fetch_announced_key,
    key_endpoint_for,
    key_from_options,
    known_hosts_path,
    parse_known_hosts,
    render_known_hosts,
    server_key,
    updates_key_from_options,
)

__all__ = [
    "KeysError",
    "KnownHosts",
    "ServerKeyChanged",
    "add_key_options",
    "add_updates_key_options",
    "fetch_announced_key",
    "key_endpoint_for",
    "key_from_options",
    "known_hosts_path",
    "parse_known_hosts",
    "render_known_hosts",
    "server_key",
    "updates_key_from_options",
]
