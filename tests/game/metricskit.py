"""Scraping /metrics in tests: fetch over real HTTP, parse with prometheus-client's own parser
(so a malformed exposition fails the test), and look samples up by name and labels."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

WAIT = 30.0
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wait_value(url: str, name: str, expected: float, timeout: float = WAIT, **labels: str) -> None:
    """Scrape until ``name{labels}`` equals ``expected`` (the worker refreshes some gauges)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = value(scrape(url), name, **labels)
        if seen == expected:
            return
        time.sleep(0.2)  # scrape pace; the deadline bounds the wait
    raise AssertionError(f"{name}{labels} stayed {seen}, expected {expected}")
