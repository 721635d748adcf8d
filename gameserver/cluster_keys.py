"""The cluster's CURVE keys: where they live, who may join the worker port, and the ZAP handler.

A keys directory (default ``<data dir>/keys``, ``--keys-dir`` or ``CROSSROADS_KEYS_DIR``) holds
certificates in libzmq's format (``engine.auth``):

=========================  ========================================================================
``front.key``              the front's public key: every worker, relay and player is given it
``front.key_secret``       the front's secret: only the front reads it
``worker.key(_secret)``    a worker pair, admitted from the start (copy both to a worker machine)
``relay.key(_secret)``     a pair for relays (their region's players pin its public key)
``workers/NAME.key``       the allow-list: public keys admitted on the worker port
=========================  ========================================================================

The front serves one ZAP handler (RFC 27) in its context: the worker port's domain admits only
the keys in ``workers/`` (re-read when the directory changes, so adding or removing a key needs
no restart); the player ports' domain admits any client key, since players are authenticated by
their game password inside the encrypted channel.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import engine
from engine.auth import Authenticator, CertificateError, create_certificates, read_certificate
from engine.auth.certs import load_certificates
from engine.security import z85
from engine.security.zap import ZAP_ENDPOINT, ZapReply, ZapRequest

from .limits import limit_bound
from .local_workers import LOCAL_WORKERS_DOMAIN, LocalPort, local_credentials

log = logging.getLogger(__name__)

FRONT = "front"
WORKER = "worker"
RELAY = "relay"
#: The allow-list of the worker port, inside the keys directory.
ALLOWED_WORKERS = "workers"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
#: ZAP domains: each bound socket names its own, so one handler can judge them differently.
WORKERS_DOMAIN = "crossroads-workers"
PLAYERS_DOMAIN = "crossroads-players"
Z85_KEY_LENGTH = 40


class KeysError(ValueError):
    """A missing or unusable key; the message says which file and what to run."""


@dataclass(frozen=True)
class KeyPair:
    """A CURVE pair as Z85 text (what the engine's CURVE_* options take)."""

    public: bytes
    secret: bytes


def public_file(keys_dir: Path, name: str) -> Path:
    return keys_dir / f"{name}{PUBLIC_SUFFIX}"


def secret_file(keys_dir: Path, name: str) -> Path:
    return keys_dir / f"{name}{SECRET_SUFFIX}"


def load_pair(path: Path) -> KeyPair:
    """The pair in a ``*.key_secret`` file."""
    try:
        cert = read_certificate(path)
    except CertificateError as exc:
        raise KeysError(str(exc)) from None
    if cert.secret_key is None:
        raise KeysError(f"{path} holds no secret key (use the .key_secret file)")
    return KeyPair(cert.public_key, cert.secret_key)


def ensure_pair(keys_dir: Path, name: str) -> tuple[KeyPair, bool]:
    """NAME's pair from the keys directory, created if it is not there; (pair, created)."""
    secret = secret_file(keys_dir, name)
    if secret.exists():
        return load_pair(secret), False
    try:
        create_certificates(keys_dir, name, {"name": name, "role": f"crossroads {name}"})
    except CertificateError as exc:
        raise KeysError(str(exc)) from None
    os.chmod(keys_dir, 0o700)
    return load_pair(secret), True


def allow_worker(keys_dir: Path, name: str, public_cert: Path | None = None) -> Path:
    """Put a worker's public certificate in the allow-list (default: keys_dir/NAME.key)."""
    source = public_cert or public_file(keys_dir, name)
    try:
        cert = read_certificate(source)
    except CertificateError as exc:
        raise KeysError(str(exc)) from None
    allowed = keys_dir / ALLOWED_WORKERS
    allowed.mkdir(parents=True, exist_ok=True)
    target = allowed / f"{name}{PUBLIC_SUFFIX}"
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    log.debug("worker key %s allowed", cert.public_key.decode())
    return target


def ensure_cluster(keys_dir: Path) -> tuple[KeyPair, list[str]]:
    """The front's pair and a worker pair allowed on the worker port, made on first use.

    Returns the front's pair and the names of the files it created (for the banner).
    """
    created: list[str] = []
    front, new = ensure_pair(keys_dir, FRONT)
    if new:
        created.append(str(secret_file(keys_dir, FRONT)))
    _, new = ensure_pair(keys_dir, WORKER)
    if new:
        created.append(str(secret_file(keys_dir, WORKER)))
    if not (keys_dir / ALLOWED_WORKERS / f"{WORKER}{PUBLIC_SUFFIX}").exists() and new:
        allow_worker(keys_dir, WORKER)
    (keys_dir / ALLOWED_WORKERS).mkdir(parents=True, exist_ok=True)
    return front, created


def public_key(value: str) -> bytes:
    """A public key given as 40 Z85 characters or as a certificate file; Z85 bytes."""
    text = value.strip()
    if len(text) == Z85_KEY_LENGTH and not Path(text).exists():
        raw = text.encode("ascii", "replace")
        try:
            z85.decode(raw)
        except ValueError:
            raise KeysError(f"{text!r} is not a Z85 key (40 characters)") from None
        return raw
    try:
        return read_certificate(text).public_key
    except CertificateError as exc:
        raise KeysError(f"not a Z85 key nor a certificate file: {exc}") from None


class AllowList:
    """The worker port's admitted keys: a certificate directory, re-read when it changes.

    Used as the ZAP handler's CURVE callback, so a key is added or revoked by adding or removing
    its file (no restart). The directory is stat'ed once per worker handshake, which is rare.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple[int, int] | None = None
        self.keys: dict[bytes, bool] = {}

    def reload(self) -> None:
        """Read the directory again if it changed since the last read."""
        try:
            info = self.directory.stat()
        except OSError:
            self.keys, self._stamp = {}, None
            return
        stamp = (info.st_mtime_ns, info.st_ino)
        if stamp != self._stamp:
            try:
                self.keys = load_certificates(self.directory)
            except CertificateError as exc:
                log.error("worker allow-list %s: %s; admitting no worker", self.directory, exc)
                self.keys = {}
            first = self._stamp is None
            self._stamp = stamp
            # A change while running is news; the first read, at the front's start, is not (a
            # line before every start-up error would break their one-line form).
            log.log(
                logging.DEBUG if first else logging.INFO,
                "worker allow-list %s: %d key(s)",
                self.directory,
                len(self.keys),
            )

    def callback(self, domain: str, key: bytes) -> bool:
        """`key`: the client's public key in Z85, as the authenticator (and pyzmq's) hands it."""
        self.reload()
        return key in self.keys


class ClusterAuthenticator(Authenticator):
    """The front's ZAP policy: workers by allow-list, players by any key; refusals logged."""

    def __init__(
        self, context: Any, allowed_workers: Path | None, local: LocalPort | None = None
    ) -> None:
        super().__init__(context, log=logging.getLogger("gameserver.zap"))
        self.refused = 0
        if allowed_workers is not None:
            allow_list = AllowList(allowed_workers)
            # Read once now: a broken key file (which shuts every remote worker out) is then
            # told at start-up, not at the first remote worker's handshake.
            allow_list.reload()
            self.configure_curve_callback(WORKERS_DOMAIN, allow_list)
        self.configure_curve(PLAYERS_DOMAIN, "*")
        if local is not None:  # serve's own workers, by this run's secret (local_workers.py)
            self.configure_plain(LOCAL_WORKERS_DOMAIN, local.passwords())

    def authenticate(self, request: ZapRequest) -> ZapReply:
        reply = super().authenticate(request)
        if not reply.ok:
            self.refused += 1
            key = request.credentials[0] if request.credentials else b""
            shown = z85.encode(key).decode() if len(key) == 32 else "-"
            log.warning(
                "refused a %s connection from %s (key %s): %s",
                request.domain or "?",
                request.address,
                shown,
                reply.status_text,
            )
        return reply

    def bind(self) -> None:
        """Bind the ZAP socket now, so the first handshake already finds the handler."""
        sock = self.context.socket(engine.REP)
        sock.linger = 0
        sock.bind(ZAP_ENDPOINT)
        self.zap_socket = sock

    async def serve(self) -> None:
        """Answer ZAP requests until cancelled."""
        sock = self.zap_socket
        while True:
            msg = await sock.recv_multipart()
            await sock.send_multipart(self.reply_frames(msg))


def curve_server(sock: Any, pair: KeyPair, domain: str) -> None:
    """Make a bound socket a CURVE server judged by the ZAP handler under `domain`.

    ZAP_ENFORCE_DOMAIN: should the handler be missing, the handshake fails instead of
    admitting anyone (libzmq's default would go on without it).
    """
    sock.setsockopt(engine.CURVE_SERVER, 1)
    sock.setsockopt(engine.CURVE_SECRETKEY, pair.secret)
    sock.setsockopt(engine.CURVE_PUBLICKEY, pair.public)
    sock.setsockopt(engine.ZAP_DOMAIN, domain.encode())
    sock.setsockopt(engine.ZAP_ENFORCE_DOMAIN, 1)


def curve_client(target: Any, pair: KeyPair, server_key: bytes) -> None:
    """CURVE client options on a socket, or on a context (defaults for its new sockets)."""
    target.curve_serverkey = server_key
    target.curve_publickey = pair.public
    target.curve_secretkey = pair.secret


@dataclass(frozen=True)
class FrontSecurity:
    """What the front's sockets demand.

    `pair` is the front's own key pair. `allowed_workers` is the worker port's allow-list
    directory; None leaves that port open (NULL, `--insecure-workers`). `players` makes the
    action and update ports CURVE servers too (any client key; the password does the rest).
    """

    pair: KeyPair
    allowed_workers: Path | None
    players: bool = False


def secure_front(
    context: Any,
    security: FrontSecurity | None,
    *,
    players: list[Any],
    workers: Any,
    local: LocalPort | None = None,
) -> ClusterAuthenticator | None:
    """Set CURVE on the front's sockets before they bind; the ZAP handler that judges them
    (and, with `local`, serve's own workers on their private port)."""
    allowed = None if security is None else security.allowed_workers
    if security is not None and allowed is not None:
        curve_server(workers, security.pair, WORKERS_DOMAIN)
    if security is not None and security.players:
        for sock in players:
            curve_server(sock, security.pair, PLAYERS_DOMAIN)
    if allowed is None and (security is None or not security.players) and local is None:
        return None
    auth = ClusterAuthenticator(context, allowed, local)
    auth.bind()
    return auth


def worker_credentials(context: Any, settings: Any) -> None:
    """A worker's CURVE options, as context defaults for the socket the worker opens.

    From --front-key / --worker-key, else the keys directory; nothing with --insecure-workers.
    A worker serve started itself has this run's secret instead, for the local port.
    """
    if settings.local_worker_secret:
        local_credentials(context, settings.local_worker_secret)
        return
    if settings.insecure_workers:
        log.warning("--insecure-workers: talking to the front without keys or encryption")
        return
    keys_dir = Path(settings.keys_dir)
    front = settings.front_key or str(public_file(keys_dir, FRONT))
    secret = Path(settings.worker_key or secret_file(keys_dir, WORKER))
    if not settings.front_key and not Path(front).exists():
        raise KeysError(
            f"no front key: give --front-key (the front prints it) or copy front.key to {keys_dir}"
        )
    if not secret.exists():
        raise KeysError(
            f"no worker key {secret}: run `crossroads keys worker NAME` on the front's machine "
            "and copy NAME.key_secret here (--worker-key), or use --insecure-workers"
        )
    curve_client(context, load_pair(secret), public_key(front))


# -- the key announcement: how a player learns the key on first use ------------------------------

#: What a client sends to the key endpoint; the answer is the server's Z85 public key.
KEY_REQUEST = b"KEY?"
#: Anything longer than the request is not one: the announcer's socket drops such peers.
MAX_KEY_REQUEST = 64
#: Connections the announcer holds at once. A player's stays up for one request, so this is
#: room for a crowd of first connections; past it a peer is closed (its REQ retries), and
#: strangers holding idle connections cannot run the process out of file descriptors.
ANNOUNCER_MAX_CONNECTIONS = 1024


class KeyAnnouncer:
    """A plaintext REP that tells anyone the server's public key (as SSH shows its host key).

    Only a first connection trusts it (clients pin the key in their known-hosts file and refuse
    a different one later), so it gives away nothing secret and takes nothing but 4 bytes.
    """

    def __init__(self, context: Any, endpoint: str, public: bytes) -> None:
        self.public = public
        self.sock = context.socket(engine.REP)
        self.sock.linger = 0
        # As on the player ports: a size cap, a connection cap, the listen backlog (a crowd
        # of first connections waits in the kernel, not in SYN retries), the handshake timer
        # and heartbeats for peers that fall silent.
        limit_bound(self.sock, MAX_KEY_REQUEST, ANNOUNCER_MAX_CONNECTIONS)
        self.endpoint = self.sock.bind(endpoint)

    async def serve(self) -> None:
        while True:
            request = await self.sock.recv_multipart()
            answer = self.public if request == [KEY_REQUEST] else b""
            await self.sock.send_multipart([answer])

    def close(self) -> None:
        self.sock.close(linger=0)
