"""Log records published on a PUB socket, as pyzmq's zmq.log.handlers: each record is a
two-frame message, its topic (`root.LEVEL`, or `root.LEVEL.subtopic` for a message written
`"subtopic::text"`) and its text formatted for its level, so a SUB can follow one program's
warnings, or one subsystem's, by prefix."""

from __future__ import annotations

import copy
import logging
from typing import Any

from .. import constants as c
from ..sync import Context

#: Between a record's subtopic and its text: `log.warning("store::slow commit")`.
TOPIC_DELIM = "::"

_WHERE = "%(levelname)s %(filename)s:%(lineno)d - %(message)s\n"
#: pyzmq's formats by level: INFO is the message alone, ERROR adds the exception's triple.
DEFAULT_FORMATS = {
    logging.DEBUG: _WHERE,
    logging.INFO: "%(message)s\n",
    logging.WARNING: _WHERE,
    logging.ERROR: "%(levelname)s %(filename)s:%(lineno)d - %(message)s - %(exc_info)s\n",
    logging.CRITICAL: _WHERE,
}


class PUBHandler(logging.Handler):
    """Publishes each record on `interface_or_socket`: a PUB socket of yours, or an endpoint
    for one this handler binds (in `context`, or in a context of its own, as pyzmq's makes
    one: a `term()` of the process-wide context elsewhere leaves the logging alone)."""

    def __init__(
        self, interface_or_socket: Any, context: Any = None, root_topic: str | bytes = ""
    ) -> None:
        super().__init__()
        if isinstance(interface_or_socket, str):
            self.ctx = context or Context()
            self.socket = self.ctx.socket(c.PUB)
            self.socket.bind(interface_or_socket)
        else:
            self.socket = interface_or_socket
            self.ctx = self.socket.context
        self.root_topic = root_topic
        self.formatters = {level: logging.Formatter(fmt) for level, fmt in DEFAULT_FORMATS.items()}

    @property
    def root_topic(self) -> str:
        return self._root_topic

    @root_topic.setter
    def root_topic(self, root_topic: str | bytes) -> None:
        self.setRootTopic(root_topic)

    def setRootTopic(self, root_topic: str | bytes) -> None:
        """The topic every record's topic starts with; bytes are read as UTF-8, as pyzmq's
        handler reads them (it is joined with the level's name as text)."""
        if isinstance(root_topic, bytes):
            root_topic = root_topic.decode("utf-8")
        self._root_topic = root_topic

    def setFormatter(self, fmt: Any, level: int = logging.NOTSET) -> None:
        """`fmt` for records of `level`, or for every level when none is given."""
        if level == logging.NOTSET:
            for known in self.formatters:
                self.formatters[known] = fmt
        else:
            self.formatters[level] = fmt

    def format(self, record: logging.LogRecord) -> str:
        formatter = self.formatters.get(record.levelno) or self.formatters[logging.INFO]
        return formatter.format(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            topics = [self.root_topic] if self.root_topic else []
            topics.append(record.levelname)
            subtopic, delim, text = str(record.msg).partition(TOPIC_DELIM)
            if delim:
                # A copy: the other handlers of this record still see its text whole.
                record = copy.copy(record)
                record.msg = text
                topics.append(subtopic)
            message = self.format(record)
            self.socket.send_multipart([".".join(topics).encode(), message.encode()])
        except Exception:  # as every logging handler: report, never raise into the caller
            self.handleError(record)


class TopicLogger(logging.Logger):
    """A logger whose calls name a subtopic first: `log.info("store", "commit took %d ms",
    ms)` publishes under `root.INFO.store` through a PUBHandler."""

    def log(self, level: int, topic: str, msg: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("stacklevel", 2)  # the record names the caller's line, not this one
        super().log(level, f"{topic}{TOPIC_DELIM}{msg}", *args, **kwargs)

    def _at(self, level: int, topic: str, msg: str, args: Any, kwargs: dict[str, Any]) -> None:
        kwargs.setdefault("stacklevel", 4)  # past _at, the level method and log
        self.log(level, topic, msg, *args, **kwargs)

    def debug(self, topic: str, msg: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._at(logging.DEBUG, topic, msg, args, kwargs)

    def info(self, topic: str, msg: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._at(logging.INFO, topic, msg, args, kwargs)

    def warning(self, topic: str, msg: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._at(logging.WARNING, topic, msg, args, kwargs)

    warn = warning  # type: ignore[assignment]

    def error(self, topic: str, msg: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._at(logging.ERROR, topic, msg, args, kwargs)

    def exception(self, topic: str, msg: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("exc_info", True)
        self._at(logging.ERROR, topic, msg, args, kwargs)

    def critical(self, topic: str, msg: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._at(logging.CRITICAL, topic, msg, args, kwargs)

    fatal = critical  # type: ignore[assignment]


__all__ = ["TOPIC_DELIM", "PUBHandler", "TopicLogger"]
