"""Server settings: one pydantic-settings model read from ``CROSSROADS_*`` environment variables.

Every command-line flag of ``serve``, ``worker`` and ``ping`` is also a setting, so a container
can be configured from the environment alone. Precedence: flag > environment > default.

==============================  ===============================================================
variable                        default
==============================  ===============================================================
CROSSROADS_STORE                sqlite:///<data dir>/crossroads/game.sqlite3
CROSSROADS_WORLD                (the packaged default world)
CROSSROADS_WORKERS              one per CPU core
CROSSROADS_ACTIONS_BIND         tcp://*:7301   (front: client actions, ROUTER)
CROSSROADS_UPDATES_BIND         tcp://*:7302   (front: state broadcast, XPUB)
CROSSROADS_WORKERS_BIND         tcp://127.0.0.1:7303   (front: worker backend, ROUTER, CURVE)
CROSSROADS_FRONT                tcp://127.0.0.1:7303   (where a worker connects)
CROSSROADS_ACTIONS              tcp://127.0.0.1:7301   (where clients and ``ping`` connect)
CROSSROADS_UPDATES              tcp://127.0.0.1:7302   (where clients subscribe)
CROSSROADS_LOG_LEVEL            INFO
CROSSROADS_MAX_PENDING          1000 queued actions, then "server busy"
CROSSROADS_RATE / _BURST        20 actions/s per session, bursts of 40
CROSSROADS_LOGINS_PER_S         10 logins/s, everybody together (bursts of twice that)
CROSSROADS_REGISTRATION_BURST   30 new accounts at once, everybody together (then one per 2 s)
CROSSROADS_TICK_INTERVAL        half the world's clock tick
CROSSROADS_HEARTBEAT_INTERVAL   1.0 s (Paranoid Pirate)
CROSSROADS_HEARTBEAT_LIVENESS   3 silent intervals = dead
CROSSROADS_DRAIN_TIMEOUT        10 s to finish in-flight actions on shutdown
CROSSROADS_CPU_BURN             0 (simulated game-logic cost per action, for benchmarks)
CROSSROADS_HEALTH_FILE          none (liveness file kept fresh while healthy; the image sets it)
CROSSROADS_KEYS_DIR             <data dir>/crossroads/keys (CURVE certificates; `crossroads keys`)
CROSSROADS_INSECURE_WORKERS     false (true: the worker port takes any process, unencrypted)
CROSSROADS_MAX_CONNECTIONS      4096 connections per player port
CROSSROADS_MAX_SUBSCRIPTIONS    1024 topics per subscriber (raise it for relays of big regions)
CROSSROADS_PLAYER_HEARTBEAT     10 s between PINGs on a player port; 3 unanswered: closed
CROSSROADS_ALLOW_VOLATILE_STORE false (true: accept a Redis without appendonly; see durability.py)
CROSSROADS_SECURE_PLAYERS       true (player ports speak CURVE; clients pin the front's key;
                                false = ``--insecure-players``: cleartext, warned at start)
CROSSROADS_KEY_BIND             the actions bind's host, port below (tcp://*:7300): the front's
                                public key, announced in plaintext (port 0 -> port 0)
CROSSROADS_FRONT_KEY            <keys dir>/front.key (a worker's: the front's public key or file)
CROSSROADS_WORKER_KEY           <keys dir>/worker.key_secret (a worker's own secret certificate)
CROSSROADS_LOG_FORMAT           text (or json: one object per line, for log collectors)
CROSSROADS_METRICS_BIND         none: off (HOST:PORT or PORT for a private Prometheus /metrics;
                                ``serve``'s local workers take the next ports)
CROSSROADS_SCHED_BATCH          true (Linux: front and workers run under SCHED_BATCH, so a
                                process they wake does not preempt them; gameserver/scheduling.py)
CROSSROADS_LOCAL_WORKER_SECRET  set by ``serve`` for its own workers only (local_workers.py)
==============================  ===============================================================
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.endpoint import parse as parse_endpoint
from engine.errors import ZMQError

from . import logs
from .logs import LOG_FORMATS

ENV_PREFIX = "CROSSROADS_"
# Away from Locust's 5557/5558, so a load test and the server can share a machine.
ACTIONS_PORT = 7301
UPDATES_PORT = 7302
WORKERS_PORT = 7303
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def endpoint_problem(text: str, *, binding: bool = False) -> str | None:
    """Why ``text`` is not an endpoint this can bind (or connect to), in a few words; None if
    it is one. For the one-line errors of commands, before any socket is made."""
    try:
        parse_endpoint(text, binding=binding)
    except ZMQError as exc:
        return f"{text!r} is not an endpoint ({exc.strerror}); write it as tcp://HOST:PORT"
    return None


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT`` (loopback) -> (host, port), the form
    of a plain TCP listener's bind (``--metrics-bind``); raises ValueError saying why not."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r}: expected HOST:PORT or PORT") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: port out of range")
    return host, port


def key_bind_for(actions_bind: str) -> str:
    """The key announcement beside an actions bind: same host, the port below (the convention
    clients use to find it); a system-chosen actions port (0) gets a system-chosen one too."""
    head, sep, port = actions_bind.rpartition(":")
    if not sep or not port.isdigit() or not head.startswith("tcp://"):
        return f"tcp://*:{ACTIONS_PORT - 1}"
    return f"{head}:{max(int(port) - 1, 0)}"


def data_dir() -> Path:
    """Where the default store lives: $XDG_DATA_HOME/crossroads or ~/.local/share/crossroads."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "crossroads"


def default_keys_dir() -> Path:
    return data_dir() / "keys"


def default_store_url() -> str:
    return f"sqlite:///{data_dir() / 'game.sqlite3'}"


class Settings(BaseSettings):
    """Everything the server's commands can be told; see the module docstring for the table."""

    # allow_inf_nan: "inf" seconds between heartbeats passed `gt=0` and left workers unwatched.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", allow_inf_nan=False)

    store: str = Field(
        default_factory=default_store_url,
        description="store URL: sqlite:///path or redis://host:port/db",
    )
    world: Path | None = Field(None, description="world TOML file (default: the packaged world)")
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=0, le=256, description="local workers"
    )
    actions_bind: str = Field(f"tcp://*:{ACTIONS_PORT}", description="bind: client actions")
    updates_bind: str = Field(f"tcp://*:{UPDATES_PORT}", description="bind: state broadcast")
    # Loopback by default: workers on other machines are an explicit choice (and need keys).
    workers_bind: str = Field(f"tcp://127.0.0.1:{WORKERS_PORT}", description="bind: worker backend")
    front: str = Field(
        f"tcp://127.0.0.1:{WORKERS_PORT}", description="the front's worker endpoint to connect to"
    )
    actions: str = Field(
        f"tcp://127.0.0.1:{ACTIONS_PORT}", description="the front's action endpoint to connect to"
    )
    updates: str = Field(
        f"tcp://127.0.0.1:{UPDATES_PORT}", description="the front's update endpoint to subscribe to"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    max_pending: int = Field(1000, ge=1, description="queued actions before 'server busy'")
    rate: float = Field(20.0, gt=0, description="actions per second per session")
    burst: float = Field(40.0, gt=0, description="burst size of the per-session rate limit")
    # Front-wide login and sign-up budgets (admission.py). The defaults keep a flood of fresh
    # names from hashing passwords all day and filling the store with accounts; a server that
    # expects a crowd at once (a launch, a benchmark) raises them.
    logins_per_s: float = Field(
        10.0, gt=0, description="logins per second, everybody together (bursts of twice that)"
    )
    registration_burst: float = Field(
        30.0, ge=1, description="new accounts at once, everybody together (then one per 2 s)"
    )
    tick_interval: float | None = Field(
        None, gt=0, description="seconds between world ticks (default: half the world's tick)"
    )
    heartbeat_interval: float = Field(1.0, gt=0, description="seconds between heartbeats")
    heartbeat_liveness: int = Field(3, ge=1, description="silent heartbeats before 'dead'")
    drain_timeout: float = Field(10.0, ge=0, description="seconds to finish actions on shutdown")
    cpu_burn: int = Field(0, ge=0, description="busy-loop iterations per action (benchmarks)")
    health_file: str | None = Field(
        None, description="liveness file kept fresh while healthy (crossroads-health file)"
    )
    keys_dir: Path = Field(
        default_factory=default_keys_dir,
        description="CURVE certificates of the cluster (crossroads keys --help)",
    )
    insecure_workers: bool = Field(
        False, description="worker port without keys or encryption: any process may join"
    )
    max_connections: int = Field(
        4096, ge=1, description="connections each player port holds at once"
    )
    max_subscriptions: int = Field(
        1024, ge=3, description="topics one subscriber (a player: 3; a relay: more) may hold"
    )
    player_heartbeat: float = Field(
        10.0,
        ge=0.1,
        description="seconds between PINGs to each player connection; one silent for three "
        "of them is closed",
    )
    allow_volatile_store: bool = Field(
        False, description="run on a Redis without append-only (data lost when it restarts)"
    )
    secure_players: bool = Field(
        True, description="action and update ports speak CURVE with the front's key (default)"
    )
    key_bind: str | None = Field(
        None,
        description="bind: plaintext announcement of the front's public key (default: the "
        "actions bind's host, the port below: tcp://*:7300)",
    )
    front_key: str | None = Field(
        None,
        description="the front's public key, Z85 or a .key file (default: in the keys dir); "
        "one that starts with '-' goes as --front-key=KEY",
    )
    worker_key: Path | None = Field(
        None, description="this worker's .key_secret file (default: worker.key_secret in keys dir)"
    )
    log_format: str = Field("text", description="text or json (one object per line)")
    # Set by serve for the workers it starts (local_workers.py), in their environment only:
    # no flag, so it never shows on a command line.
    local_worker_secret: str | None = Field(
        None, description="this run's secret for serve's local worker port", repr=False
    )
    sched_batch: bool = Field(
        True,
        description="run under Linux's SCHED_BATCH policy: a process this one wakes does not "
        "preempt it mid-pass (less CPU per action)",
    )
    metrics_bind: str | None = Field(
        None,
        description="HOST:PORT (or PORT: loopback) for Prometheus /metrics, on a private "
        "interface; off unless set",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        fmt = value.lower()
        if fmt not in LOG_FORMATS:
            raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
        return fmt

    @field_validator("store", "actions_bind", "updates_bind", "workers_bind", "front", "actions")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("actions_bind", "updates_bind", "workers_bind", "front", "actions", "updates")
    @classmethod
    def _an_endpoint(cls, value: str, info: ValidationInfo) -> str:
        # Checked here, not at the first connect: a worker told `--front nonsense` would
        # otherwise start, then die in a traceback from inside its reconnect loop.
        problem = endpoint_problem(value, binding=info.field_name.endswith("_bind"))
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("metrics_bind")
    @classmethod
    def _a_host_port(cls, value: str | None) -> str | None:
        # Checked here, with the rest: found only when the metrics server starts, a typo came
        # after `serve` had made its keys and started its workers.
        if value is None or not value.strip():
            return None
        host_port(value)
        return value.strip()


#: How each setting is shown in --help.
METAVARS = {
    "store": "URL",
    "world": "PATH",
    "workers": "N",
    "log_level": "LEVEL",
    "max_pending": "N",
    "rate": "PER_S",
    "burst": "N",
    "logins_per_s": "PER_S",
    "registration_burst": "N",
    "heartbeat_liveness": "N",
    "cpu_burn": "N",
    "health_file": "PATH",
    "keys_dir": "DIR",
    "max_connections": "N",
    "max_subscriptions": "N",
    "player_heartbeat": "SECONDS",
    "front_key": "KEY",
    "worker_key": "PATH",
    "log_format": "FORMAT",
    "metrics_bind": "HOST:PORT",
}


class SettingsError(ValueError):
    """Settings that do not validate; the message names each bad one and its variable."""


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def add_options(parser: argparse.ArgumentParser, fields: dict[str, str | tuple[str, ...]]) -> None:
    """Add one ``--flag`` per setting (field -> flag, or a tuple of a flag and its aliases);
    help shows its variable and default.

    Flags default to None, so only the flags actually given override the environment.
    """
    for name, flag_or_aliases in fields.items():
        flags = (flag_or_aliases,) if isinstance(flag_or_aliases, str) else flag_or_aliases
        info = Settings.model_fields[name]
        default = "computed" if info.default_factory is not None else info.default
        if name == "store":
            default = default_store_url()
        if name == "workers":
            default = f"{os.cpu_count() or 1} (one per core)"
        if name == "keys_dir":
            default = default_keys_dir()
        if info.annotation is bool:
            parser.add_argument(
                *flags,
                dest=name,
                action="store_const",
                const=True,
                default=None,
                help=f"{info.description} (env {env_name(name)}=true)",
            )
            continue
        kind: Any = str
        if info.annotation is int:
            kind = int
        elif info.annotation in (float, float | None):
            kind = float
        shown = "" if default is None else f"; default: {default}"
        parser.add_argument(
            *flags,
            dest=name,
            type=kind,
            default=None,
            metavar=METAVARS.get(name, "SECONDS" if kind is float else "ENDPOINT"),
            help=f"{info.description} (env {env_name(name)}{shown})",
        )


def load(args: argparse.Namespace | None = None) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    given = {k: v for k, v in vars(args).items() if v is not None} if args is not None else {}
    overrides = {k: v for k, v in given.items() if k in Settings.model_fields}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            field = str(error["loc"][0]) if error["loc"] else "settings"
            problems.append(f"{field} ({env_name(field)}): {error['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None


def setup_logging(level: str, who: str, fmt: str = "text") -> None:
    """Log to stderr, each line naming the process's role and unique id (front and workers
    share a terminal); ``fmt`` "json" writes one JSON object per line (see gameserver.logs)."""
    logs.setup(level, who, fmt)
