"""The lock files agree with pyproject.toml, and each role gets only its own dependencies: the
server image's lock has no client and no load tester in it, and a command whose extra is not
installed says which extra to install."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
from deploykit import REPO_ROOT, clean_env
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
#: Role -> the extras its image installs (see the Dockerfile's targets).
ROLES = {"server": ["redis"], "loadtest": ["redis", "loadtest"]}


def lock(role: str) -> dict[str, str]:
    """name -> pinned version; every pin must carry hashes (pip --require-hashes needs them)."""
    text = (REPO_ROOT / "requirements" / f"{role}.lock").read_text()
    pins = {}
    for block in re.split(r"\n(?=\S)", text):
        if not block.strip() or block.startswith("#"):
            continue
        requirement = Requirement(block.split("\\")[0].strip())
        assert "--hash=sha256:" in block, f"{role}.lock: {requirement.name} has no hash"
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{role}.lock: {requirement} is not pinned"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def wanted(extras: list[str]) -> list[Requirement]:
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return found


@pytest.mark.parametrize("role", ROLES)
def test_each_lock_pins_what_its_role_needs_within_pyproject_ranges(role: str) -> None:
    pins = lock(role)
    for requirement in wanted(ROLES[role]):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{role}.lock lacks {name}: run deploy/lock"
        assert requirement.specifier.contains(pins[name]), f"{role}.lock: {name} {pins[name]}"


def test_the_server_lock_has_neither_client_nor_load_tester() -> None:
    server = lock("server")
    for extra in ("client", "compose", "loadtest"):
        for requirement in wanted([extra])[len(PROJECT["dependencies"]) :]:
            assert canonicalize_name(requirement.name) not in server, requirement.name


def test_both_locks_agree_on_what_they_share() -> None:
    server, loadtest = lock("server"), lock("loadtest")
    assert server.items() <= loadtest.items()


def test_base_dependencies_are_what_every_role_needs() -> None:
    names = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    # argon2-cffi: the workers hash passwords, and any server image may run a worker.
    # pynacl: the worker port admits CURVE keys only, so every role needs it.
    assert names == {"argon2-cffi", "orjson", "pydantic", "pydantic-settings", "pynacl"}


@pytest.mark.parametrize(
    ("command", "module", "extra"),
    [("play", "prompt_toolkit", "client"), ("compose-local", "yaml", "compose")],
)
def test_a_missing_extra_is_named_in_one_line(command: str, module: str, extra: str) -> None:
    # A None entry in sys.modules makes `import module` fail exactly as if it were not installed.
    code = f"import sys; sys.modules[{module!r}] = None; from crossroads.cli import main; "
    code += f"sys.exit(main([{command!r}, '--help']))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"crossroads {command} needs the '{extra}' extra: pip install 'crossroads[{extra}]'"
    )
