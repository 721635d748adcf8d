"""The real docker-compose.yml under a real Docker engine, with images built offline from the
wheelhouse (deploy/build-images): the stack comes up healthy, two players play (one through
relay-nz), the workers scale from 3 to 6 and every one of them serves, a worker whose process is
SIGKILLed is replaced by its restart policy while play goes on, and the whole stack stops cleanly
(every container exits 0). Skipped, with the reason, where no Docker engine answers.

Durations are printed (`pytest -s`): the image build (cached after the first) and each phase.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploykit import REPO_ROOT, WAIT, chat, learn_key, meet, wait_workers
from dockerkit import BUILD_WAIT, HEALTHY_WAIT, ComposeStack, build_images, docker, why_no_docker
from serverkit import run

from client.session import GameSession

VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"crossroads:{VERSION}"
NO_DOCKER = why_no_docker()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NO_DOCKER is not None, reason=NO_DOCKER or ""),
    # The first test also builds the images (the very first build, the base images too).
    pytest.mark.timeout(BUILD_WAIT + 900),
]
#: A worker's DEBUG log has one of these per job it took (engine.patterns.paranoid_pirate).
JOB_LINE = "job from "
#: Exchanges (two jobs each) allowed for the LRU queue to have handed every worker a job.
MAX_ROUNDS = 30


def say(text: str) -> None:
    print(f"[docker] {text}", flush=True)


@pytest.fixture(scope="module")
def image() -> str:
    say(f"deploy/build-images server: {build_images():.1f}s")
    return IMAGE


@pytest.fixture
def stack(image: str, tmp_path: Path) -> Iterator[ComposeStack]:
    stack = ComposeStack(tmp_path, CROSSROADS_LOG_LEVEL="DEBUG")
    try:
        yield stack
    finally:
        started = time.monotonic()
        stack.down()
        say(f"compose down: {time.monotonic() - started:.1f}s")


def test_server_image_carries_neither_client_nor_load_tester(image: str) -> None:
    probe = "import importlib.util as u; print(*(bool(u.find_spec(m)) for m in %r))"
    modules = ("gameserver", "redis", "prompt_toolkit", "locust", "yaml", "pip")
    out = docker("run", "--rm", "--entrypoint", "python3", image, "-c", probe % (modules,))
    assert out.split() == ["True", "True", "False", "False", "False", "False"]
    done = subprocess.run(
        ["docker", "run", "--rm", image, "play", "--name", "x"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "pip install 'crossroads[client]'" in done.stderr


def worker_process(container: dict) -> int:
    """The host PID of the crossroads process in a worker container (docker-init's child)."""
    init = container["State"]["Pid"]
    children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


#: Run inside a container: print what a URL on the compose network answers.
FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"


def scrape_from(stack: ComposeStack, service: str, url: str) -> dict[str, float]:
    """``url``'s Prometheus samples, fetched from inside ``service``'s first container (the
    metrics port is on the compose network only)."""
    container = stack.containers(service)[0]
    text = docker("exec", container["Id"], "python3", "-c", FETCH, url)
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, number = line.rpartition(" ")
            samples[name] = float(number)
    return samples


def wait_restarted(stack: ComposeStack, container_id: str, restarts: int) -> None:
    deadline = time.monotonic() + HEALTHY_WAIT
    while True:
        (state,) = [c for c in stack.containers("worker") if c["Id"] == container_id]
        health = (state["State"].get("Health") or {}).get("Status")
        if state["RestartCount"] > restarts and health == "healthy":
            return
        assert time.monotonic() < deadline, f"never restarted healthy: {state['State']}"
        time.sleep(0.5)  # polling Docker's state; the deadline bounds the wait


def test_compose_stack_plays_scales_heals_and_stops_cleanly(stack: ComposeStack) -> None:
    started = time.monotonic()
    stack.compose("up", "--detach")
    stack.wait_healthy({"redis": 1, "front": 1, "worker": 3, "relay-eu": 1, "relay-nz": 1})
    say(f"up and healthy: {time.monotonic() - started:.1f}s")
    actions = stack.endpoint("CROSSROADS_ACTIONS_PORT")
    updates = stack.endpoint("CROSSROADS_UPDATES_PORT")
    nz_actions = stack.endpoint("CROSSROADS_RELAY_NZ_ACTIONS_PORT")
    nz_updates = stack.endpoint("CROSSROADS_RELAY_NZ_UPDATES_PORT")
    # Secure by default: the front's and the relay's keys, learnt on first use and pinned.
    hosts = stack.workdir / "known_hosts"
    key = learn_key(actions, stack.endpoint("CROSSROADS_KEY_PORT"), hosts)
    nz_key = learn_key(nz_actions, stack.endpoint("CROSSROADS_RELAY_NZ_KEY_PORT"), hosts)
    wait_workers(actions, 3, server_key=key)

    async def play() -> None:
        async with (
            GameSession(nz_actions, nz_updates, server_key=nz_key) as alice,
            GameSession(actions, updates, server_key=key) as bob,
        ):
            await meet(alice, bob)
            phase = time.monotonic()
            scale = ("up", "--detach", "--no-recreate", "--scale", "worker=6")
            await asyncio.to_thread(stack.compose, *scale)
            await asyncio.to_thread(stack.wait_healthy, {"worker": 6})
            await asyncio.to_thread(wait_workers, actions, 6, WAIT, key)
            say(f"scaled 3 -> 6 workers, all healthy: {time.monotonic() - phase:.1f}s")

            workers = stack.containers("worker")
            for n in range(MAX_ROUNDS):
                idle = [c["Name"] for c in workers if JOB_LINE not in stack.logs(c["Id"])]
                if not idle:
                    break
                await chat(alice, bob, f"round {n}")
            assert not idle, f"these workers never got a job: {idle}"

            phase = time.monotonic()
            victim = workers[0]
            os.kill(worker_process(victim), signal.SIGKILL)
            await asyncio.to_thread(wait_restarted, stack, victim["Id"], victim["RestartCount"])
            await asyncio.to_thread(wait_workers, actions, 6, WAIT, key)
            say(f"killed worker replaced and healthy: {time.monotonic() - phase:.1f}s")
            await chat(alice, bob, "after the restart")

    run(play(), timeout=HEALTHY_WAIT * 4)

    # Metrics, over the compose network only: the front's, a worker's (found by its service
    # name, as Prometheus finds them) and a relay's, each fetched from another container.
    front_metrics = scrape_from(stack, "relay-eu", "http://front:9300/metrics")
    assert front_metrics["crossroads_workers_alive"] == 6
    assert front_metrics['crossroads_front_requests_total{outcome="queued"}'] > 0
    worker_metrics = scrape_from(stack, "front", "http://worker:9300/metrics")
    assert 'crossroads_process_info{id="' in " ".join(worker_metrics)
    # Counters with labels appear once used, and the name may reach the replica that was just
    # restarted: each replica, by its container name, and one of them has counted actions.
    counted = []
    for worker in stack.containers("worker"):
        url = f"http://{worker['Name'].lstrip('/')}:9300/metrics"
        samples = scrape_from(stack, "front", url)
        counted += [v for k, v in samples.items() if k.startswith("crossroads_actions_total")]
    assert sum(counted) > 0
    relay_metrics = scrape_from(stack, "front", "http://relay-nz:9300/metrics")
    assert relay_metrics['crossroads_relay_upstream_up{link="events"}'] == 1
    for container in stack.containers():  # exposed by the image, published by no service
        assert not (container["NetworkSettings"]["Ports"] or {}).get("9300/tcp"), container["Name"]
    say("metrics scraped from front, a worker and relay-nz on the compose network")

    phase = time.monotonic()
    stack.compose("stop", "--timeout", "30")
    exits = {c["Name"]: (c["State"]["Status"], c["State"]["ExitCode"]) for c in stack.containers()}
    assert len(exits) == 10 and set(exits.values()) == {("exited", 0)}, exits
    (front,) = stack.containers("front")
    assert "stopped:" in stack.logs(front["Id"])  # drained, then said goodbye
    say(
        f"stopped cleanly: {time.monotonic() - phase:.1f}s; whole test {time.monotonic() - started:.1f}s"
    )
