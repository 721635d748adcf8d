"""The CURVE mechanism (RFC 25/26, CurveZMQ): authenticated, encrypted, forward-secret.

    C: HELLO     C' + Box[64 zeros](C'->S)                              200 octets
    S: WELCOME   Box[S' + cookie](S->C'), cookie = Box[C' + s'](K)       168 octets
    C: INITIATE  cookie + Box[C + vouch + metadata](C'->S'),
                 vouch = Box[C' + S](C->S')                             257+ octets
    S: READY     Box[metadata](S'->C')                                  30+ octets
    then MESSAGE both ways (engine/security/curve_message.py)

C/c and S/s are the permanent key pairs, C'/c' and S'/s' the transient ones made for this
connection only. Short nonces count up from 1 in each direction (HELLO 1, INITIATE 2, client
MESSAGEs from 3; READY 1, server MESSAGEs from 2); long nonces are 16 random octets.

The cookie key K is drawn fresh for every WELCOME (so every connection rotates it), used once to
open the cookie that comes back in INITIATE, and then forgotten; a cookie older than
COOKIE_LIFETIME_S is refused, as the RFC asks. The server asks ZAP about C as libzmq does
(always, unless ZAP_ENFORCE_DOMAIN is set with no ZAP_DOMAIN), and with no handler bound lets
any client in unless ZAP_ENFORCE_DOMAIN is set. All the cryptography is libsodium's, by PyNaCl.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from enum import Enum

from ..constants import ProtocolErrorCode
from .commands import ProtocolError, decode_properties
from .curve_message import CurveCipher
from .keys import KEY_SIZE, public_of, sodium
from .mechanism import Mechanism

HELLO_SIZE = 200  # with its name: [5]"HELLO" is 6 octets
HELLO_BODY = HELLO_SIZE - 6
WELCOME_BODY = 168 - 8
MIN_INITIATE_BODY = 257 - 9
MIN_READY_BODY = 30 - 6
VERSION = b"\x01\x00"
PADDING = bytes(72)
COOKIE_SIZE = 96
#: RFC 26: "The server MUST discard from its memory the cookie key after a short interval, for
#: example 60 seconds". Enough for any honest client on a slow link to answer WELCOME.
COOKIE_LIFETIME_S = 60.0

_CRYPTO = ProtocolErrorCode.ZMTP_CRYPTOGRAPHIC
_UNEXPECTED = ProtocolErrorCode.ZMTP_UNEXPECTED_COMMAND


def _nonce(n: int) -> bytes:
    return n.to_bytes(8, "big")


class CurveState(Enum):
    # server
    WAITING_FOR_HELLO = "waiting for hello"
    WAITING_FOR_INITIATE = "waiting for initiate"
    WAITING_FOR_ZAP = "waiting for zap"
    # client
    WAITING_FOR_WELCOME = "waiting for welcome"
    WAITING_FOR_READY = "waiting for ready"
    # both
    STARTING = "starting"
    DONE = "done"


class _CurveBase(Mechanism):
    name = b"CURVE"
    encrypts = True

    def __init__(self, *, as_server: bool, **kwargs) -> None:
        super().__init__(as_server=as_server, **kwargs)
        self._nacl = sodium()
        self.state = CurveState.STARTING
        self._metadata = b""
        self._shared: bytes | None = None  # precomputed key of the transient pairs
        self._sent = 0  # last short nonce we used
        self._received = 0  # last short nonce the peer used

    def cipher(self) -> CurveCipher:
        assert self._shared is not None and self.complete
        return CurveCipher(
            self._shared, as_server=self.as_server, sent=self._sent, received=self._received
        )

    def _next_nonce(self) -> bytes:
        self._sent += 1
        return _nonce(self._sent)

    def _open(self, what: str, box: bytes, nonce: bytes, public: bytes, secret: bytes) -> bytes:
        try:
            return self._nacl.crypto_box_open(box, nonce, public, secret)
        except Exception:  # CryptoError: wrong key or tampered box
            raise ProtocolError(f"CURVE {what} box does not open", _CRYPTO) from None

    def _open_shared(self, what: str, box: bytes, nonce: bytes, key: bytes | None = None) -> bytes:
        try:
            return self._nacl.crypto_box_open_afternm(box, nonce, key or self._shared)
        except Exception:
            raise ProtocolError(f"CURVE {what} box does not open", _CRYPTO) from None

    def _key(self, what: str, public: bytes, secret: bytes) -> bytes:
        """The precomputed key of a pair, when two boxes use it: one Curve25519 scalar
        multiplication (about 75 us here, most of a handshake's crypto) instead of two. A
        peer's low-order key has none (libsodium refuses it): a protocol error, as a box
        that does not open."""
        try:
            return self._nacl.crypto_box_beforenm(public, secret)
        except Exception:
            raise ProtocolError(f"CURVE {what} key is unusable", _CRYPTO) from None


class CurveClient(_CurveBase):
    """The connecting side: knows the server's public key S and its own pair C/c."""

    def __init__(self, server_key: bytes, public_key: bytes, secret_key: bytes, **kwargs) -> None:
        super().__init__(as_server=False, **kwargs)
        for key in (server_key, public_key, secret_key):
            if len(key) != KEY_SIZE:
                raise ValueError("CURVE keys are 32 raw bytes here")
        self._server = server_key
        self._public = public_key
        self._secret = secret_key
        self._t_public, self._t_secret = self._nacl.crypto_box_keypair()
        self._cookie = b""
        self._hello_key = b""

    def start(self, metadata: bytes) -> None:
        self._metadata = metadata
        short = self._next_nonce()
        # HELLO and WELCOME are both boxed between S and c'.
        self._hello_key = self._key("server", self._server, self._t_secret)
        signature = self._nacl.crypto_box_afternm(
            bytes(64), b"CurveZMQHELLO---" + short, self._hello_key
        )
        self._send(b"HELLO", VERSION + PADDING + self._t_public + short + signature)
        self.state = CurveState.WAITING_FOR_WELCOME

    def command_received(self, name: bytes, rest: bytes) -> None:
        if name == b"WELCOME" and self.state is CurveState.WAITING_FOR_WELCOME:
            self._welcome(rest)
        elif name == b"READY" and self.state is CurveState.WAITING_FOR_READY:
            self._ready(rest)
        else:
            raise ProtocolError(f"CURVE client did not expect {name!r}", _UNEXPECTED)

    def _welcome(self, rest: bytes) -> None:
        if len(rest) != WELCOME_BODY:
            raise ProtocolError(
                "CURVE WELCOME has the wrong size", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_WELCOME
            )
        plain = self._open_shared("WELCOME", rest[16:], b"WELCOME-" + rest[:16], self._hello_key)
        server_transient, self._cookie = plain[:32], plain[32:]
        nacl = self._nacl
        self._shared = self._key("server transient", server_transient, self._t_secret)
        vouch_nonce = os.urandom(16)
        vouch = nacl.crypto_box(
            self._t_public + self._server, b"VOUCH---" + vouch_nonce, server_transient, self._secret
        )
        short = self._next_nonce()
        box = nacl.crypto_box_afternm(
            self._public + vouch_nonce + vouch + self._metadata,
            b"CurveZMQINITIATE" + short,
            self._shared,
        )
        self._send(b"INITIATE", self._cookie + short + box)
        self.state = CurveState.WAITING_FOR_READY

    def _ready(self, rest: bytes) -> None:
        if len(rest) < MIN_READY_BODY:
            raise ProtocolError(
                "CURVE READY too short", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_READY
            )
        short = rest[:8]
        plain = self._open_shared("READY", rest[8:], b"CurveZMQREADY---" + short)
        self.peer_properties = decode_properties(plain)
        self._received = int.from_bytes(short, "big")
        self.state = CurveState.DONE
        self.complete = True


class CurveServer(_CurveBase):
    """The binding side: has the pair S/s; learns and (through ZAP) judges each client's C."""

    def __init__(
        self,
        secret_key: bytes,
        public_key: bytes | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        **kwargs,
    ) -> None:
        super().__init__(as_server=True, **kwargs)
        if len(secret_key) != KEY_SIZE or (public_key is not None and len(public_key) != KEY_SIZE):
            raise ValueError("CURVE keys are 32 raw bytes here")
        self._secret = secret_key
        self._public = public_key if public_key is not None else public_of(secret_key)
        self._clock = clock
        self._client_transient = b""
        self._cookie_key: bytes | None = None
        self._cookie_made = 0.0
        self.client_key = b""

    def start(self, metadata: bytes) -> None:
        self._metadata = metadata
        self.state = CurveState.WAITING_FOR_HELLO

    def command_received(self, name: bytes, rest: bytes) -> None:
        if name == b"HELLO" and self.state is CurveState.WAITING_FOR_HELLO:
            self._hello(rest)
        elif name == b"INITIATE" and self.state is CurveState.WAITING_FOR_INITIATE:
            self._initiate(rest)
        else:
            raise ProtocolError(f"CURVE server did not expect {name!r}", _UNEXPECTED)

    def _hello(self, rest: bytes) -> None:
        malformed = ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_HELLO
        if len(rest) != HELLO_BODY:
            raise ProtocolError("CURVE HELLO has the wrong size", malformed)
        if rest[:2] != VERSION:
            raise ProtocolError("unknown CurveZMQ version", malformed)
        if rest[2:74] != PADDING:
            raise ProtocolError("CURVE HELLO padding is not zero", malformed)
        client_transient, short, signature = rest[74:106], rest[106:114], rest[114:]
        # HELLO and WELCOME are both boxed between C' and s.
        hello_key = self._key("client transient", client_transient, self._secret)
        plain = self._open_shared(
            "HELLO (wrong server key?)", signature, b"CurveZMQHELLO---" + short, hello_key
        )
        if plain != bytes(64):
            raise ProtocolError("CURVE HELLO signature is not 64 zeros", _CRYPTO)
        self._received = int.from_bytes(short, "big")
        self._client_transient = client_transient
        nacl = self._nacl
        t_public, t_secret = nacl.crypto_box_keypair()
        # A fresh cookie key for this WELCOME: the only memory of s' is the cookie itself.
        self._cookie_key = os.urandom(32)
        self._cookie_made = self._clock()
        cookie_nonce = os.urandom(16)
        cookie = cookie_nonce + nacl.crypto_secretbox(
            client_transient + t_secret, b"COOKIE--" + cookie_nonce, self._cookie_key
        )
        welcome_nonce = os.urandom(16)
        box = nacl.crypto_box_afternm(t_public + cookie, b"WELCOME-" + welcome_nonce, hello_key)
        self._send(b"WELCOME", welcome_nonce + box)
        self.state = CurveState.WAITING_FOR_INITIATE

    def _initiate(self, rest: bytes) -> None:
        if len(rest) < MIN_INITIATE_BODY:
            raise ProtocolError(
                "CURVE INITIATE too short", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_INITIATE
            )
        key, self._cookie_key = self._cookie_key, None  # used once, then forgotten
        if key is None or self._clock() - self._cookie_made > COOKIE_LIFETIME_S:
            raise ProtocolError("CURVE cookie expired", _CRYPTO)
        cookie_nonce, cookie_box = rest[:16], rest[16:COOKIE_SIZE]
        try:
            cookie = self._nacl.crypto_secretbox_open(cookie_box, b"COOKIE--" + cookie_nonce, key)
        except Exception:
            raise ProtocolError("CURVE cookie does not open", _CRYPTO) from None
        if cookie[:32] != self._client_transient:
            raise ProtocolError("CURVE cookie belongs to another client", _CRYPTO)
        t_secret = cookie[32:]
        short = rest[COOKIE_SIZE : COOKIE_SIZE + 8]
        nonce = int.from_bytes(short, "big")
        if nonce <= self._received:
            raise ProtocolError(
                "CURVE INITIATE nonce did not increase", ProtocolErrorCode.ZMTP_INVALID_SEQUENCE
            )
        # INITIATE is boxed between C' and s', as every message after it: one key for all.
        shared = self._key("client transient", self._client_transient, t_secret)
        plain = self._open_shared(
            "INITIATE", rest[COOKIE_SIZE + 8 :], b"CurveZMQINITIATE" + short, shared
        )
        client_key, vouch_nonce, vouch = plain[:32], plain[32:48], plain[48:128]
        vouched = self._open("vouch", vouch, b"VOUCH---" + vouch_nonce, client_key, t_secret)
        if vouched[:32] != self._client_transient or vouched[32:] != self._public:
            raise ProtocolError(
                "CURVE vouch does not match this connection", ProtocolErrorCode.ZMTP_KEY_EXCHANGE
            )
        self._received = nonce
        self._shared = shared
        self.client_key = client_key
        self.peer_properties = decode_properties(plain[128:])
        # libzmq asks ZAP unless ENFORCE is set with no domain (the "Stonehouse" pattern).
        if self.zap.domain or not self.zap.enforce:
            self._ask_zap(b"CURVE", (client_key,))
            self.state = CurveState.WAITING_FOR_ZAP
        else:
            self._send_ready()

    def _zap_passed(self) -> None:
        self._send_ready()

    def _send_ready(self) -> None:
        short = self._next_nonce()
        box = self._nacl.crypto_box_afternm(
            self._metadata, b"CurveZMQREADY---" + short, self._shared
        )
        self._send(b"READY", short + box)
        self.state = CurveState.DONE
        self.complete = True
