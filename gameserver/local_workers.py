"""The local worker port: how `crossroads serve` reaches the workers it starts itself.

Workers on other machines come in over TCP with CURVE (cluster_keys.py): their traffic crosses
a network, and each proves itself with a key on the allow-list. The workers serve starts on its
own machine instead connect over a Unix socket in a directory only serve's user can enter
(mode 0700), and prove themselves with a secret made for this run, checked by the front's ZAP
handler (PLAIN, RFC 24). Nothing they send crosses a network, so nothing is encrypted: CURVE
on that link sealed and opened every frame of every job and answer at both ends, about a tenth
of the server's CPU per action (`crossroads bench players`, alternated with the code before on
2026-12-06: per `look` 625-638 -> 562-612 µs, per `say` 1,188-1,325 -> 1,100-1,150 µs, the
closed loop 366-369 -> 327-333 µs per action).

What guards the port is what guards the keys directory: the user's own file permissions. The
secret reaches each worker through its environment (`/proc/PID/environ` is readable by that
user and root only), never on a command line that `ps` shows everyone. A process that can
read it could as well read `worker.key_secret`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import engine

#: The ZAP domain of the local port: its handler knows one user, with this run's secret.
LOCAL_WORKERS_DOMAIN = "crossroads-local-workers"
#: The only user name on the local port.
LOCAL_USER = "local-worker"
#: The socket's file name inside the private directory.
SOCKET_NAME = "workers"
#: The longest temporary directory used as is: with "/crossroads-XXXXXXXX/workers" (28
#: octets) the socket's path stays under the 107 a Unix socket address holds.
MAX_BASE_OCTETS = 79


@dataclass(frozen=True)
class LocalPort:
    """A private directory for the socket, its ipc:// endpoint, and this run's secret."""

    directory: Path
    secret: str

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.directory / SOCKET_NAME}"

    @classmethod
    def create(cls) -> LocalPort:
        """A new directory (mkdtemp: mode 0700) under the first fit of `base_candidates`;
        OSError if none can be made."""
        base = next((b for b in base_candidates() if _fits(b)), "/tmp")
        directory = Path(tempfile.mkdtemp(prefix="crossroads-", dir=base))
        return cls(directory, secrets.token_urlsafe(32))

    def passwords(self) -> dict[str, str]:
        """What the ZAP handler admits on the local port's domain."""
        return {LOCAL_USER: self.secret}

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def base_candidates() -> list[str]:
    """Where the private directory may go, best first: the user's runtime directory (systemd's
    /run/user/UID, which no age-based clean-up of /tmp touches while serve runs for weeks), the
    temporary directory, /tmp."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return [*([runtime] if runtime else []), tempfile.gettempdir(), "/tmp"]


def _fits(base: str) -> bool:
    # A Unix socket's path holds at most 107 octets: a long base leaves too little.
    return len(os.fsencode(base)) <= MAX_BASE_OCTETS and os.path.isdir(base)


def secure_local(sock: Any) -> None:
    """Make the worker backend's next endpoint a PLAIN server judged under the local domain.

    Call after the TCP endpoint is bound and before binding the local one: each endpoint keeps
    the security options it was bound with (libzmq's rule), so the TCP port stays CURVE (or
    NULL). ZAP_ENFORCE_DOMAIN: without the handler the handshake fails rather than admitting
    anyone.
    """
    sock.setsockopt(engine.PLAIN_SERVER, 1)
    sock.setsockopt(engine.ZAP_DOMAIN, LOCAL_WORKERS_DOMAIN.encode())
    sock.setsockopt(engine.ZAP_ENFORCE_DOMAIN, 1)


def local_credentials(context: Any, secret: str) -> None:
    """A local worker's PLAIN options, as defaults for the socket the worker opens."""
    context.setsockopt(engine.PLAIN_USERNAME, LOCAL_USER.encode())
    context.setsockopt(engine.PLAIN_PASSWORD, secret.encode())
