"""Process logging: ``--log-format text`` for people, ``--log-format json`` for collectors.

Every line names the process's role (front, worker, relay) and its unique id (a worker's is its
routing id: name, host, pid and a random suffix, so six workers are never all "worker w").

JSON: one object per line, one line per event, with a full UTC timestamp (ISO 8601,
milliseconds), level, role, id, logger and message, plus the fields a call passes with
``extra=`` (say ``action_id``, ``session``, ``verb``). Fields named like secrets (password,
token...) are replaced by ``"[redacted]"`` whatever their value, so a careless ``extra`` cannot
leak one; the game's own log calls never put a password or a session token in a message (the
session field is a hash prefix of the token: enough to follow one player's actions, useless to
log in with).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import time
from typing import Any, TextIO

import orjson

LOG_FORMATS = ("text", "json")
#: Extra fields whose values are never written.
SECRET_FIELDS = frozenset(
    {"password", "passwd", "token", "secret", "authorization", "cookie", "api_key", "credentials"}
)
REDACTED = "[redacted]"
#: LogRecord's own attributes: everything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _Identity:
    role = "crossroads"
    id = ""


_identity = _Identity()


def default_id(role: str) -> str:
    """role.host.pid.random: unique per process, readable in a log."""
    host = socket.gethostname().split(".")[0][:32] or "host"
    return f"{role}.{host}.{os.getpid()}.{secrets.token_hex(3)}"


def identify(role: str, process_id: str | None = None) -> str:
    """Set the role and id every later line carries; returns the id."""
    _identity.role = role
    _identity.id = process_id or default_id(role)
    return _identity.id


def process_id() -> str:
    return _identity.id or identify(_identity.role)


def _utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _safe(key: str, value: Any) -> Any:
    if key.lower() in SECRET_FIELDS:
        return REDACTED
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (no newline inside: tracebacks are a string field)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _utc(record.created),
            "level": record.levelname,
            "role": _identity.role,
            "id": _identity.id,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and key not in line:
                line[key] = _safe(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class TextFormatter(logging.Formatter):
    """``2026-12-03T02:40:00.123Z worker[w1.host.42.ab12cd] INFO logger: message``."""

    def format(self, record: logging.LogRecord) -> str:
        text = (
            f"{_utc(record.created)} {_identity.role}[{_identity.id}] "
            f"{record.levelname} {record.name}: {record.getMessage()}"
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup(level: str, role: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger for this process (replacing earlier handlers)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    if not _identity.id or _identity.role != role:
        identify(role)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
