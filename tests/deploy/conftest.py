"""Fixtures for the deployment tests: `crossroads compose-local` on the real compose file."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # deploykit
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "game"))  # serverkit

from deploykit import COMPOSE_FILE, ComposeLocal


@pytest.fixture
def compose(tmp_path: Path) -> Iterator[ComposeLocal]:
    """The real docker-compose.yml running as local processes; every PID killed at teardown."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    stack = ComposeLocal(COMPOSE_FILE, tmp_path)
    try:
        yield stack
    finally:
        stack.teardown()
