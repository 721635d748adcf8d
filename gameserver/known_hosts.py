"""Which key each server has: the known-hosts file, and trust on first use.

Shared by everything that talks to a front's or relay's player ports (the player's client,
relays upstream, `crossroads ping`, the admin shell, the load tester): one place decides
which key to trust, so none of them can be laxer than the others.

A front with secure player ports speaks CURVE, so the client must know its public key before
the first byte. The key comes from, in order: ``--server-key`` (or ``CROSSROADS_SERVER_KEY``);
the known-hosts file (``<data dir>/crossroads/known_hosts``: one ``ENDPOINT KEY`` per line, as
SSH keeps host keys); else the front's key announcement, trusted on first use and remembered.

Every start also asks the announcement: a key different from the remembered one is refused
with a loud message (the server was re-keyed, or someone is in the path), and nothing is sent.
An unreachable announcement never downgrades a remembered server to plaintext.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import re
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import engine
from engine.security import z85

from .cluster_keys import KEY_REQUEST, KeysError, public_key
from .settings import data_dir

log = logging.getLogger(__name__)

#: The key announcement listens one port below the action port by convention: the front's
#: 7300 beside its 7301, a relay's 7310 beside its 7311.
KEY_PORT_OFFSET = -1
KEY_LENGTH = 40
SERVER_KEY_ENV = "CROSSROADS_SERVER_KEY"
#: A known-hosts file is small; a huge one is not ours to read whole.
MAX_FILE_BYTES = 1 << 20
MAX_ENDPOINT = 255
_TCP = re.compile(r"^tcp://(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)$")


class ServerKeyChanged(RuntimeError):
    """The server offers a key other than the one remembered for it."""


def known_hosts_path() -> Path:
    return data_dir() / "known_hosts"


def key_endpoint_for(actions: str) -> str | None:
    """The key announcement beside an action endpoint (same host, the port below); None if
    not tcp."""
    match = _TCP.match(actions)
    if match is None or int(match["port"]) + KEY_PORT_OFFSET <= 0:
        return None
    return f"tcp://{match['host']}:{int(match['port']) + KEY_PORT_OFFSET}"


def valid_key(text: str) -> bool:
    if len(text) != KEY_LENGTH:
        return False
    try:
        z85.decode(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
    return True


def parse_known_hosts(text: str) -> dict[str, str]:
    """``ENDPOINT KEY`` lines; comments, blanks and malformed lines are skipped (never raise)."""
    hosts: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or line.lstrip().startswith("#"):
            continue
        endpoint, key = parts
        if len(endpoint) <= MAX_ENDPOINT and valid_key(key):
            hosts[endpoint] = key
    return hosts


def render_known_hosts(hosts: dict[str, str]) -> str:
    lines = ["# Crossroads known hosts: ENDPOINT CURVE-PUBLIC-KEY (remove a line to re-trust)"]
    lines += [f"{endpoint} {key}" for endpoint, key in sorted(hosts.items())]
    return "\n".join(lines) + "\n"


@dataclass
class KnownHosts:
    path: Path

    def load(self) -> dict[str, str]:
        try:
            with self.path.open("rb") as fh:
                raw = fh.read(MAX_FILE_BYTES)
        except FileNotFoundError:
            return {}
        return parse_known_hosts(raw.decode("utf-8", "replace"))

    def remember(self, endpoint: str, key: str) -> None:
        """Keep `key` for `endpoint`; a file that cannot be written (a read-only container)
        only costs the pin: the key is still used, and checked again next time."""
        try:
            self._write(endpoint, key)
        except OSError as exc:
            log.warning("cannot remember %s's key in %s: %s", endpoint, self.path, exc)

    def _write(self, endpoint: str, key: str) -> None:
        # Several processes may learn keys at once (a load test's Locust workers, a player's
        # two clients): each writes a temporary file of its own, and a lock beside the file
        # makes read-add-replace one step, so no writer fails on another's rename or drops
        # the entry another has just added.
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            hosts = self.load()
            hosts[endpoint] = key
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=self.path.name + ".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(render_known_hosts(hosts))
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


def unreachable(endpoint: str, timeout: float) -> str | None:
    """Why nothing listens at a tcp:// or ipc:// ``endpoint``, from a plain connect; None if
    something does (or for another transport: the ZeroMQ request will find out). A server
    that is down refuses at once, where a ZeroMQ request would wait out its whole timeout."""
    match = _TCP.match(endpoint)
    try:
        if match is not None:
            address = (match["host"].strip("[]"), int(match["port"]))
            with socket.create_connection(address, timeout):
                return None
        if endpoint.startswith("ipc://"):
            with socket.socket(socket.AF_UNIX) as unix:
                unix.settimeout(timeout)
                unix.connect(endpoint.removeprefix("ipc://"))
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None


def fetch_announced_key(endpoint: str, timeout: float = 2.0) -> str | None:
    """The key a server announces at `endpoint`; None when nothing valid answers in time."""
    if unreachable(endpoint, timeout) is not None:
        return None
    context = engine.Context()
    try:
        sock = context.socket(engine.REQ)
        sock.linger = 0
        sock.setsockopt(engine.MAXMSGSIZE, 256)
        # A CURVE port given by mistake refuses the handshake and the connection ends for
        # good: the request then has nowhere to go, so the send must give up in time too.
        sock.sndtimeo = max(1, int(timeout * 1000))
        sock.connect(endpoint)
        sock.send(KEY_REQUEST)
        if not sock.poll(int(timeout * 1000)):
            return None
        answer = sock.recv_multipart()
    except engine.ZMQError:
        return None
    finally:
        context.destroy(linger=0)
    if len(answer) != 1:
        return None
    text = answer[0].decode("ascii", "replace")
    return text if valid_key(text) else None


def server_key(
    actions: str,
    *,
    given: str | None = None,
    known_hosts: KnownHosts | None = None,
    key_endpoint: str | None = None,
    timeout: float = 2.0,
    on_first_use: Callable[[str], None] | None = None,
) -> bytes | None:
    """The CURVE key to use for the front at `actions` (None: the server offers none).

    Raises ServerKeyChanged when the announced key differs from the remembered one, and
    KeysError for a malformed --server-key.
    """
    hosts = known_hosts or KnownHosts(known_hosts_path())
    if given:
        key = public_key(given).decode()
        hosts.remember(actions, key)
        return key.encode()
    pinned = hosts.load().get(actions)
    where = key_endpoint or key_endpoint_for(actions)
    announced = fetch_announced_key(where, timeout) if where else None
    if pinned is not None:
        if announced is not None and announced != pinned:
            raise ServerKeyChanged(
                f"THE SERVER KEY FOR {actions} HAS CHANGED: remembered {pinned}, offered "
                f"{announced}. Someone may be intercepting the connection, or the server was "
                f"re-keyed. Nothing was sent. If the operator confirms the new key, remove the "
                f"line from {hosts.path} or pass --server-key."
            )
        return pinned.encode()
    if announced is None:
        return None
    hosts.remember(actions, announced)
    if on_first_use is not None:
        on_first_use(announced)
    return announced.encode()


# -- the same options and the same decision for every command that connects to players' ports --


def add_key_options(parser: argparse.ArgumentParser, server: str = "--server") -> None:
    """--server-key, --known-hosts and --key-endpoint, as `crossroads play` has them."""
    parser.add_argument(
        "--server-key",
        default=os.environ.get(SERVER_KEY_ENV) or None,
        metavar="KEY",
        help=f"the server's CURVE public key (Z85 or a .key file; env {SERVER_KEY_ENV}); "
        "default: the one remembered in --known-hosts, else the server's announcement, "
        "trusted on first use; a key that starts with '-' goes as --server-key=KEY",
    )
    parser.add_argument(
        "--known-hosts",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"remembered server keys (default: {known_hosts_path()})",
    )
    parser.add_argument(
        "--key-endpoint",
        default=None,
        metavar="ENDPOINT",
        help=f"where the server announces its key (default: the {server} host, the port below "
        f"{server}'s: 7300 for a front's 7301, 7310 for a relay's 7311)",
    )


def key_from_options(
    args: argparse.Namespace,
    actions: str,
    *,
    timeout: float = 2.0,
    on_first_use: Callable[[str], None] | None = None,
) -> bytes | None:
    """`server_key` for the options `add_key_options` added; raises ServerKeyChanged or
    KeysError (print them as one line)."""
    return server_key(
        actions,
        given=args.server_key,
        known_hosts=KnownHosts(args.known_hosts or known_hosts_path()),
        key_endpoint=args.key_endpoint,
        timeout=timeout,
        on_first_use=on_first_use,
    )


def add_updates_key_options(parser: argparse.ArgumentParser) -> None:
    """--updates-key and --updates-key-endpoint: for updates from a server other than the
    actions' (a relay's region, its own key, while actions go to the front)."""
    parser.add_argument(
        "--updates-key",
        default=None,
        metavar="KEY",
        help="the updates server's CURVE public key when it is not the --server's (default: "
        "the --server's key; one that starts with '-' goes as --updates-key=KEY)",
    )
    parser.add_argument(
        "--updates-key-endpoint",
        default=None,
        metavar="ENDPOINT",
        help="where the updates server announces its key, trusted on first use and pinned "
        "(a relay's 7310 for its 7312)",
    )


def updates_key_from_options(
    args: argparse.Namespace, updates: str, *, timeout: float = 2.0
) -> bytes | None:
    """The updates server's own key, or None: the same server (and key) as the actions'."""
    if not args.updates_key and not args.updates_key_endpoint:
        return None
    return server_key(
        updates,
        given=args.updates_key,
        known_hosts=KnownHosts(args.known_hosts or known_hosts_path()),
        key_endpoint=args.updates_key_endpoint,
        timeout=timeout,
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
