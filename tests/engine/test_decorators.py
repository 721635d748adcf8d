"""`decorators.context` and `decorators.socket`, as pyzmq's `zmq.decorators` behave: the same
lines run on both libraries (the engine had no such module, so a program using them could not
run on it)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from libkit import LIBS

pytestmark = pytest.mark.timeout(60)


def decorators_of(lib: Any) -> Any:
    return importlib.import_module(f"{lib.__name__}.decorators")


@LIBS
def test_stacked_decorators_give_a_context_and_its_sockets_for_one_call(lib: Any) -> None:
    deco = decorators_of(lib)
    kept: list[Any] = []

    @deco.context()
    @deco.socket(lib.PULL)
    @deco.socket(lib.PUSH)
    def work(ctx: Any, pull: Any, push: Any, text: bytes = b"hi") -> bytes:
        kept.extend((ctx, pull, push))
        assert pull.context is ctx and push.context is ctx  # the call's context, not instance()
        assert (pull.type, push.type) == (lib.PULL, lib.PUSH)
        pull.bind("tcp://127.0.0.1:0")
        push.connect(pull.getsockopt(lib.LAST_ENDPOINT).decode())
        push.send(text)
        assert pull.poll(10_000)
        return pull.recv()

    assert work(text=b"stacked") == b"stacked"
    ctx, pull, push = kept
    assert pull.closed and push.closed and ctx.closed  # each ended with the call


@LIBS
def test_names_route_the_object_to_a_keyword_and_context_name_finds_the_context(lib: Any) -> None:
    deco = decorators_of(lib)

    @deco.context("ctx")
    @deco.socket("dealer", lib.DEALER, context_name="ctx")
    def by_name(*, ctx: Any, dealer: Any) -> tuple[Any, Any]:
        assert dealer.context is ctx
        return ctx, dealer

    ctx, dealer = by_name()
    assert dealer.closed and ctx.closed

    @deco.socket(lib.PAIR, name="pair")
    def with_default_context(pair: Any) -> Any:
        return pair.context

    assert with_default_context() is lib.Context.instance()

    with pytest.raises(TypeError, match="multiple values for argument 'pair'"):
        with_default_context(pair=None)


@LIBS
def test_the_socket_is_closed_when_the_call_raises(lib: Any) -> None:
    deco = decorators_of(lib)
    seen: list[Any] = []

    @deco.context()
    @deco.socket(lib.REQ)
    def failing(ctx: Any, req: Any) -> None:
        seen.extend((ctx, req))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing()
    ctx, req = seen
    assert req.closed and ctx.closed
