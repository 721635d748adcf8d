"""Static checks of the deployment files: every compose command is a valid `crossroads`
invocation, every variable is read by the code or documented as compose-only, and profiles and
the port plan of `compose-local` behave."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from deploykit import COMPOSE_FILE, REPO_ROOT, clean_env

from crossroads import compose_local as cl
from gameserver.settings import Settings, env_name

SETTINGS_VARS = {env_name(name) for name in Settings.model_fields}
TEXT = COMPOSE_FILE.read_text()
HEADER = "\n".join(line for line in TEXT.splitlines() if line.startswith("#"))
SERVICES = cl.load(COMPOSE_FILE, clean_env())


def crossroads_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name, spec in SERVICES.items():
        entry = cl.words(spec.get("entrypoint")) or (["crossroads"] if "build" in spec else [])
        if entry == ["crossroads"]:
            found.append((name, cl.words(spec.get("command"))))
        health = cl.words((spec.get("healthcheck") or {}).get("test"))
        if health[1:2] == ["crossroads"]:
            found.append((f"{name} healthcheck", health[2:]))
    return found


@pytest.mark.parametrize(("where", "args"), crossroads_commands(), ids=lambda v: str(v))
def test_every_crossroads_command_is_valid(where: str, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crossroads", *args, "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, (where, args, done.stderr)


def test_non_crossroads_services_are_only_optional() -> None:
    for name, spec in SERVICES.items():
        entry = cl.words(spec.get("entrypoint"))
        if entry and entry != ["crossroads"]:
            assert spec.get("profiles"), f"{name} runs {entry} outside a profile"


def test_every_environment_variable_is_read_by_the_code() -> None:
    locustfile = (REPO_ROOT / "loadtest" / "locustfile.py").read_text()
    for name, spec in SERVICES.items():
        for var in set(cl.environment(spec)) - SETTINGS_VARS:
            assert spec.get("profiles") == ["loadtest"], f"{name} sets {var}, which nothing reads"
            assert f'"{var}"' in locustfile, f"{name} sets {var}, which the locustfile ignores"


def test_every_interpolated_variable_is_a_setting_or_documented() -> None:
    names = cl.variables(TEXT)
    assert names, "the compose file should take its settings from the environment"
    for var in names - SETTINGS_VARS:
        assert var in HEADER, f"${{{var}}} is neither a setting nor documented in the header"
    for var in names:
        assert f"${{{var}:-" in TEXT, f"${{{var}}} has no default"


def test_front_and_worker_topology() -> None:
    front, worker = SERVICES["front"], SERVICES["worker"]
    assert cl.words(front["command"])[:3] == ["serve", "--workers", "0"]
    assert cl.words(front["healthcheck"]["test"])[1:3] == ["crossroads", "ping"]
    assert int(worker["deploy"]["replicas"]) == 3
    assert cl.environment(worker)["CROSSROADS_FRONT"] == "tcp://front:7303"
    assert cl.environment(worker)["CROSSROADS_STORE"] == "redis://redis:6379/0"
    redis = yaml.safe_load(TEXT)["services"]["redis"]
    assert "--appendonly" in redis["command"] and redis["volumes"]


def test_profiles_and_port_plan(tmp_path: Path) -> None:
    default = cl.active(SERVICES, [])
    assert "locust-master" not in default and "front" in default
    assert {"locust-master", "locust-worker"} <= set(cl.active(SERVICES, ["loadtest"]))
    plan = cl.Plan(default, tmp_path)
    assert plan.order.index("redis") < plan.order.index("front") < plan.order.index("worker")
    ports = [p for s in plan.services.values() for p in s.ports.values()]
    assert len(ports) == len(set(ports))
    worker = plan.env(plan.services["worker"])
    assert worker["CROSSROADS_FRONT"] == f"tcp://127.0.0.1:{plan.services['front'].ports[7303]}"
    relay = plan.command(plan.services["relay-nz"])
    assert f"tcp://127.0.0.1:{plan.services['front'].ports[7302]}" in relay
    assert relay[:4] == [sys.executable, "-m", "crossroads", "relay"]


def test_interpolation_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert cl.interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${NOPE-d} $$SET $SET", env) == (
        "x d  d $SET x"
    )


def test_dockerfile() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert 'pip install ".[redis,loadtest]"' in text
    assert "\nUSER crossroads" in text
    assert 'ENTRYPOINT ["crossroads"]' in text
    # Every package the wheel is built from is in the image's build context.
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert f"COPY {package} ./{package}\n" in text, package
