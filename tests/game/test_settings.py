"""Server settings: flag > CROSSROADS_* environment > default, with clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gameserver import serve, settings, worker
from gameserver.serve import connectable


def crossroads(argv: list[str], *, home: Path) -> subprocess.CompletedProcess[str]:
    """``python -m crossroads ARGV`` from the repository, with ``home`` as its HOME and data
    directory."""
    return subprocess.run(
        [sys.executable, "-m", "crossroads", *argv],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSROADS_STORE", "redis://db:6379/0")
    monkeypatch.setenv("CROSSROADS_WORKERS", "3")
    monkeypatch.setenv("CROSSROADS_FRONT", "tcp://front:7303")
    args = serve.build_parser("serve").parse_args(["--workers", "5", "--log-level", "debug"])
    loaded = settings.load(args)
    assert loaded.store == "redis://db:6379/0" and loaded.front == "tcp://front:7303"
    assert loaded.workers == 5 and loaded.log_level == "DEBUG"  # the flag wins


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in settings.Settings.model_fields:
        monkeypatch.delenv(settings.env_name(name), raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    loaded = settings.load()
    assert loaded.store == "sqlite:////data/crossroads/game.sqlite3"
    assert (loaded.actions_bind, loaded.updates_bind, loaded.workers_bind) == (
        "tcp://*:7301",
        "tcp://*:7302",
        "tcp://127.0.0.1:7303",  # workers elsewhere are a deliberate choice (issue 14)
    )
    assert loaded.keys_dir == Path("/data/crossroads/keys")
    assert loaded.insecure_workers is False
    assert loaded.secure_players is True  # player ports speak CURVE unless told otherwise
    assert loaded.key_bind is None  # derived: the port below the actions bind
    assert settings.key_bind_for(loaded.actions_bind) == "tcp://*:7300"
    assert connectable("tcp://0.0.0.0:7301") == "tcp://127.0.0.1:7301"


def test_key_bind_sits_below_the_actions_bind() -> None:
    assert settings.key_bind_for("tcp://10.0.0.5:9001") == "tcp://10.0.0.5:9000"
    assert settings.key_bind_for("tcp://127.0.0.1:0") == "tcp://127.0.0.1:0"  # system-chosen
    assert settings.key_bind_for("ipc:///tmp/x") == "tcp://*:7300"


def test_insecure_players_is_an_explicit_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROSSROADS_SECURE_PLAYERS", raising=False)
    parser = serve.build_parser("serve")
    assert settings.load(parser.parse_args([])).secure_players is True
    assert settings.load(parser.parse_args(["--insecure-players"])).secure_players is False
    monkeypatch.setenv("CROSSROADS_SECURE_PLAYERS", "false")
    assert settings.load(parser.parse_args([])).secure_players is False
    assert settings.load(parser.parse_args(["--secure-players"])).secure_players is True


def test_bad_values_name_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSROADS_RATE", "lots")
    with pytest.raises(settings.SettingsError, match="CROSSROADS_RATE"):
        settings.load()
    assert serve.main(["--log-level", "LOUD"]) == 2


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--front", "nonsense"),
        ("--front", "127.0.0.1:7303"),
        ("--actions-bind", "tcp://1.2.3.4"),
        ("--workers-bind", "bogus://x"),
    ],
)
def test_an_endpoint_that_does_not_parse_is_a_settings_error(flag: str, value: str) -> None:
    # Refused when read, not at the first connect: a worker told `--front nonsense` used to
    # start, then die in a traceback from inside its reconnect loop.
    parser = serve.build_parser("serve") if flag != "--front" else worker.build_parser("worker")
    with pytest.raises(settings.SettingsError, match="is not an endpoint"):
        settings.load(parser.parse_args([flag, value]))


@pytest.mark.parametrize(
    "argv",
    [
        ["worker", "--front", "nonsense"],
        ["loadtest", "--server", "nonsense", "-u", "1", "-t", "1s"],
        ["loadtest", "--server", "ipc:///tmp/crossroads-nowhere", "-u", "1", "-t", "1s"],
    ],
    ids=["worker", "loadtest-server", "loadtest-ipc-without-updates"],
)
def test_commands_given_a_bad_endpoint_say_so_in_one_line(argv: list[str], tmp_path: Path) -> None:
    done = crossroads(argv, home=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "endpoint" in done.stderr.strip().splitlines()[-1] or "tcp://" in done.stderr


@pytest.mark.parametrize("value", ["foo", "host:port", "70000"])
def test_a_bad_metrics_bind_is_refused_before_serve_makes_anything(
    value: str, tmp_path: Path
) -> None:
    # It used to be found when the metrics server started: after `serve` had made the
    # cluster's keys and started its workers.
    done = crossroads(["serve", "--metrics-bind", value], home=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"metrics_bind (CROSSROADS_METRICS_BIND): Value error, '{value}'" in done.stderr
    assert done.stdout == "" and list(tmp_path.iterdir()) == []


def test_a_blank_metrics_bind_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSROADS_METRICS_BIND", " ")
    assert settings.load(serve.build_parser("serve").parse_args([])).metrics_bind is None


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--min-workers", "-1"], "--min-workers must not be negative"),
        (["--timeout", "0"], "--timeout must be positive"),
        (["--timeout", "nan"], "--timeout must be positive"),
    ],
)
def test_ping_refuses_a_bad_number_in_one_line(
    options: list[str], said: str, tmp_path: Path
) -> None:
    # Refused before anything is dialled (the port is never listened on).
    done = crossroads(["ping", "--server", "tcp://127.0.0.1:9", *options], home=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"crossroads ping: {said}"]


def test_ping_names_itself_when_nothing_answers(tmp_path: Path) -> None:
    """A listener that never speaks ZMTP: the one line starts with the command's name (it
    used to be a bare "no answer from ...")."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        endpoint = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        argv = ["ping", "--server", endpoint, "--timeout", "0.5"]
        done = crossroads(argv, home=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"crossroads ping: no answer from {endpoint} within 0.5s"
    ]


@pytest.mark.parametrize(
    ("option", "said"),
    [("--actions-bind", "the actions endpoint"), ("--key-bind", "the key endpoint")],
)
def test_serve_on_a_taken_port_is_one_line_naming_it(
    option: str, said: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        binds = {opt: "tcp://127.0.0.1:0" for opt in ("--actions-bind", "--updates-bind")}
        binds |= {"--workers-bind": "tcp://127.0.0.1:0", "--key-bind": "tcp://127.0.0.1:0"}
        binds[option] = endpoint
        argv = ["serve", "--workers", "0", *(part for pair in binds.items() for part in pair)]
        done = crossroads(argv, home=tmp_path)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"crossroads serve: cannot bind {said} {endpoint}"), last
    assert "Address already in use" in last and "Traceback" not in done.stderr


@pytest.mark.parametrize(("flag", "value"), [("--heartbeat-interval", "inf"), ("--rate", "nan")])
def test_a_number_that_is_not_finite_is_a_settings_error(flag: str, value: str) -> None:
    # "inf" passed `gt=0`: workers that heartbeat every "inf" seconds are never found dead.
    with pytest.raises(settings.SettingsError, match="finite number"):
        settings.load(serve.build_parser("serve").parse_args([flag, value]))
