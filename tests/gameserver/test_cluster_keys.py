"""Cluster keys: the files `crossroads keys` writes, the allow-list the front reads, and a real
front whose worker port refuses unknown keys and admits one added while it runs (rotation)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

import engine
import engine.asyncio as ezmq
from engine.auth import load_certificate
from engine.patterns.paranoid_pirate import PPP_READY
from engine.utils.monitor import recv_monitor_message
from gameserver import keys_cli
from gameserver.cluster_keys import (
    ALLOWED_WORKERS,
    FrontSecurity,
    KeysError,
    allow_worker,
    ensure_cluster,
    ensure_pair,
    load_pair,
    public_key,
)
from gameserver.front import Front

LOCAL = "tcp://127.0.0.1:0"
WAIT_S = 20.0


def test_keys_cli_init_worker_revoke_show(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    keys = tmp_path / "keys"
    assert keys_cli.main(["--keys-dir", str(keys), "show"]) == 1  # none yet: said, not listed
    assert capsys.readouterr().err.startswith(f"no keys directory at {keys}: ")
    assert not keys.exists()
    assert keys_cli.main(["--keys-dir", str(keys), "init"]) == 0
    for name in ("front", "worker", "relay"):
        secret = keys / f"{name}.key_secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert load_pair(secret).public == load_certificate(keys / f"{name}.key")[0]
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert [p.name for p in (keys / ALLOWED_WORKERS).iterdir()] == ["worker.key"]
    front_before = load_pair(keys / "front.key_secret")
    assert keys_cli.main(["--keys-dir", str(keys), "init"]) == 0  # kept, never replaced
    assert load_pair(keys / "front.key_secret") == front_before

    assert keys_cli.main(["--keys-dir", str(keys), "worker", "far-1"]) == 0
    assert (keys / ALLOWED_WORKERS / "far-1.key").exists()
    capsys.readouterr()
    assert keys_cli.main(["--keys-dir", str(keys), "show"]) == 0
    shown = capsys.readouterr().out
    assert front_before.public.decode() in shown and "far-1" in shown
    assert front_before.secret.decode() not in shown

    assert keys_cli.main(["--keys-dir", str(keys), "revoke", "far-1"]) == 0
    assert not (keys / ALLOWED_WORKERS / "far-1.key").exists()
    assert keys_cli.main(["--keys-dir", str(keys), "revoke", "far-1"]) == 1
    with pytest.raises(SystemExit):
        keys_cli.main(["--keys-dir", str(keys), "worker", "../escape"])


def test_public_key_from_text_or_file_and_clear_errors(tmp_path: Path) -> None:
    pair, _ = ensure_pair(tmp_path, "front")
    assert public_key(pair.public.decode()) == pair.public
    assert public_key(str(tmp_path / "front.key")) == pair.public
    with pytest.raises(KeysError, match="Z85"):
        public_key("x" * 39 + "~")
    with pytest.raises(KeysError):
        public_key(str(tmp_path / "missing.key"))
    with pytest.raises(KeysError, match="no secret key"):
        load_pair(tmp_path / "front.key")


async def _handshake(endpoint: str, server_key: bytes, pair: tuple[bytes, bytes]) -> int:
    """Connect a would-be worker; the first handshake event its monitor reports."""
    context = ezmq.Context()
    sock = context.socket(engine.DEALER)
    sock.linger = 0
    sock.curve_serverkey = server_key
    sock.curve_publickey, sock.curve_secretkey = pair
    monitor = sock.get_monitor_socket(
        engine.EVENT_HANDSHAKE_SUCCEEDED | engine.EVENT_HANDSHAKE_FAILED_AUTH
    )
    sock.connect(endpoint)
    await sock.send_multipart([PPP_READY])
    try:
        event = await asyncio.wait_for(recv_monitor_message(monitor), WAIT_S)
        return int(event["event"])
    finally:
        context.destroy(linger=0)


def test_front_refuses_unknown_worker_keys_and_reads_new_ones_without_restart(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    front_pair, created = ensure_cluster(keys)
    assert len(created) == 2

    async def scenario() -> None:
        front = Front(
            actions_bind=LOCAL,
            updates_bind=LOCAL,
            workers_bind=LOCAL,
            security=FrontSecurity(front_pair, keys / ALLOWED_WORKERS),
        )
        runner = asyncio.create_task(front.run())
        try:
            stranger = engine.curve_keypair()
            event = await _handshake(front.workers_endpoint, front_pair.public, stranger)
            assert event == engine.EVENT_HANDSHAKE_FAILED_AUTH
            assert front.zap is not None and front.zap.refused == 1
            # Admit the stranger's key by adding its certificate: no restart needed.
            stranger_dir = tmp_path / "stranger"
            stranger_dir.mkdir()
            (stranger_dir / "s.key").write_text(
                'curve\n    public-key = "' + stranger[0].decode() + '"\n'
            )
            os.utime(keys / ALLOWED_WORKERS, ns=(1, 1))  # a new stamp, even within one tick
            allow_worker(keys, "s", stranger_dir / "s.key")
            event = await _handshake(front.workers_endpoint, front_pair.public, stranger)
            assert event == engine.EVENT_HANDSHAKE_SUCCEEDED
            local = load_pair(keys / "worker.key_secret")
            event = await _handshake(
                front.workers_endpoint, front_pair.public, (local.public, local.secret)
            )
            assert event == engine.EVENT_HANDSHAKE_SUCCEEDED
        finally:
            front.shutdown()
            await asyncio.wait_for(runner, WAIT_S)
            front.close(linger=0)

    asyncio.run(scenario())
