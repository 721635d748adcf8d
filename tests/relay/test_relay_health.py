"""A relay's health follows its upstream links: `crossroads-health relay` says ok only while the
relay is connected upstream (events, and actions when it carries them), its stats show each link,
and its liveness file is touched only meanwhile. A hung upstream (SIGSTOP: the TCP connection
stays open) counts as down too, through ZMTP heartbeats."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "game"))  # serverkit

from relaykit import LOCAL, REPO_ROOT, WAIT, Publisher, Relay, upstream_of
from serverkit import Server

from engine.security.keys import curve_keypair
from gameserver import health
from gameserver.known_hosts import KnownHosts


def check(endpoint: str) -> subprocess.CompletedProcess[str]:
    """The health check as the image runs it (no site-packages)."""
    checker = REPO_ROOT / "gameserver" / "health.py"
    return subprocess.run(
        [sys.executable, "-IS", str(checker), "relay", endpoint, "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def wait_health(endpoint: str, healthy: bool) -> str:
    """Until the check passes (or fails); returns its stderr."""
    deadline = time.monotonic() + WAIT
    while True:
        done = check(endpoint)
        if (done.returncode == 0) == healthy:
            return done.stderr
        assert time.monotonic() < deadline, f"health never became {healthy}: {done.stderr}"
        time.sleep(0.1)  # polling pace; the deadline bounds the wait


def wait_file(path: Path, fresh: bool, max_age: float = 2 * health.TOUCH_EVERY_S) -> None:
    """Until the liveness file is (or is no longer) younger than ``max_age``."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            health.check_file(str(path), max_age)
            if fresh:
                return
        except health.Unhealthy:
            if not fresh:
                return
        assert time.monotonic() < deadline, f"{path} never became {'fresh' if fresh else 'stale'}"
        time.sleep(0.2)  # polling pace; the deadline bounds the wait


def test_health_follows_the_events_upstream_dead_hung_and_back(
    publisher: Callable[..., Publisher], relay: Callable[..., Relay], tmp_path: Path
) -> None:
    pub = publisher()
    alive = tmp_path / "relay.health"
    r = relay(pub.endpoint, "--health-file", str(alive))
    wait_health(r.stats_endpoint, True)
    stats = r.stats()
    assert stats["upstream_up"] is True and stats["actions_upstream_up"] is None
    wait_file(alive, fresh=True)

    os.kill(pub.process.pid, signal.SIGSTOP)  # hung: the connection stays, nothing answers
    assert "events link is down" in wait_health(r.stats_endpoint, False)
    os.kill(pub.process.pid, signal.SIGCONT)
    wait_health(r.stats_endpoint, True)

    pub.kill()
    assert "events link is down" in wait_health(r.stats_endpoint, False)
    assert r.stats()["upstream_up"] is False
    wait_file(alive, fresh=False)

    publisher(bind=f"tcp://127.0.0.1:{pub.port}")  # back on the same port: the relay redials
    wait_health(r.stats_endpoint, True)
    wait_file(alive, fresh=True)


def test_health_needs_the_actions_link_too(relay: Callable[..., Relay], tmp_path: Path) -> None:
    front = Server(f"sqlite:///{tmp_path / 'game.db'}", tmp_path / "serve.log", 1)
    try:
        r = relay(front.updates, *upstream_of(front), "--actions-bind", LOCAL)
        wait_health(r.stats_endpoint, True)
        assert r.stats()["actions_upstream_up"] is True
        front.kill_all()
        assert "link is down" in wait_health(r.stats_endpoint, False)
        stats = r.stats()
        assert stats["upstream_up"] is False and stats["actions_upstream_up"] is False
    finally:
        front.kill_all()


def test_a_failing_upstream_handshake_is_said_once_and_the_relay_stays_unhealthy(
    publisher: Callable[..., Publisher], relay: Callable[..., Relay], tmp_path: Path
) -> None:
    """A key remembered for an upstream that no longer uses it (here: a plaintext publisher on
    a port a secure front once had) fails the handshake: a mechanism mismatch, which is not
    redialled (as in libzmq), or, if the publisher closes first, a lost connection, which is.
    The relay says so once, not at every retry, and its health says the link is down (it once
    just forwarded nothing, silently)."""
    pub = publisher()
    stale = curve_keypair()[0].decode()
    KnownHosts(tmp_path / "xdg" / "crossroads" / "known_hosts").remember(pub.endpoint, stale)
    r = relay(pub.endpoint)
    log = tmp_path / "relay0.log"
    said = "the upstream events link to " + pub.endpoint + " failed its handshake"
    deadline = time.monotonic() + WAIT
    while said not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"never said: {said}\n{log.read_text()[-1500:]}"
        time.sleep(0.1)  # polling the relay's log; the deadline bounds the wait
    assert "events link is down" in wait_health(r.stats_endpoint, False)
    assert log.read_text(errors="replace").count(said) == 1
