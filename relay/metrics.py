"""A relay's Prometheus metrics: its forwarding counters, links and sockets, read at scrape
time from the counters the relay keeps anyway (nothing is added to the forwarding path)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from gameserver.broadcast import split_publication
from gameserver.metrics import Collector, new_registry, socket_traffic_family

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from .forwarder import Relay


def event_time(msg: list[bytes] | None) -> float | None:
    """When a public event was published (its ``ts``); None for a notice or anything else."""
    split = split_publication(msg[0]) if msg is not None and len(msg) == 1 else None
    if split is None:
        return None
    try:
        ts = orjson.loads(split[1]).get("ts")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None


def relay_registry(relay: Relay, instance_id: str) -> CollectorRegistry:
    registry = new_registry("relay", instance_id)
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    sockets = {"upstream": relay.up.traffic(), "downstream": relay.down.traffic()}
    if relay.router is not None and relay.dealer is not None:
        sockets["actions"] = relay.router.traffic()
        sockets["actions_upstream"] = relay.dealer.traffic()

    lag: list[float] = []  # the last computed lag, kept while the newest event has no time

    def collect() -> Iterator[Any]:
        stats = relay.snapshot()
        published = event_time(relay.stats.last_event)
        if published is not None:
            lag[:] = [max(0.0, relay.stats.last_event_at - published)]
        if lag:
            yield GaugeMetricFamily(
                "crossroads_relay_event_lag_seconds",
                "arrival minus publication time of the newest timed event (hosts' clocks must "
                "agree: NTP)",
                value=lag[0],
            )
        if relay.stats.last_event is not None:
            yield GaugeMetricFamily(
                "crossroads_relay_last_event_age_seconds",
                "seconds since the last event came from upstream",
                value=time.time() - relay.stats.last_event_at,
            )
        messages = CounterMetricFamily(
            "crossroads_relay_messages",
            "events from upstream (in) and copies sent to the region (out)",
            labels=["direction"],
        )
        messages.add_metric(["in"], stats["messages_in"])
        messages.add_metric(["out"], stats["messages_out"])
        yield messages
        size = CounterMetricFamily(
            "crossroads_relay_bytes", "event bytes in from upstream and out", labels=["direction"]
        )
        size.add_metric(["in"], stats["bytes_in"])
        size.add_metric(["out"], stats["bytes_out"])
        yield size
        yield GaugeMetricFamily(
            "crossroads_relay_subscribers", "subscribers connected", value=stats["subscribers"]
        )
        yield GaugeMetricFamily(
            "crossroads_relay_topics_upstream",
            "topics subscribed upstream for the region",
            value=stats["topics_upstream"],
        )
        links = GaugeMetricFamily(
            "crossroads_relay_upstream_up", "1 while an upstream link is up", labels=["link"]
        )
        links.add_metric(["events"], int(bool(stats["upstream_up"])))
        if stats["actions_upstream_up"] is not None:
            links.add_metric(["actions"], int(bool(stats["actions_upstream_up"])))
        yield links
        actions = CounterMetricFamily(
            "crossroads_relay_actions",
            "requests forwarded up and replies forwarded down",
            labels=["direction"],
        )
        actions.add_metric(["up"], stats["actions_requests"])
        actions.add_metric(["down"], stats["actions_replies"])
        yield actions
        catchups = CounterMetricFamily(
            "crossroads_relay_catchups", "catch-ups by where they were answered", labels=["where"]
        )
        catchups.add_metric(["local"], stats["catchups_local"])
        catchups.add_metric(["upstream"], stats["catchups_forwarded"])
        yield catchups
        yield from socket_traffic_family(sockets)

    registry.register(Collector(collect))
    return registry
