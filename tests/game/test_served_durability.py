"""A Redis without its append-only file is refused at start, with the way out in one line;
with --allow-volatile-store, or an append-only Redis, the game starts (issue 14's Redis attack:
a restart of a default Redis lost 3,086 acknowledged actions and let names be re-registered)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from gamekit import RedisServer
from serverkit import REPO_ROOT, WAIT

from gameserver.durability import check_durable
from gameserver.store import StoreError
from loadtest.ports import unused_port


def serve(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSROADS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["CROSSROADS_KEYS_DIR"] = str(tmp_path / "keys")
    return subprocess.run(
        [sys.executable, "-m", "crossroads", "serve", "--workers", "0", "--store", url, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT,
        cwd=tmp_path,
    )


def test_serve_refuses_a_volatile_redis(redis_server: RedisServer, tmp_path: Path) -> None:
    done = serve(redis_server.url(3), tmp_path)
    assert done.returncode == 1
    assert "appendonly" in done.stderr and "--allow-volatile-store" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_check_follows_redis_settings(redis_server: RedisServer, tmp_path: Path) -> None:
    url = redis_server.url(3)
    with pytest.raises(StoreError, match="append-only"):
        check_durable(url, allow_volatile=False)
    assert "given" in check_durable(url, allow_volatile=True)[0]
    assert check_durable("sqlite:///x.db", allow_volatile=False) == []
    port = unused_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    durable = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", *args, "--appendonly", "yes"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_timeout=1)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server never answered"
                time.sleep(0.05)
        client.close()
        durable_url = f"redis://127.0.0.1:{port}/0"
        assert check_durable(durable_url, allow_volatile=False) == []
    finally:
        durable.kill()
        durable.wait(WAIT)
