"""Helpers for the Docker test: is an engine there, the images (deploy/build-images), and one
compose project of the real docker-compose.yml on free host ports.

Every container the project made is removed at teardown (`compose down`), whatever happened;
waits poll Docker's own state (container health, restart counts) with deadlines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from deploykit import COMPOSE_FILE, REPO_ROOT, clean_env

from loadtest.ports import free_ports

BUILD_IMAGES = REPO_ROOT / "deploy" / "build-images"
#: Bound on the image build: the first one makes the base images with debootstrap (minutes).
BUILD_WAIT = 1500.0
#: Bound on the stack (or a change to it) becoming healthy on a loaded 2-core machine.
HEALTHY_WAIT = 120.0
#: Host side of every published port: free ports on loopback only.
HOST_PORT_VARIABLES = (
    "CROSSROADS_KEY_PORT",
    "CROSSROADS_RELAY_EU_KEY_PORT",
    "CROSSROADS_RELAY_NZ_KEY_PORT",
    "CROSSROADS_ACTIONS_PORT",
    "CROSSROADS_UPDATES_PORT",
    "CROSSROADS_WORKERS_PORT",
    "CROSSROADS_RELAY_EU_ACTIONS_PORT",
    "CROSSROADS_RELAY_EU_UPDATES_PORT",
    "CROSSROADS_RELAY_NZ_ACTIONS_PORT",
    "CROSSROADS_RELAY_NZ_UPDATES_PORT",
)


def docker(*args: str, timeout: float = 60.0, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def why_no_docker() -> str | None:
    """None if a Docker engine and a compose command are here, else the reason to skip."""
    if shutil.which("docker") is None:
        return "no docker command (apt-get install docker.io; .ci/run does it)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no Docker engine answers ({reason}); .ci/run installs and starts one"
    if compose_command() is None:
        return "neither `docker compose` nor `docker-compose` is installed"
    return None


def compose_command() -> list[str] | None:
    """`docker compose` (v2) if it works, else `docker-compose` (v1), else None."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def build_images() -> float:
    """Run deploy/build-images for the server image; its duration in seconds."""
    started = time.monotonic()
    done = subprocess.run(
        [str(BUILD_IMAGES), "server"],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=BUILD_WAIT,
        check=False,
    )
    assert done.returncode == 0, f"deploy/build-images failed:\n{done.stderr[-3000:]}"
    return time.monotonic() - started


class ComposeStack:
    """One compose project of the real file, on free loopback ports."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        command = compose_command()
        assert command is not None
        self.project = f"crossroads-test-{os.getpid()}"
        self.command = [*command, "--project-name", self.project, "--file", str(COMPOSE_FILE)]
        ports = free_ports(len(HOST_PORT_VARIABLES))
        self.ports = dict(zip(HOST_PORT_VARIABLES, map(str, ports), strict=True))
        self.env = {**clean_env(), **self.ports, **settings}
        self.env["CROSSROADS_PUBLISH_HOST"] = "127.0.0.1"
        self.workdir = workdir
        self.log = (workdir / "compose.log").open("a")

    def endpoint(self, variable: str) -> str:
        return f"tcp://127.0.0.1:{self.ports[variable]}"

    def compose(self, *args: str, timeout: float = HEALTHY_WAIT) -> str:
        done = subprocess.run(
            [*self.command, *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.log.write(f"$ compose {' '.join(args)}\n{done.stdout}{done.stderr}\n")
        self.log.flush()
        assert done.returncode == 0, f"compose {' '.join(args)}: {done.stderr[-2000:]}"
        return done.stdout

    def containers(self, service: str | None = None) -> list[dict]:
        """`docker inspect` of the project's containers (of one service), running or not."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service is not None:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = docker("ps", "--all", "--quiet", *filters).split()
        return json.loads(docker("inspect", *ids)) if ids else []

    def wait_healthy(self, counts: dict[str, int], timeout: float = HEALTHY_WAIT) -> None:
        """Until each service has that many running containers, every one of them healthy."""
        deadline = time.monotonic() + timeout
        while True:
            states = {
                service: [
                    (c["State"]["Status"], (c["State"].get("Health") or {}).get("Status"))
                    for c in self.containers(service)
                ]
                for service in counts
            }
            if all(
                len(states[s]) == n and all(state == ("running", "healthy") for state in states[s])
                for s, n in counts.items()
            ):
                return
            assert time.monotonic() < deadline, f"never all healthy: {states}"
            time.sleep(1.0)  # polling Docker's health state; the deadline bounds the wait

    def logs(self, container_id: str) -> str:
        done = subprocess.run(
            ["docker", "logs", container_id], capture_output=True, text=True, check=False
        )
        return done.stdout + done.stderr

    def down(self) -> None:
        """Remove the project's containers, network and volume, whatever state they are in."""
        try:
            self.compose("down", "--volumes", "--timeout", "30", timeout=180)
        finally:
            leftovers = [c["Id"] for c in self.containers()]
            if leftovers:
                docker("rm", "--force", "--volumes", *leftovers, check=False)
            self.log.close()
