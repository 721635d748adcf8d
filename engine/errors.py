"""The ZMQError hierarchy, shaped like pyzmq's so that `except zmq.Again` works unchanged."""

from __future__ import annotations

import errno
import os

from . import constants as c

_MESSAGES = {
    c.EFSM: "Operation cannot be accomplished in current state",
    c.ENOCOMPATPROTO: "The protocol is not compatible with the socket type",
    c.ETERM: "Context was terminated",
    c.EMTHREAD: "No thread available",
    # libzmq's own text for the one system errno it words itself (zmq_strerror).
    errno.EHOSTUNREACH: "Host unreachable",
}


def strerror(errno: int) -> str:
    return _MESSAGES.get(errno) or os.strerror(errno)


class ZMQBaseError(Exception):
    """Base of every error this package raises."""


class ZMQError(ZMQBaseError):
    """An error with a libzmq errno, as pyzmq raises it.

    Its text is the errno's standard text, as in pyzmq ("Invalid argument"), then what went
    wrong in particular when the engine knows: "Invalid argument: port out of range in ...".
    """

    errno: int
    strerror: str

    def __init__(self, errno: int = c.EINVAL, msg: str | None = None) -> None:
        self.errno = errno
        text = strerror(errno)
        if msg and not msg.startswith(text):
            text = f"{text}: {msg}"
        self.strerror = text
        super().__init__(self.strerror)

    def __str__(self) -> str:
        return self.strerror


class ZMQBindError(ZMQBaseError):
    """bind_to_random_port found no free port."""


class Again(ZMQError):
    """The operation would block (EAGAIN): raised under DONTWAIT and after RCVTIMEO/SNDTIMEO."""

    def __init__(self, errno: int = c.EAGAIN, msg: str | None = None) -> None:
        super().__init__(errno, msg)


class ContextTerminated(ZMQError):
    """The context was terminated while the call was blocked (ETERM)."""

    def __init__(self, errno: int = c.ETERM, msg: str | None = None) -> None:
        super().__init__(errno, msg)


class InterruptedSystemCall(ZMQError, InterruptedError):
    """A call interrupted by a signal (EINTR), as pyzmq names it."""

    def __init__(self, errno: int = c.EINTR, msg: str | None = None) -> None:
        super().__init__(errno, msg)
        # OSError's own __init__ (through InterruptedError) reset these from its one argument.
        self.errno = errno
        self.strerror = self.args[0]


class NotDone(ZMQBaseError):
    """A tracked send has not completed yet."""


class ZMQVersionError(NotImplementedError):
    """A feature the libzmq version this engine follows does not have (pyzmq's name, so code
    that catches it runs unchanged): `msg` needs libzmq `min_version` or later."""

    def __init__(self, min_version: str, msg: str = "Feature") -> None:
        super().__init__(min_version, msg)
        self.min_version = min_version
        self.msg = msg
        self.version = f"{c.VERSION_MAJOR}.{c.VERSION_MINOR}.{c.VERSION_PATCH}"

    def __str__(self) -> str:
        return f"{self.msg} requires libzmq >= {self.min_version}, have {self.version}"


class LoopGone(RuntimeError):
    """The socket's I/O loop ended (its context was terminated) before a call could run.
    Internal: the faces catch it (a close that finds its loop gone is quiet)."""
