"""pyzmq's names: the engine has each of pyzmq's constants, enums and error classes, with the
same values, except those it leaves out on purpose (the list below, which the README gives).

The README used to say "every pyzmq constant" while PROBE_ROUTER, Errno, Flag, PollEvent,
IPV4ONLY, InterruptedSystemCall and others were AttributeErrors: this keeps the claim true.
"""

from __future__ import annotations

import enum
import importlib
from typing import Any

import pytest
import zmq as pyzmq

import engine

pytestmark = pytest.mark.timeout(60)

#: What the engine leaves out, by reason. The README's "Sync face" section names the same.
NOT_IN_THE_ENGINE = {
    # Transports and mechanisms the engine does not have.
    *("GSSAPI_PLAINTEXT", "GSSAPI_PRINCIPAL", "GSSAPI_PRINCIPAL_NAMETYPE", "GSSAPI_SERVER"),
    *("GSSAPI_SERVICE_PRINCIPAL", "GSSAPI_SERVICE_PRINCIPAL_NAMETYPE"),
    *("SOCKS_PROXY", "SOCKS_USERNAME", "SOCKS_PASSWORD"),
    *("VMCI_BUFFER_SIZE", "VMCI_BUFFER_MIN_SIZE", "VMCI_BUFFER_MAX_SIZE", "VMCI_CONNECT_TIMEOUT"),
    *("WSS_CERT_PEM", "WSS_HOSTNAME", "WSS_KEY_PEM", "WSS_TRUST_PEM", "WSS_TRUST_SYSTEM"),
    *("NORM_BLOCK_SIZE", "NORM_BUFFER_SIZE", "NORM_CC", "NORM_CCE", "NORM_CCE_ECNONLY"),
    *("NORM_CCL", "NORM_FIXED", "NORM_MODE", "NORM_NUM_AUTOPARITY", "NORM_NUM_PARITY"),
    *("NORM_PUSH", "NORM_SEGMENT_SIZE", "NORM_UNICAST_NACK", "NormMode"),
    # libzmq's draft socket options (pyzmq's libzmq 4.3.5 builds lack them too).
    *("ROUTER_NOTIFY", "NOTIFY_CONNECT", "NOTIFY_DISCONNECT", "RouterNotify"),
    *("HELLO_MSG", "DISCONNECT_MSG", "HICCUP_MSG", "XPUB_MANUAL_LAST_VALUE"),
    *("XSUB_VERBOSE_UNSUBSCRIBE", "ONLY_FIRST_SUBSCRIBE"),
    *("IN_BATCH_SIZE", "OUT_BATCH_SIZE"),
    *("PRIORITY", "BUSY_POLL"),
    # Context options for libzmq's own threads and message structure.
    *("THREAD_AFFINITY_CPU_ADD", "THREAD_AFFINITY_CPU_REMOVE"),
    *("THREAD_NAME_PREFIX", "THREAD_PRIORITY", "THREAD_SCHED_POLICY"),
    # pyzmq's own machinery, not ZeroMQ's API.
    *("DraftFDWarning", "Enum", "PYZMQ_DRAFT_API", "Stopwatch"),
    *("backend", "contextmanager", "get_includes", "get_library_dirs", "os", "sugar", "sys"),
    "zmq_errno",
}


def _public_names(module: object) -> set[str]:
    return {name for name in dir(module) if not name.startswith("_")}


def test_the_engine_has_every_pyzmq_name_it_does_not_list_as_left_out() -> None:
    missing = _public_names(pyzmq) - _public_names(engine)
    assert missing - NOT_IN_THE_ENGINE == set(), "pyzmq names the engine lacks"
    assert NOT_IN_THE_ENGINE - missing == set(), "listed as left out, but the engine has them"


def test_shared_constants_and_enums_have_pyzmqs_values() -> None:
    compared = 0
    for name in sorted(_public_names(pyzmq) & _public_names(engine)):
        theirs, ours = getattr(pyzmq, name), getattr(engine, name)
        if isinstance(theirs, type) and issubclass(theirs, enum.Enum):
            for member in theirs:  # every member pyzmq's enum has, by name and value
                if member.name in NOT_IN_THE_ENGINE:
                    continue
                assert int(getattr(ours, member.name)) == int(member.value), (name, member.name)
                compared += 1
        elif isinstance(theirs, int) and not isinstance(theirs, bool):
            assert int(ours) == int(theirs), name
            compared += 1
    assert compared > 300  # the comparison covered the constants, not a handful


def test_shared_enums_are_of_pyzmqs_kind() -> None:
    """A flag class where pyzmq has one (Event, Flag, PollEvent), a plain enum where pyzmq has
    one: the engine's Event was an IntEnum, so a monitor event's value could not be an Event
    as pyzmq's parse_monitor_message hands it out, and `Event.CONNECTED | Event.CLOSED` was an
    int."""
    kinds = 0
    for name in sorted(_public_names(pyzmq) & _public_names(engine)):
        theirs, ours = getattr(pyzmq, name), getattr(engine, name)
        if isinstance(theirs, type) and issubclass(theirs, enum.Enum) and theirs.__members__:
            assert issubclass(ours, enum.Flag) == issubclass(theirs, enum.Flag), name
            kinds += 1
    assert kinds >= 10
    assert type(engine.Event.CONNECTED | engine.Event.CLOSED) is engine.Event


def test_the_older_option_names_act_as_libzmqs() -> None:
    """IPV4ONLY is the inverse of IPV6, DELAY_ATTACH_ON_CONNECT is IMMEDIATE, THREAD_SAFE
    reads 1 on the draft types only; the same lines on both (the draft one on the engine)."""
    for lib in (engine, pyzmq):
        ctx = lib.Context()
        try:
            sock = ctx.socket(lib.DEALER)
            assert sock.getsockopt(lib.IPV4ONLY) == 1
            sock.setsockopt(lib.IPV4ONLY, 0)
            assert (sock.getsockopt(lib.IPV6), sock.getsockopt(lib.IPV4ONLY)) == (1, 0)
            sock.setsockopt(lib.DELAY_ATTACH_ON_CONNECT, 1)
            assert sock.getsockopt(lib.IMMEDIATE) == 1
            assert sock.getsockopt(lib.THREAD_SAFE) == 0
            with pytest.raises(lib.ZMQError):
                sock.setsockopt(lib.THREAD_SAFE, 1)
            sock.setsockopt_unicode(lib.ROUTING_ID, "named")
            assert sock.getsockopt_unicode(lib.ROUTING_ID) == "named"
        finally:
            ctx.destroy(linger=0)
    ctx = engine.Context()
    try:
        assert ctx.socket(engine.CLIENT).getsockopt(engine.THREAD_SAFE) == 1
    finally:
        ctx.destroy(linger=0)


def test_interrupted_system_call_is_pyzmqs_kind_of_error() -> None:
    error = engine.InterruptedSystemCall()
    assert isinstance(error, engine.ZMQError) and isinstance(error, InterruptedError)
    assert error.errno == pyzmq.InterruptedSystemCall(4).errno == engine.EINTR
    assert str(error).startswith("Interrupted system call")
    assert engine.error.InterruptedSystemCall is engine.InterruptedSystemCall


#: The methods and properties of pyzmq's classes that the engine's lack: those that wrap a
#: libzmq socket or context by its C address (an engine socket has none), and the event
#: behind a pyzmq Frame's tracker (the engine's trackers are done when the send returns).
NOT_ON_THE_ENGINES_CLASSES = {
    "shadow",
    "shadow_pyczmq",
    "underlying",
    "from_socket",
    "tracker_event",
}


def test_the_engines_classes_have_every_pyzmq_method_but_those_listed() -> None:
    """Socket, Context, Frame, Poller and MessageTracker on both faces: pyzmq's public names
    are there (on the class, or on a socket as an attribute such as `context` or the option
    `hwm`), but for those listed."""
    import asyncio

    import zmq.asyncio as pyzmq_asyncio

    import engine.asyncio as engine_asyncio

    pairs = [
        (pyzmq.Socket, engine.Socket),
        (pyzmq.Context, engine.Context),
        (pyzmq.Frame, engine.Frame),
        (pyzmq.Poller, engine.Poller),
        (pyzmq.MessageTracker, engine.MessageTracker),
        (pyzmq_asyncio.Socket, engine_asyncio.Socket),
        (pyzmq_asyncio.Context, engine_asyncio.Context),
        (pyzmq_asyncio.Poller, engine_asyncio.Poller),
    ]

    async def check() -> None:
        sync_ctx, async_ctx = engine.Context(), engine_asyncio.Context()
        sockets = {
            engine.Socket: sync_ctx.socket(engine.DEALER),
            engine_asyncio.Socket: async_ctx.socket(engine.DEALER),
        }
        try:
            for theirs, ours in pairs:
                missing = _public_names(theirs) - _public_names(ours) - NOT_ON_THE_ENGINES_CLASSES
                sock = sockets.get(ours)
                if sock is not None:
                    missing = {name for name in missing if not hasattr(sock, name)}
                assert missing == set(), (theirs.__qualname__, missing)
            assert not any(hasattr(sock, "underlying") for sock in sockets.values())
        finally:
            for sock in sockets.values():
                sock.close(0)
            sync_ctx.term()
            async_ctx.term()

    asyncio.run(check())


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_dir_lists_the_options_read_as_attributes(lib: Any) -> None:
    """`dir(sock)` and `dir(ctx)` name the options (`sock.IDENTITY`, `ctx.IO_THREADS`), as
    pyzmq's do, so completion offers them (the engine's listed none)."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PUB)
        names = dir(sock)
        assert {"send", "IDENTITY", "AFFINITY", "LINGER", "SNDHWM"} <= set(names)
        assert {"socket", "IO_THREADS", "MAX_SOCKETS"} <= set(dir(ctx))
        for name in ("IDENTITY", "LINGER"):
            getattr(sock, name)  # each listed option reads
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_a_star_import_brings_the_constants(lib: Any) -> None:
    """`from zmq import *` brings PUSH and RCVTIMEO with Context; the engine's `__all__`
    named its classes and functions only, so a star import left the constants out."""
    names: dict[str, Any] = {}
    exec(f"from {lib.__name__} import *", names)
    assert {"Context", "Socket", "PUSH", "RCVTIMEO", "EAGAIN", "POLLIN", "has"} <= set(names)
    assert names["PUSH"] == lib.PUSH
    constants = importlib.import_module(f"{lib.__name__}.constants")
    assert "RCVTIMEO" in constants.__all__


def test_the_engines_all_has_every_name_of_pyzmqs_all_it_has() -> None:
    missing = [
        name for name in pyzmq.__all__ if hasattr(engine, name) and name not in engine.__all__
    ]
    assert missing == []
    assert [name for name in engine.__all__ if not hasattr(engine, name)] == []
