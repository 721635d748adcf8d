"""Admission and flood control at the front, before any request reaches a worker (sans-I/O).

The per-session token bucket (ratelimit.py) only sees requests that carry a session; these
limits apply before authentication, per *source*: the request's routing path (the connection,
or the player's connection behind a relay, since a relay adds its own routing frame). The
engine does not tell the front a peer's IP address, so many connections from one attacker are
held in check by the global login and registration budgets and the connection cap (limits.py).

* every request of a source: a bucket (a fresh random token per request no longer helps);
* logins: a small bucket per source and one for the whole front (password hashing is the most
  expensive thing a worker does; a flood of logins must not starve everyone's actions);
* registrations: every login spends a registration token of its source and of the front when
  one is left; a login with none left still logs an existing player in, but may not create an
  account (the worker gets a "login only" job), so junk accounts are bounded by the budgets;
* pings: a small bucket per source (the pong is computed by the front itself);
* error replies: a budget per source; past it, bad requests are dropped without an answer, so
  a flood of tiny malformed requests cannot make the front send more than it receives.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from .ratelimit import TokenBucket


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
    (refills stop at capacity), and most sources never log in, ping or err. A client's
    per-call routing tag makes each of its requests a new source today, so this is paid per
    request: admitting one cost 22 us with five eager buckets, 8 us with one (timeit)."""

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


@dataclass
class AdmissionStats:
    limited: int = 0  # requests refused by a source's or the front's budget
    silenced: int = 0  # bad requests dropped without an answer (error budget spent)
    login_only: int = 0  # logins that could not create an account


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

    def _source(self, source: Hashable, now: float) -> _Source:
        found = self._sources.get(source)
        if found is None:
            found = self._sources[source] = _Source(self.policy, now)
            if len(self._sources) > self.policy.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        return found

    def request(self, source: Hashable, now: float) -> bool:
        """Any request: False when the source sends faster than its budget."""
        if self._source(source, now).requests.try_take(now):
            return True
        self.stats.limited += 1
        return False

    def ping(self, source: Hashable, now: float) -> bool:
        return self._source(source, now).pings(now).try_take(now)

    def login(self, source: Hashable, now: float) -> Login:
        """The verdict on a login: refused (over a budget), or admitted with or without the
        right to create an account. How many logins hash at once is the login queue's
        business (gameserver/logins.py)."""
        own = self._source(source, now)
        if not own.logins(now).try_take(now):
            self.stats.limited += 1
            return Login.REFUSED
        if not self._logins.try_take(now):
            own.logins(now).tokens += 1  # the source's token back: the front's budget said no
            self.stats.limited += 1
            return Login.REFUSED
        if own.registrations(now).try_take(now):
            if self._registrations.try_take(now):
                return Login.REGISTER
            own.registrations(now).tokens += 1
        self.stats.login_only += 1
        return Login.EXISTING_ONLY

    def may_answer_error(self, source: Hashable, now: float) -> bool:
        """Whether a refusal may be answered; False: drop the request silently."""
        if self._source(source, now).errors(now).try_take(now):
            return True
        self.stats.silenced += 1
        return False
