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

import errno
import os
import secrets
import shutil
import socket
import stat
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
#: What mkdtemp names the private directories: "crossroads-" and eight characters.
DIRECTORY_PREFIX = "crossroads-"
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
        """A new directory (mkdtemp: mode 0700) under the first fit of `base_candidates`,
        after removing the ones serves killed outright left there; OSError if none can be
        made."""
        base = next((b for b in base_candidates() if _fits(b)), "/tmp")
        remove_stale(Path(base))
        directory = Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX, dir=base))
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


def remove_stale(base: Path) -> list[Path]:
    """Remove the private directories of serves that died without removing theirs (SIGKILL,
    a power cut with /tmp on disk); return them.

    A directory is stale when it is this user's, mode 0700, holds nothing but the socket, and
    nobody listens on that socket: connecting is refused. A running serve's socket accepts,
    and a starting serve's directory has no socket yet, so neither is touched; anything
    else's (another user's, one holding other files) is left alone.
    """
    removed: list[Path] = []
    try:
        candidates = list(base.glob(f"{DIRECTORY_PREFIX}*"))
    except OSError:
        return removed
    for directory in candidates:
        if _is_stale(directory):
            try:
                (directory / SOCKET_NAME).unlink()
                directory.rmdir()
            except OSError:
                continue  # raced with another serve's clean-up, or not ours after all
            removed.append(directory)
    return removed


def _is_stale(directory: Path) -> bool:
    try:
        info = directory.lstat()  # lstat: a symlink named like ours is not followed
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return False
        if stat.S_IMODE(info.st_mode) != 0o700 or os.listdir(directory) != [SOCKET_NAME]:
            return False
        if not stat.S_ISSOCK((directory / SOCKET_NAME).lstat().st_mode):
            return False
    except OSError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)  # a live serve's full backlog answers EAGAIN, not a wait
    try:
        probe.connect(os.fsencode(directory / SOCKET_NAME))
    except OSError as error:
        return error.errno == errno.ECONNREFUSED
    finally:
        probe.close()
    return False  # someone answers: a live serve


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
