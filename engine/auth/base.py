"""The ZAP authenticator (RFC 27) in pyzmq's `zmq.auth` shape: who may connect, and as whom.

`Authenticator` holds the policy and answers requests: `authenticate(request) -> ZapReply` is the
sans-I/O core, `handle_zap_message(frames)` answers one request on the ZAP socket. `start()`
binds that socket (REP, at inproc://zeromq.zap.01) in the given context; the thread and asyncio
flavours (engine.auth.thread, engine.auth.asyncio) serve it for you.

The policy, checked in this order for every handshake that asks:
  1. address: with an allow list, only those addresses pass; otherwise the deny list is refused;
  2. mechanism: NULL passes; PLAIN needs the user's password for the domain (configure_plain);
     CURVE needs the client's public key among the domain's certificates, or CURVE_ALLOW_ANY,
     or a yes from the domain's callback (configure_curve / configure_curve_callback).
A domain with no configuration of its own falls back to the "*" domain.
"""

from __future__ import annotations

import hmac
import inspect
import logging
import threading
from collections.abc import Awaitable
from typing import Any, Protocol

from .. import constants as c
from ..security import z85
from ..security.zap import ZAP_ENDPOINT, ZapReply, ZapRequest, ZapRequestError
from .certs import load_certificates

#: Pass as `location` to configure_curve: any client key is accepted (encryption only).
CURVE_ALLOW_ANY = "*"
ANY_DOMAIN = "*"
#: A refusal's reply status (RFC 27: 400 is "authentication failure").
DENIED = 400
#: A request that is not ZAP at all gets 500 ("internal error"), as nothing else fits.
MALFORMED = 500


#: A verdict: allowed, the reason, the user id.
Judgement = tuple[bool, str, str]
UNKNOWN_KEY: Judgement = (False, "Unknown key", "")


class CredentialsProvider(Protocol):
    """configure_curve_callback's provider: says yes or no to a client key for a domain
    (`callback` may be `async def`, as pyzmq allows; the flavours await it)."""

    def callback(self, domain: str, key: bytes) -> Any: ...  # key: the client's, in Z85


class PendingVerdict:
    """A CURVE callback's yes or no still to come: it returned an awaitable."""

    __slots__ = ("user_id", "verdict")

    def __init__(self, verdict: Awaitable[Any], user_id: str) -> None:
        self.verdict = verdict
        self.user_id = user_id

    async def settled(self, log: Any) -> Judgement:
        try:
            yes = await self.verdict
        except Exception:
            log.exception("a CURVE callback failed: key refused")
            return UNKNOWN_KEY
        return (True, "OK", self.user_id) if yes else UNKNOWN_KEY

    def abandon(self) -> None:
        close = getattr(self.verdict, "close", None)
        if close is not None:
            close()  # (a coroutine never awaited would warn)


class Authenticator:
    """Policy plus the ZAP socket; see the module docstring for the rules."""

    def __init__(self, context: Any = None, encoding: str = "utf-8", log: Any = None) -> None:
        self.context = context
        self.encoding = encoding
        self.log = log or logging.getLogger("engine.auth")
        self.allow_addresses: set[str] = set()
        self.deny_addresses: set[str] = set()
        self.passwords: dict[str, dict[str, str]] = {}
        self.certs: dict[str, dict[bytes, bool]] = {}
        self.allow_any: set[str] = set()
        self.credentials_providers: dict[str, CredentialsProvider] = {}
        self.zap_socket: Any = None
        # configure_* may run on the user's thread while the server thread answers requests.
        self._lock = threading.Lock()

    # -- lifecycle (sync face; the flavours override) --------------------------------------------

    def start(self) -> None:
        """Bind the ZAP socket in `self.context`."""
        if self.context is None:
            from .. import sync

            self.context = sync.Context.instance()
        self.zap_socket = self.context.socket(c.REP)
        self.zap_socket.linger = 1
        self.zap_socket.bind(ZAP_ENDPOINT)
        self.log.debug("ZAP handler bound at %s", ZAP_ENDPOINT)

    def stop(self) -> None:
        if self.zap_socket is not None:
            self.zap_socket.close()
        self.zap_socket = None

    # -- configuration ------------------------------------------------------------------------

    def allow(self, *addresses: str) -> None:
        """Accept only these addresses (and refuse every other one). One authenticator
        allows or denies, not both: a mix is a ValueError, as in pyzmq (which rule would
        win is not something a reader of the configuration should have to know)."""
        with self._lock:
            if self.deny_addresses:
                raise ValueError("an authenticator takes allow() or deny(), not both")
            self.allow_addresses.update(addresses)

    def deny(self, *addresses: str) -> None:
        """Refuse these addresses (and accept every other one); not with `allow`."""
        with self._lock:
            if self.allow_addresses:
                raise ValueError("an authenticator takes allow() or deny(), not both")
            self.deny_addresses.update(addresses)

    def configure_plain(
        self, domain: str = ANY_DOMAIN, passwords: dict[str, str] | None = None
    ) -> None:
        """PLAIN: the users of `domain` and their passwords (replaces what was there)."""
        with self._lock:
            self.passwords[domain] = dict(passwords or {})

    def configure_curve(self, domain: str = ANY_DOMAIN, location: str | Any = "") -> None:
        """CURVE: accept the public keys of the certificates in directory `location`.

        With CURVE_ALLOW_ANY instead of a directory, any client key is accepted.
        """
        location = str(location)
        certs = {} if location == CURVE_ALLOW_ANY else load_certificates(location)
        with self._lock:
            if location == CURVE_ALLOW_ANY:
                self.allow_any.add(domain)
            else:
                self.allow_any.discard(domain)
            self.certs[domain] = certs

    def configure_curve_callback(
        self, domain: str = ANY_DOMAIN, credentials_provider: CredentialsProvider | None = None
    ) -> None:
        """CURVE: ask `credentials_provider.callback(domain, key)` about each client key."""
        with self._lock:
            if credentials_provider is None:
                self.credentials_providers.pop(domain, None)
            else:
                self.credentials_providers[domain] = credentials_provider

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The user id a CURVE client gets: its public key in Z85 (override to map keys)."""
        return z85.encode(client_public_key).decode("ascii")

    # -- answering ----------------------------------------------------------------------------

    def handle_zap_message(self, msg: list[bytes]) -> None:
        """Answer one request received on the ZAP socket."""
        reply = self.reply_frames(msg)
        self.zap_socket.send_multipart(reply)

    def reply_frames(self, msg: list[bytes]) -> list[bytes]:
        """The reply frames for one request's frames (a malformed request gets status 500)."""
        request = self._request(msg)
        if isinstance(request, list):
            return request
        return self.authenticate(request).to_frames()

    async def reply_frames_async(self, msg: list[bytes]) -> list[bytes]:
        """reply_frames, awaiting an async CURVE callback's verdict."""
        request = self._request(msg)
        if isinstance(request, list):
            return request
        return (await self.authenticate_async(request)).to_frames()

    def _request(self, msg: list[bytes]) -> ZapRequest | list[bytes]:
        """The request in `msg`, or the reply frames for a malformed one (status 500)."""
        try:
            return ZapRequest.from_frames(msg)
        except ZapRequestError as exc:
            self.log.warning("malformed ZAP request: %s", exc)
            request_id = msg[1] if len(msg) > 1 else b""
            return ZapReply(MALFORMED, "Malformed request", request_id=request_id).to_frames()

    def authenticate(self, request: ZapRequest) -> ZapReply:
        """The verdict on one request (sans-I/O). An async CURVE callback's verdict is
        awaited by the thread flavour (on a loop of its own); elsewhere it is refused."""
        with self._lock:
            judged = self._judge(request)
        if isinstance(judged, PendingVerdict):
            judged = self._settle(judged)
        return self._reply(request, judged)

    async def authenticate_async(self, request: ZapRequest) -> ZapReply:
        """authenticate(), awaiting an async CURVE callback's verdict (the asyncio flavour)."""
        with self._lock:
            judged = self._judge(request)
        if isinstance(judged, PendingVerdict):
            judged = await judged.settled(self.log)
        return self._reply(request, judged)

    def _settle(self, pending: PendingVerdict) -> Judgement:
        """An async callback's verdict where nothing can await it: refused, loudly (its
        coroutine object is truthy, and must not let every key in)."""
        pending.abandon()
        self.log.warning("an async CURVE callback needs a flavour that awaits it: key refused")
        return UNKNOWN_KEY

    def _reply(self, request: ZapRequest, judged: Judgement) -> ZapReply:
        allowed, reason, user_id = judged
        rid = request.request_id
        if allowed:
            self.log.debug("ZAP allowed %s %s", request.mechanism.decode(), request.address)
            return ZapReply(200, "OK", user_id, request_id=rid)
        # At debug, as pyzmq's authenticators log a denial: a program's output stays its own
        # (an application that wants refusals seen logs them, as the game's front does).
        self.log.debug(
            "ZAP denied %s from %s: %s", request.mechanism.decode(), request.address, reason
        )
        return ZapReply(DENIED, reason, request_id=rid)

    def _judge(self, request: ZapRequest) -> Judgement | PendingVerdict:
        address = request.address
        if self.allow_addresses and address not in self.allow_addresses:
            return False, "Address not in allow list", ""
        if not self.allow_addresses and address in self.deny_addresses:
            return False, "Address is on deny list", ""
        mechanism, creds = request.mechanism, request.credentials
        domain = request.domain or ANY_DOMAIN
        if mechanism == b"NULL" and not creds:
            return True, "OK", ""
        if mechanism == b"PLAIN" and len(creds) == 2:
            return self._plain(domain, creds[0], creds[1])
        if mechanism == b"CURVE" and len(creds) == 1 and len(creds[0]) == 32:
            return self._curve(domain, creds[0])
        return False, "Unsupported mechanism", ""

    def _plain(self, domain: str, username: bytes, password: bytes) -> Judgement:
        users = _for_domain(self.passwords, domain)
        if users is None:
            return False, "No passwords defined for domain", ""
        try:
            user = username.decode(self.encoding)
            given = password.decode(self.encoding)
        except UnicodeDecodeError:
            return False, "Invalid credentials", ""
        expected = users.get(user)
        # Compare in constant time, and do the same work for unknown users.
        same = hmac.compare_digest(given.encode(), (expected or "").encode())
        if expected is None or not same:
            return False, "Invalid credentials", ""
        return True, "OK", user

    def _curve(self, domain: str, key: bytes) -> Judgement | PendingVerdict:
        user_id = self.curve_user_id(key)
        scope = domain if domain in self.certs else ANY_DOMAIN
        if scope in self.allow_any:
            return True, "OK", user_id
        provider = _for_domain(self.credentials_providers, domain)
        if provider is not None:
            # The key in Z85, as pyzmq hands it (its providers compare Z85 keys).
            verdict = provider.callback(domain, z85.encode(key))
            if inspect.isawaitable(verdict):  # an async callback: awaited by the flavour
                return PendingVerdict(verdict, user_id)
            return (True, "OK", user_id) if verdict else UNKNOWN_KEY
        certs = self.certs.get(scope)
        if certs is None:
            return False, "No certificates defined for domain", ""
        if z85.encode(key) in certs:
            return True, "OK", user_id
        return False, "Unknown key", ""


def _for_domain(table: dict[str, Any], domain: str) -> Any:
    """A domain's own entry, else the "*" domain's, else None."""
    if domain in table:
        return table[domain]
    return table.get(ANY_DOMAIN)
