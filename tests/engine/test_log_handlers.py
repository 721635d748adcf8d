"""pyzmq's zmq.log.handlers: PUBHandler publishes records as [topic, text], the same lines
run on the engine and on pyzmq; TopicLogger names a subtopic first."""

from __future__ import annotations

import importlib
import inspect
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import engine
from tests.engine.libkit import LIBS


@pytest.fixture
def published(lib: Any) -> Iterator[tuple[Any, logging.Logger, Any]]:
    """A PUBHandler bound on inproc, a SUB that follows everything, a logger of its own."""
    handlers = importlib.import_module(f"{lib.__name__}.log.handlers")
    ctx = lib.Context()
    sub = ctx.socket(lib.SUB)
    sub.rcvtimeo = 10_000
    sub.subscribe(b"")
    name = f"inproc://logs-{uuid.uuid4().hex}"
    handler = handlers.PUBHandler(name, context=ctx, root_topic="game")
    sub.connect(name)
    log = logging.getLogger(f"published-{uuid.uuid4().hex}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)
    # A PUB drops what it sends before the subscription arrives: send until one gets through.
    while True:
        log.info("ready?")
        if sub.poll(50):
            sub.recv_multipart()
            break
    while sub.poll(50):  # and whatever else got through
        sub.recv_multipart()
    yield handler, log, sub
    log.removeHandler(handler)
    ctx.destroy(linger=0)


@LIBS
def test_records_go_out_under_root_level_and_subtopic(
    lib: Any, published: tuple[Any, logging.Logger, Any]
) -> None:
    handler, log, sub = published
    line = current_line() + 1
    log.debug("counted %d", 3)
    log.info("hello")
    log.warning("store::slow commit")
    log.critical("down")
    handler.setRootTopic("other")
    log.info("renamed")
    handler.root_topic = ""
    log.error("bare")
    handler.root_topic = b"bytes"  # read as UTF-8, as pyzmq reads it (the engine failed)
    log.info("given as bytes")
    got = [sub.recv_multipart() for _ in range(7)]
    assert got[0] == [
        b"game.DEBUG",
        f"DEBUG {__file__.rsplit('/', 1)[1]}:{line} - counted 3\n".encode(),
    ]
    assert got[1] == [b"game.INFO", b"hello\n"]
    assert got[2][0] == b"game.WARNING.store" and got[2][1].endswith(b" - slow commit\n")
    assert got[3][0] == b"game.CRITICAL" and got[3][1].startswith(b"CRITICAL ")
    assert got[4] == [b"other.INFO", b"renamed\n"]
    assert got[5][0] == b"ERROR" and got[5][1].endswith(b" - bare - None\n")
    assert got[6] == [b"bytes.INFO", b"given as bytes\n"]
    assert handler.root_topic == "bytes"


@LIBS
def test_a_formatter_for_every_level_or_for_one(
    lib: Any, published: tuple[Any, logging.Logger, Any]
) -> None:
    handler, log, sub = published
    handler.setFormatter(logging.Formatter("all %(message)s"))
    handler.setFormatter(logging.Formatter("warn %(message)s"), logging.WARNING)
    log.info("a")
    log.warning("b")
    log.error("c")
    got = [sub.recv_multipart()[1] for _ in range(3)]
    assert got == [b"all a", b"warn b", b"all c"]


@LIBS
def test_a_topic_logger_names_its_subtopic(
    lib: Any, published: tuple[Any, logging.Logger, Any]
) -> None:
    handler, _, sub = published
    handlers = importlib.import_module(f"{lib.__name__}.log.handlers")
    topical = handlers.TopicLogger(f"topical-{uuid.uuid4().hex}")
    topical.setLevel(logging.DEBUG)
    topical.addHandler(handler)
    topical.log(logging.INFO, "trade", "sold %d", 4)
    assert sub.recv_multipart() == [b"game.INFO.trade", b"sold 4\n"]


@pytest.mark.parametrize("lib", [engine], ids=["engine"])
def test_the_engines_topic_logger_level_calls_name_the_callers_line(
    published: tuple[Any, logging.Logger, Any],
) -> None:
    """info(topic, msg) and the like (pyzmq's TopicLogger has them, but each calls the
    last-defined level: a closure bug), each record naming the line that logged it."""
    handler, _, sub = published
    from engine.log.handlers import TopicLogger

    topical = TopicLogger(f"topical-{uuid.uuid4().hex}")
    topical.setLevel(logging.DEBUG)
    topical.addHandler(handler)
    line = current_line() + 1
    topical.warning("store", "slow %s", "commit")
    topical.info("trade", "sold")
    warned, told = sub.recv_multipart(), sub.recv_multipart()
    assert warned == [
        b"game.WARNING.store",
        f"WARNING {__file__.rsplit('/', 1)[1]}:{line} - slow commit\n".encode(),
    ]
    assert told == [b"game.INFO.trade", b"sold\n"]


def current_line() -> int:
    """The line of the caller that calls this."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


@LIBS
def test_handler_given_an_endpoint_alone_has_a_context_of_its_own(lib: Any) -> None:
    # As pyzmq's: terminating the process-wide context elsewhere leaves the logging alone.
    handlers = importlib.import_module(f"{lib.__name__}.log.handlers")
    handler = handlers.PUBHandler("tcp://127.0.0.1:0")
    try:
        assert handler.ctx is not lib.Context.instance()
        assert handler.socket.context is handler.ctx
    finally:
        handler.socket.close(0)
        handler.ctx.term()
