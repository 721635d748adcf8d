"""pyzmq's `zmq.decorators`: give a function a context or a socket that lives for one call.

    @context()
    @socket(zmq.PUSH)
    def work(ctx, push): ...

Each decorator opens its object in a `with` block around the call, so the socket is closed
and the context terminated however the call ends. The object is appended to the call's
positional arguments, or passed by keyword when the decorator is given a name first
(`@socket("push", zmq.PUSH)` or `name="push"`). A socket comes from the context the call
already has: the keyword argument `context_name` names (default "context") if that is a
context, else the first context among the positional arguments (so it stacks under
`@context()`), else `Context.instance()`. Every other argument goes to `Context(...)` or
`ctx.socket(...)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from .face_context import ContextFace
from .sync import Context

__all__ = ("context", "socket")

Function = TypeVar("Function", bound=Callable[..., Any])
#: Makes the object for one call, from that call's arguments.
Opener = Callable[[tuple[Any, ...], dict[str, Any]], AbstractContextManager[Any]]


def _split_name(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str | None, tuple[Any, ...]]:
    """The keyword name the object is passed under (a `name=` string, or a leading string
    argument), and the arguments left for the factory. `kwargs` loses `name`."""
    if isinstance(kwargs.get("name"), str):
        return kwargs.pop("name"), args
    if args and isinstance(args[0], str):
        return args[0], args[1:]
    return None, args


def _decorate(name: str | None, open_for_call: Opener) -> Callable[[Function], Function]:
    def decorator(func: Function) -> Function:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if name is not None and name in kwargs:
                raise TypeError(f"{func.__name__}() got multiple values for argument '{name}'")
            with open_for_call(args, kwargs) as obj:
                if name is None:
                    return func(*args, obj, **kwargs)
                return func(*args, **kwargs, **{name: obj})

        return wrapper  # type: ignore[return-value]

    return decorator


def context(*args: Any, **kwargs: Any) -> Callable[[Function], Function]:
    """Give the function a new `Context(*args, **kwargs)`, terminated when the call returns."""
    name, factory_args = _split_name(args, kwargs)
    return _decorate(name, lambda _args, _kwargs: Context(*factory_args, **kwargs))


def socket(*args: Any, **kwargs: Any) -> Callable[[Function], Function]:
    """Give the function a new `ctx.socket(*args, **kwargs)` (the type first), closed when the
    call returns; `ctx` is found in the call's arguments as the module's docstring says."""
    name, factory_args = _split_name(args, kwargs)
    context_name = kwargs.pop("context_name", "context")

    def open_socket(call_args: tuple[Any, ...], call_kwargs: dict[str, Any]) -> Any:
        ctx = call_kwargs.get(context_name)
        if not isinstance(ctx, ContextFace):
            ctx = next((a for a in call_args if isinstance(a, ContextFace)), None)
        if ctx is None:
            ctx = Context.instance()
        return ctx.socket(*factory_args, **kwargs)

    return _decorate(name, open_socket)
