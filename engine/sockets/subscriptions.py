"""Topic prefix matching for PUB/SUB: who subscribed to what, and does a topic match."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

Subscriber = TypeVar("Subscriber", bound=Hashable)


class _PrefixLengths:
    """The distinct prefix lengths in use, so matching costs one dict lookup per length."""

    __slots__ = ("_counts", "ordered")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.ordered: list[int] = []

    def add(self, length: int) -> None:
        n = self._counts.get(length, 0)
        self._counts[length] = n + 1
        if n == 0:
            self.ordered = sorted(self._counts)

    def remove(self, length: int) -> None:
        n = self._counts[length] - 1
        if n:
            self._counts[length] = n
        else:
            del self._counts[length]
            self.ordered = sorted(self._counts)


class TopicFilter:
    """A subscriber's own, reference-counted subscriptions (SUB, XSUB)."""

    __slots__ = ("_lengths", "counts")

    def __init__(self) -> None:
        self.counts: dict[bytes, int] = {}
        self._lengths = _PrefixLengths()

    def add(self, prefix: bytes) -> bool:
        """True when the prefix is new (it must then be sent upstream)."""
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        if n == 0:
            self._lengths.add(len(prefix))
            return True
        return False

    def remove(self, prefix: bytes) -> bool:
        """True when the last reference went (a CANCEL must be sent upstream)."""
        n = self.counts.get(prefix, 0)
        if n == 0:
            return False
        if n > 1:
            self.counts[prefix] = n - 1
            return False
        del self.counts[prefix]
        self._lengths.remove(len(prefix))
        return True

    def matches(self, topic: bytes) -> bool:
        counts = self.counts
        size = len(topic)
        for length in self._lengths.ordered:
            if length > size:
                return False
            if topic[:length] in counts:
                return True
        return False


class Subscribers(Generic[Subscriber]):
    """A publisher's view: for each prefix, the set of peers that subscribed to it."""

    __slots__ = ("_by_peer", "_by_prefix", "_lengths")

    def __init__(self) -> None:
        self._by_prefix: dict[bytes, set[Subscriber]] = {}
        #: Each peer's own prefixes: its count for MAX_SUBSCRIPTIONS, and a departure that
        #: costs its own subscriptions rather than a scan of everybody's.
        self._by_peer: dict[Subscriber, set[bytes]] = {}
        self._lengths = _PrefixLengths()

    def count(self, peer: Subscriber) -> int:
        """How many distinct prefixes `peer` subscribes to."""
        own = self._by_peer.get(peer)
        return 0 if own is None else len(own)

    def has(self, prefix: bytes, peer: Subscriber) -> bool:
        own = self._by_peer.get(peer)
        return own is not None and prefix in own

    def add(self, prefix: bytes, peer: Subscriber) -> bool:
        """Subscribing twice is idempotent; True when nobody had this prefix before."""
        own = self._by_peer.get(peer)
        if own is None:
            own = self._by_peer[peer] = set()
        own.add(prefix)
        peers = self._by_prefix.get(prefix)
        if peers is None:
            self._by_prefix[prefix] = {peer}
            self._lengths.add(len(prefix))
            return True
        peers.add(peer)
        return False

    def remove(self, prefix: bytes, peer: Subscriber) -> bool:
        """True when the prefix has no subscriber left."""
        peers = self._by_prefix.get(prefix)
        if peers is None or peer not in peers:
            return False
        peers.discard(peer)
        own = self._by_peer.get(peer)
        if own is not None:
            own.discard(prefix)
            if not own:
                del self._by_peer[peer]
        if peers:
            return False
        del self._by_prefix[prefix]
        self._lengths.remove(len(prefix))
        return True

    def of_peer(self, peer: Subscriber) -> list[bytes]:
        """The prefixes `peer` subscribes to."""
        return list(self._by_peer.get(peer, ()))

    def remove_peer(self, peer: Subscriber) -> list[bytes]:
        """Drop every subscription of a departed peer; returns the prefixes left unsubscribed,
        in byte order, as libzmq walks its trie to report them (an XPUB's reader sees the
        same unsubscriptions in the same order on both)."""
        gone = sorted(self._by_peer.get(peer, ()))
        return [p for p in gone if self.remove(p, peer)]

    def match(self, topic: bytes) -> set[Subscriber] | frozenset[Subscriber]:
        """Every peer with a subscription that prefixes `topic` (each once)."""
        by_prefix = self._by_prefix
        size = len(topic)
        found: set[Subscriber] | None = None
        for length in self._lengths.ordered:
            if length > size:
                break
            peers = by_prefix.get(topic[:length])
            if peers:
                found = peers if found is None else found | peers
        return found if found is not None else frozenset()

    def everyone(self) -> set[Subscriber] | None:
        """When every subscription is to b"" (all topics), the set match() then returns
        for any topic, else None. It is the same set object until b"" has no subscriber."""
        if self._lengths.ordered == [0]:
            return self._by_prefix[b""]
        return None

    def topics(self) -> list[bytes]:
        return list(self._by_prefix)
