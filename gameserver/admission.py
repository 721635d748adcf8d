"""Admission and flood control at the front, before any request reaches a worker (sans-I/O).

The per-session token bucket (ratelimit.py) only sees requests that carry a session; these
limits apply before authentication, per *source*: the request's routing path (the connection,
or the player's connection behind a relay, since a relay adds its own routing frame), and for
logins also per peer *address* (the engine's ROUTER tells it: `Socket.peer_address`), so many
connections from one machine share one login and registration budget. Behind the global
budgets and the connection cap (limits.py), that keeps one address from taking them all.

* every request of a source: a bucket (a fresh random token per request no longer helps);
* logins: a small bucket per source, one per address and one for the whole front (password
  hashing is the most expensive thing a worker does; a flood of logins must not starve
  everyone's actions);
* registrations: every login spends a registration token of its source, its address and the
  front when one is left; a login with none left still logs an existing player in, but may not
  create an account (the worker gets a "login only" job), so junk accounts are bounded by the
  budgets;
* pings: a small bucket per source (the pong is computed by the front itself);
* error replies: a budget per source; past it, bad requests are dropped without an answer, so
  a flood of tiny malformed requests cannot make the front send more than it receives.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from .ratelimit import TokenBucket

T = TypeVar("T")


@dataclass(frozen=True)
class AdmissionPolicy:
    """Rates are per second, bursts are counts."""

    request_rate: float = 40.0  # any request of one source (the session limit is 20/s)
    request_burst: float = 80.0
    login_rate: float = 0.5  # logins of one source
    login_burst: float = 5.0
    # Logins of everybody: each costs a worker ~50 ms of password hashing, so 10/s keeps a
    # flood of logins to half a core and leaves the workers free for everyone's actions.
    front_login_rate: float = 10.0
    front_login_burst: float = 20.0
    registration_rate: float = 1 / 60  # new accounts of one source
    registration_burst: float = 3.0
    front_registration_rate: float = 0.5  # new accounts of everybody (30 a minute)
    front_registration_burst: float = 30.0
    # Logins and new accounts of one peer address (tcp: its IP), whatever its connections.
    # Half the front's login rate and a third of its registration burst: one address cannot
    # take the whole front-wide budget, yet a relay (one address for its region's players)
    # still brings a region back in after a restart.
    address_login_rate: float = 5.0
    address_login_burst: float = 100.0
    address_registration_rate: float = 1 / 30
    address_registration_burst: float = 10.0
    ping_rate: float = 2.0
    ping_burst: float = 5.0
    error_rate: float = 2.0  # error answers to one source; past them bad requests are dropped
    error_burst: float = 10.0
    #: Sources remembered; the least recently seen are forgotten (a flood of new connections
    #: cannot grow memory without bound; a forgotten source starts with full buckets).
    max_sources: int = 50_000


class Login(enum.Enum):
    REFUSED = "refused"  # over a login budget: answer "slow down"
    REGISTER = "register"  # may log in or create the account
    EXISTING_ONLY = "existing"  # may log in an existing player only


class _Source:
    """One source's buckets. Only ``requests`` is made at once; the others on first use. A
    bucket made full when first needed is the same as one made full earlier and left alone
    (refills stop at capacity), and most sources never log in, ping or err. Admitting a new
    source cost 22 us with five eager buckets, 8 us with one (timeit)."""

    __slots__ = ("_errors", "_logins", "_pings", "_registrations", "policy", "requests")

    def __init__(self, policy: AdmissionPolicy, now: float) -> None:
        self.policy = policy
        self.requests = TokenBucket.full(policy.request_rate, policy.request_burst, now)
        self._logins: TokenBucket | None = None
        self._registrations: TokenBucket | None = None
        self._pings: TokenBucket | None = None
        self._errors: TokenBucket | None = None

    def logins(self, now: float) -> TokenBucket:
        if self._logins is None:
            self._logins = TokenBucket.full(self.policy.login_rate, self.policy.login_burst, now)
        return self._logins

    def registrations(self, now: float) -> TokenBucket:
        if self._registrations is None:
            p = self.policy
            self._registrations = TokenBucket.full(p.registration_rate, p.registration_burst, now)
        return self._registrations

    def pings(self, now: float) -> TokenBucket:
        if self._pings is None:
            self._pings = TokenBucket.full(self.policy.ping_rate, self.policy.ping_burst, now)
        return self._pings

    def errors(self, now: float) -> TokenBucket:
        if self._errors is None:
            self._errors = TokenBucket.full(self.policy.error_rate, self.policy.error_burst, now)
        return self._errors


class _Address:
    """One peer address's login and registration buckets."""

    __slots__ = ("logins", "registrations")

    def __init__(self, policy: AdmissionPolicy, now: float) -> None:
        p = policy
        self.logins = TokenBucket.full(p.address_login_rate, p.address_login_burst, now)
        self.registrations = TokenBucket.full(
            p.address_registration_rate, p.address_registration_burst, now
        )


@dataclass
class AdmissionStats:
    limited: int = 0  # requests refused by a source's or the front's budget
    silenced: int = 0  # bad requests dropped without an answer (error budget spent)
    login_only: int = 0  # logins that could not create an account


def budgeted_address(address: str) -> str:
    """The address whose login budget applies, or "" for none: this machine's own peers
    (loopback tcp, ipc) are not budgeted per address. They are local tools, tests and load
    generators, and anything that can connect from this machine can reach the store anyway."""
    if not address or address.startswith("localhost"):
        return ""
    try:
        return "" if ipaddress.ip_address(address).is_loopback else address
    except ValueError:
        return address


def source_of(envelope: list[bytes]) -> tuple[bytes, ...]:
    """The source a request is budgeted to: its routing frames without the caller's tag.

    Crossroads clients send ``[tag, b"", request]`` with a fresh tag per call (client/protocol.py),
    so the front sees ``[connection, tag, b""]``, or ``[relay, player, tag, b""]`` behind a relay.
    Keyed on the whole envelope, every call was a new source and no per-source budget ever
    applied. A tagless envelope (a plain REQ: ``[connection, b""]``) is the connection itself.
    The inner frames come from the peer, so a hostile connection can still vary them; the
    front-wide login and registration budgets bound what that buys.
    """
    if len(envelope) > 2:
        return tuple(envelope[:-2])
    return tuple(envelope[:-1])


def _recent(
    table: OrderedDict[Any, T], key: Hashable, make: Callable[[], T], policy: AdmissionPolicy
) -> T:
    """``table[key]``, made by ``make()`` if new; the least recently seen beyond
    ``policy.max_sources`` are forgotten (a flood of new sources cannot grow it)."""
    found = table.get(key)
    if found is None:
        found = table[key] = make()
        if len(table) > policy.max_sources:
            table.popitem(last=False)
    else:
        table.move_to_end(key)
    return found


def _take_from_all(buckets: list[TokenBucket], now: float) -> bool:
    """A token from each bucket, or from none: the ones that said yes get theirs back when a
    later one says no (a refusal spends nothing)."""
    for i, bucket in enumerate(buckets):
        if not bucket.try_take(now):
            for given in buckets[:i]:
                given.tokens += 1
            return False
    return True


class Admission:
    """The budgets; callers pass the source (any hashable routing path) and the clock."""

    def __init__(self, policy: AdmissionPolicy | None = None, now: float = 0.0) -> None:
        self.policy = policy or AdmissionPolicy()
        p = self.policy
        self._sources: OrderedDict[Hashable, _Source] = OrderedDict()
        self._logins = TokenBucket.full(p.front_login_rate, p.front_login_burst, now)
        self._registrations = TokenBucket.full(
            p.front_registration_rate, p.front_registration_burst, now
        )
        self.stats = AdmissionStats()
        #: Peer address -> its login budgets (bounded as the sources are).
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    def _source(self, source: Hashable, now: float) -> _Source:
        return _recent(self._sources, source, lambda: _Source(self.policy, now), self.policy)

    def request(self, source: Hashable, now: float) -> bool:
        """Any request: False when the source sends faster than its budget."""
        if self._source(source, now).requests.try_take(now):
            return True
        self.stats.limited += 1
        return False

    def ping(self, source: Hashable, now: float) -> bool:
        return self._source(source, now).pings(now).try_take(now)

    def login(self, source: Hashable, now: float, address: str = "") -> Login:
        """The verdict on a login from ``source`` at peer ``address`` ("" if unknown): refused
        (over a budget), or admitted with or without the right to create an account. Each
        budget that said yes gets its token back when a later one says no. How many logins
        hash at once is the login queue's business (gameserver/logins.py)."""
        own = self._source(source, now)
        place = self._address(address, now)
        logins = [own.logins(now), *([place.logins] if place else []), self._logins]
        if not _take_from_all(logins, now):
            self.stats.limited += 1
            return Login.REFUSED
        registrations = [own.registrations(now), *([place.registrations] if place else [])]
        if _take_from_all([*registrations, self._registrations], now):
            return Login.REGISTER
        self.stats.login_only += 1
        return Login.EXISTING_ONLY

    def return_login(self, source: Hashable, now: float, address: str, verdict: Login) -> None:
        """Give back what an admitted login took (REGISTER: its registration tokens too). For
        a login the login queue turned away as busy: the client retries a busy front with
        back-off, and the front's congestion must not spend the newcomer's own budget (it
        did: after a few busy answers, a new player was told to slow down, then that no new
        accounts could be made, and never got in)."""
        own = self._source(source, now)
        place = self._address(address, now)
        buckets = [own.logins(now), *([place.logins] if place else []), self._logins]
        if verdict is Login.REGISTER:
            buckets += [own.registrations(now), self._registrations]
            if place:
                buckets.append(place.registrations)
        for bucket in buckets:
            bucket.tokens = min(bucket.capacity, bucket.tokens + 1)

    def _address(self, address: str, now: float) -> _Address | None:
        if not address:
            return None
        return _recent(self._addresses, address, lambda: _Address(self.policy, now), self.policy)

    def may_answer_error(self, source: Hashable, now: float) -> bool:
        """Whether a refusal may be answered; False: drop the request silently."""
        if self._source(source, now).errors(now).try_take(now):
            return True
        self.stats.silenced += 1
        return False
