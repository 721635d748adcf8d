"""The local worker port's directory: private, short enough for a Unix socket, removed at the
end."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from gameserver.local_workers import LocalPort, remove_stale

#: What a Unix socket's address holds (sun_path, less its terminating NUL).
UNIX_PATH_OCTETS = 107


def _socket_path(port: LocalPort) -> bytes:
    return os.fsencode(port.endpoint.removeprefix("ipc://"))


def test_a_private_directory_under_the_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    port = LocalPort.create()
    assert port.directory.parent == tmp_path
    assert stat.S_IMODE(port.directory.stat().st_mode) == 0o700
    assert port.endpoint == f"ipc://{port.directory}/workers"
    assert len(port.secret) >= 32 and port.secret != LocalPort.create().secret
    port.remove()
    assert not port.directory.exists()


def test_a_long_temporary_directory_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    port = LocalPort.create()
    try:
        assert len(_socket_path(port)) <= UNIX_PATH_OCTETS
        assert port.directory.parent == Path("/tmp")
    finally:
        port.remove()


def test_the_runtime_directory_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    port = LocalPort.create()
    try:
        assert port.directory.parent == runtime
    finally:
        port.remove()


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's runtime directory, where LocalPort.create puts its directories."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


def _listen(port: LocalPort) -> socket.socket:
    """The port's socket, bound and listening, as a running serve holds it."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(_socket_path(port))
    listener.listen()
    return listener


def _killed_serves_port() -> LocalPort:
    """What a serve killed with SIGKILL leaves: its directory and socket file, nobody
    listening on it (closing does not remove the file, as a dying process does not)."""
    port = LocalPort.create()
    _listen(port).close()
    return port


def test_a_killed_serves_directory_goes_at_the_next_start(runtime_dir: Path) -> None:
    dead = _killed_serves_port()
    live = LocalPort.create()
    listening = _listen(live)
    starting = LocalPort.create()  # made, its socket not bound yet
    crowded = _killed_serves_port()
    (crowded.directory / "notes").write_text("not ours to remove")
    kept = [live, starting, crowded]
    try:
        assert not dead.directory.exists()
        kept.append(LocalPort.create())
        assert sorted(p.name for p in runtime_dir.iterdir()) == sorted(
            p.directory.name for p in kept
        )
        assert remove_stale(runtime_dir) == []
    finally:
        listening.close()
        for port in kept:
            port.remove()


def test_a_leftover_with_other_permissions_is_left_alone(runtime_dir: Path) -> None:
    port = _killed_serves_port()
    port.directory.chmod(0o755)
    try:
        assert remove_stale(runtime_dir) == []
        assert port.directory.exists()
        port.directory.chmod(0o700)
        assert remove_stale(runtime_dir) == [port.directory]
    finally:
        port.remove()
