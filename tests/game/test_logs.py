"""Structured logs: `--log-format json` gives one JSON object per line from every process (front,
workers, relay), each naming its role and unique id, per-request lines carry the action id and a
session reference, and no password or session token ever reaches a log line."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from serverkit import REPO_ROOT, WAIT, StartServer, run

from gameserver import logs

PASSWORD = "correct-horse-battery-staple-9"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not one JSON object per line: {line!r}") from None
    return parsed


def test_a_real_game_logs_json_without_secrets(start_server: StartServer, sqlite_url: str) -> None:
    server = start_server(sqlite_url, 2, "--log-format", "json", "--log-level", "DEBUG")
    tokens: list[str] = []

    async def play() -> None:
        alice = server.session()
        try:
            await alice.login("Alice", PASSWORD)
            tokens.append(alice.token or "")
            assert (await alice.act("say the password is not here")).ok
            assert not (await alice.act("xyzzy")).ok
            await alice.login("Alice", "wrong-" + PASSWORD)  # refused: bad credentials
        except Exception as exc:  # the refused login raises in the client: expected
            assert "Wrong name or password" in str(exc)
        finally:
            await alice.close()

    run(play())
    assert server.stop() == 0
    text = server.log_path.read_text()
    lines = json_lines(server.log_path)
    assert PASSWORD not in text and tokens[0] and tokens[0] not in text

    for line in lines:
        assert TIMESTAMP.match(line["ts"]), line
        assert {"level", "role", "id", "logger", "msg"} <= line.keys(), line
    ids = {line["role"]: set() for line in lines}
    for line in lines:
        ids[line["role"]].add(line["id"])
    assert set(ids) == {"front", "worker"}
    assert len(ids["front"]) == 1 and len(ids["worker"]) == 2  # two workers, two ids
    assert all(re.fullmatch(r"w\d\.[\w-]+\.\d+\.[0-9a-f]{12}", i) for i in ids["worker"])

    requests = [line for line in lines if line["logger"] == "gameserver.actions"]
    says = [line for line in requests if line["verb"] == "say"]
    assert len(says) == 1 and says[0]["outcome"] == "ok" and says[0]["action_id"]
    assert re.fullmatch(r"[0-9a-f]{12}", says[0]["session"])
    refused = [line for line in requests if line["verb"] == "unknown"]
    assert refused[0]["outcome"] == "refused" and refused[0]["session"] == says[0]["session"]
    logins = [line for line in requests if line["verb"] == "login"]
    assert [line["outcome"] for line in logins] == ["ok", "bad_credentials"]
    assert all(line["player"] == "Alice" and line["session"] is None for line in logins)


def test_secret_fields_are_redacted_and_tracebacks_stay_on_one_line() -> None:
    stream = io.StringIO()
    logs.setup("INFO", "front", "json", stream=stream)
    try:
        log = logging.getLogger("test.logs")
        log.info("hello %s", "there", extra={"password": "pw1", "Token": "tok1", "player": "Bo"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        logging.getLogger().handlers.clear()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "hello there" and first["player"] == "Bo"
    assert first["password"] == first["Token"] == logs.REDACTED
    assert "pw1" not in stream.getvalue() and "tok1" not in stream.getvalue()
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc"]
    assert first["role"] == "front" and first["id"].startswith("front.")


def test_text_format_names_role_and_id() -> None:
    stream = io.StringIO()
    logs.setup("INFO", "relay", "text", stream=stream)
    try:
        logging.getLogger("test.logs").warning("plain")
    finally:
        logging.getLogger().handlers.clear()
    line = stream.getvalue().strip()
    assert re.fullmatch(
        r"\S+Z relay\[relay\.[\w-]+\.\d+\.[0-9a-f]{6}\] WARNING test\.logs: plain", line
    )


@pytest.mark.parametrize("command", ["serve", "worker", "relay"])
def test_bad_log_format_is_a_one_line_error(command: str) -> None:
    args = ["--upstream", "tcp://127.0.0.1:9"] if command == "relay" else []
    done = subprocess.run(
        [sys.executable, "-m", "crossroads", command, *args, "--log-format", "xml"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=WAIT,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "log" in done.stderr.lower()


@pytest.mark.parametrize("command", ["serve", "worker", "relay"])
def test_bad_log_format_in_the_environment_is_a_one_line_error(command: str) -> None:
    args = ["--upstream", "tcp://127.0.0.1:9"] if command == "relay" else []
    done = subprocess.run(
        [sys.executable, "-m", "crossroads", command, *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=WAIT,
        env=dict(
            os.environ, CROSSROADS_LOG_FORMAT="xml", CROSSROADS_STORE="sqlite:////nonexistent/x"
        ),
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2
    # serve/worker name the variable (settings validation); relay names the option.
    assert "CROSSROADS_LOG_FORMAT" in done.stderr or "--log-format must be one of" in done.stderr
