"""pyzmq compatibility gaps found by running the Guide's examples unchanged, each closed here:
version names, ZMQError's text, the asyncio face's monitor and Context.set, and what a call
blocked on a socket raises when the socket or its context goes away (libzmq's rule, both faces).
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import os
import pickle
import threading
import time
from typing import Any

import pytest
import zmq as pyzmq
from enginekit import async_test, within

import engine
import engine.asyncio
from engine.utils.monitor import recv_monitor_message

pytestmark = pytest.mark.timeout(60)


def test_version_names() -> None:
    """zmq.__version__, pyzmq_version() and zmq_version() exist and agree with each other."""
    assert isinstance(engine.__version__, str)
    assert engine.pyzmq_version() == engine.__version__
    assert engine.pyzmq_version_info()[0] == int(engine.__version__.split(".")[0])
    # The libzmq whose numbers and behaviour the engine follows: the reference peers' own.
    assert engine.zmq_version() == pyzmq.zmq_version() == "4.3.5"
    assert engine.zmq_version_info() == (4, 3, 5)


def test_zmqerror_text_starts_with_the_standard_text() -> None:
    """As in pyzmq, str(ZMQError(EINVAL)) says "Invalid argument"; the engine's detail follows."""
    plain = engine.ZMQError(engine.EINVAL)
    assert str(plain) == str(pyzmq.ZMQError(pyzmq.EINVAL)) == os.strerror(errno.EINVAL)
    detailed = engine.ZMQError(engine.EINVAL, "port out of range in 'tcp://x:99999'")
    assert str(detailed) == "Invalid argument: port out of range in 'tcp://x:99999'"
    assert detailed.strerror == str(detailed) and detailed.errno == engine.EINVAL
    # And as raised by the engine itself.
    ctx = engine.Context()
    try:
        sock = ctx.socket(engine.PUSH)
        with pytest.raises(engine.ZMQError) as info:
            sock.connect("tcp://127.0.0.1:99999")
        assert str(info.value).startswith("Invalid argument: ")
        assert "99999" in str(info.value)
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_endpoints_may_be_bytes_as_last_endpoint_gives_them(lib: object) -> None:
    """pyzmq's bind/connect/unbind/disconnect take bytes (UTF-8), and LAST_ENDPOINT is bytes,
    so `sub.connect(pub.getsockopt(zmq.LAST_ENDPOINT))` works; the same lines on both."""
    z: Any = lib
    ctx = z.Context()
    try:
        pub, sub = ctx.socket(z.PUB), ctx.socket(z.SUB)
        pub.bind(b"tcp://127.0.0.1:0")
        endpoint = pub.getsockopt(z.LAST_ENDPOINT)
        assert isinstance(endpoint, bytes) and endpoint.startswith(b"tcp://127.0.0.1:")
        sub.setsockopt(z.SUBSCRIBE, b"")
        sub.connect(endpoint)
        sub.setsockopt(z.RCVTIMEO, 50)
        deadline = time.monotonic() + 10  # a slow joiner: publish until one is heard
        while not _published_and_heard(z, pub, sub):
            assert time.monotonic() < deadline, "nothing heard over the bytes endpoint"
        sub.disconnect(endpoint)
        pub.unbind(endpoint)
        with pytest.raises(z.ZMQError) as info:
            sub.connect(b"tcp://\xff\xfe:1")
        assert info.value.errno == z.EINVAL
        with pytest.raises(TypeError):
            sub.connect(5)
    finally:
        ctx.destroy(linger=0)


def _published_and_heard(z: Any, pub: Any, sub: Any) -> bool:
    pub.send(b"hello")
    try:
        return sub.recv() == b"hello"
    except z.Again:
        return False


@async_test()
async def test_asyncio_monitor_socket() -> None:
    """engine.asyncio sockets have get_monitor_socket; recv_monitor_message awaits events."""
    ctx = engine.asyncio.Context()
    try:
        rep = ctx.socket(engine.REP)
        monitor = rep.get_monitor_socket()
        endpoint = rep.bind("tcp://127.0.0.1:0")
        req = ctx.socket(engine.REQ)
        req.connect(endpoint)
        await req.send(b"ping")
        assert await within(rep.recv()) == b"ping"
        seen = []
        while engine.EVENT_HANDSHAKE_SUCCEEDED not in seen:
            event = await within(recv_monitor_message(monitor))
            seen.append(event["event"])
        assert seen[0] == engine.EVENT_LISTENING
        assert engine.EVENT_ACCEPTED in seen
        rep.disable_monitor()
    finally:
        ctx.destroy(linger=0)


@async_test()
async def test_asyncio_context_set_gives_new_sockets_defaults() -> None:
    ctx = engine.asyncio.Context()
    try:
        ctx.linger = 0
        ctx.setsockopt(engine.RCVTIMEO, 50)
        ctx.set(engine.MAX_SOCKETS, 7)
        ctx.set(engine.IO_THREADS, 2)
        assert (ctx.getsockopt(engine.LINGER), ctx.get(engine.MAX_SOCKETS)) == (0, 7)
        assert ctx.get(engine.IO_THREADS) == 2
        sock = ctx.socket(engine.PULL)
        assert (sock.linger, sock.rcvtimeo) == (0, 50)
        with pytest.raises(engine.Again):
            await sock.recv()  # RCVTIMEO from the context
    finally:
        ctx.destroy()


# -- a call blocked on a socket that goes away -----------------------------------------------------


@pytest.mark.parametrize("ending", ["close", "destroy", "close, then term"])
@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_asyncio_calls_waiting_on_a_socket_that_closes_are_cancelled(lib: Any, ending: str) -> None:
    """zmq.asyncio cancels the recv and poll still waiting when their socket closes (by
    close(), or by the context's destroy()); the engine failed them with ENOTSOCK or ETERM,
    so a receiving task stopped by closing its socket met an error where pyzmq's is
    cancelled."""
    face = engine.asyncio if lib is engine else importlib.import_module("zmq.asyncio")

    async def outcomes() -> list[str]:
        ctx = face.Context()
        pull = ctx.socket(lib.PULL)
        pull.bind("inproc://closing")
        waiting = [asyncio.ensure_future(pull.recv()), asyncio.ensure_future(pull.poll())]
        await asyncio.sleep(0)
        if ending == "destroy":
            ctx.destroy(linger=0)
        else:
            pull.close()
            ctx.term()
        seen = []
        for call in waiting:
            try:
                seen.append(repr(await asyncio.wait_for(call, 10)))
            except asyncio.CancelledError:
                seen.append("cancelled")
            except lib.ZMQError as exc:
                seen.append(f"errno {exc.errno}")
        return seen

    assert asyncio.run(outcomes()) == ["cancelled", "cancelled"]


def test_sync_blocked_recv_on_close_raises_enotsock() -> None:
    """Closing from another thread wakes a blocked recv with ENOTSOCK (term() gives ETERM,
    see test_sync_poll)."""
    ctx = engine.Context()
    try:
        pull = ctx.socket(engine.PULL)
        pull.bind("inproc://closing-sync")
        outcome: list[BaseException] = []
        started = threading.Event()

        def blocked() -> None:
            started.set()
            try:
                pull.recv()
            except engine.ZMQError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=blocked)
        thread.start()
        started.wait(10)
        while not pull._core._armed:  # white box: it sleeps now
            if not thread.is_alive():
                break
        pull.close()
        thread.join(10)
        assert [e.errno for e in outcome] == [engine.ENOTSOCK]  # type: ignore[attr-defined]
    finally:
        ctx.destroy(linger=0)


def test_the_older_pyzmq_names_exist_and_behave_as_pyzmqs() -> None:
    """zmq.device, zmq.strerror, zmq.utils.z85, COPY_THRESHOLD, Socket.get_hwm/set_hwm and
    the device types: each used to be missing (an AttributeError where pyzmq answers)."""
    import zmq.utils.z85 as their_z85

    import engine.utils.z85 as our_z85

    assert (engine.QUEUE, engine.FORWARDER, engine.STREAMER) == (
        pyzmq.QUEUE,
        pyzmq.FORWARDER,
        pyzmq.STREAMER,
    )
    # Every errno's text, libzmq's own ones included (EHOSTUNREACH read "No route to host").
    numbers = [*range(1, 160), engine.EFSM, engine.ENOCOMPATPROTO, engine.ETERM, engine.EMTHREAD]
    assert [engine.strerror(n) for n in numbers] == [pyzmq.strerror(n) for n in numbers]
    assert engine.COPY_THRESHOLD == pyzmq.COPY_THRESHOLD
    ctx = engine.Context()
    try:
        sock = ctx.socket(engine.DEALER)
        sock.set_hwm(5)  # both marks, as pyzmq's
        assert sock.get_hwm() == 5 == sock.getsockopt(engine.RCVHWM)
    finally:
        ctx.destroy(linger=0)
    key = bytes(range(32))
    assert our_z85.encode(key) == their_z85.encode(key)
    assert our_z85.decode(our_z85.encode(key)) == key
    with pytest.raises(ValueError):
        our_z85.encode(b"abc")  # not a multiple of 4, as in pyzmq
    for call in (engine.proxy, lambda a, b: engine.device(engine.QUEUE, a, b)):
        with pytest.raises(TypeError):
            call(None, None)  # pyzmq: TypeError too (the engine's was an AttributeError)


def test_device_forwards_like_proxy() -> None:
    """zmq.device(QUEUE, frontend, backend) is the proxy, until the context ends."""
    ctx = engine.Context()
    front, back = ctx.socket(engine.ROUTER), ctx.socket(engine.DEALER)
    front.bind("inproc://device-front")
    back.bind("inproc://device-back")
    done = threading.Thread(target=_device_until_term, args=(front, back), daemon=True)
    done.start()
    client, worker = ctx.socket(engine.REQ), ctx.socket(engine.REP)
    client.connect("inproc://device-front")
    worker.connect("inproc://device-back")
    client.send(b"ping")
    assert worker.recv() == b"ping"
    worker.send(b"pong")
    assert client.recv() == b"pong"
    ctx.destroy(linger=0)  # the device's sockets go with it: it raises and returns
    done.join(10)
    assert not done.is_alive()


def _device_until_term(front: Any, back: Any) -> None:
    with pytest.raises(engine.ZMQError):
        engine.device(engine.QUEUE, front, back)


def test_an_ipc_path_too_long_for_a_unix_socket_is_refused_at_bind_and_connect() -> None:
    """libzmq says ENAMETOOLONG at once; the engine's connect used to take it and fail out of
    sight on every retry, and its bind said "Invalid argument: None"."""
    ctx, theirs = engine.Context(), pyzmq.Context()
    try:
        endpoint = "ipc:///tmp/" + "x" * 200
        for lib, context in ((engine, ctx), (pyzmq, theirs)):
            for verb in ("bind", "connect"):
                sock = context.socket(lib.PAIR)
                with pytest.raises(lib.ZMQError) as caught:
                    getattr(sock, verb)(endpoint)
                assert caught.value.errno == errno.ENAMETOOLONG, (lib.__name__, verb)
                sock.close(linger=0)
    finally:
        ctx.destroy(linger=0)
        theirs.destroy(linger=0)


def test_bind_and_connect_are_context_managers_and_still_the_endpoint() -> None:
    """pyzmq's `with sock.bind(url):` unbinds at the end, `with sock.connect(url):`
    disconnects; the engine's connect returned None, which `with` refused."""
    ctx = engine.Context()
    try:
        server, client = ctx.socket(engine.PAIR), ctx.socket(engine.PAIR)
        with server.bind("tcp://127.0.0.1:0") as bound:
            endpoint = server.last_endpoint.decode()
            assert bound is server
            with client.connect(endpoint) as connected:
                assert connected is client
                client.send(b"hi")
                assert server.recv() == b"hi"
            with pytest.raises(engine.ZMQError) as gone:
                client.disconnect(endpoint)  # the with block did it already
            assert gone.value.errno == errno.ENOENT
        with pytest.raises(engine.ZMQError):
            server.unbind(endpoint)
        resolved = server.bind("tcp://127.0.0.1:0")
        assert isinstance(resolved, str) and resolved == server.last_endpoint.decode()
        # Handed to another process as the text alone (the socket is not pickled with it).
        assert type(pickle.loads(pickle.dumps(resolved))) is str
        assert server.fileno() == server.getsockopt(engine.FD)
    finally:
        ctx.destroy(linger=0)


def test_raw_monitor_and_frame_more_as_in_pyzmq() -> None:
    """`sock.monitor(addr, events)` and `monitor(None)`, and Frame.get(MORE)."""
    ctx = engine.Context()
    try:
        sock = ctx.socket(engine.DEALER)
        sock.monitor("inproc://raw-monitor", engine.EVENT_LISTENING)
        watcher = ctx.socket(engine.PAIR)
        watcher.connect("inproc://raw-monitor")
        sock.bind("tcp://127.0.0.1:0")
        assert recv_monitor_message(watcher)["event"] == engine.EVENT_LISTENING
        sock.monitor(None)
        a, b = ctx.socket(engine.PAIR), ctx.socket(engine.PAIR)
        a.bind("inproc://frames")
        b.connect("inproc://frames")
        a.send_multipart([b"1", b"2"])
        first, last = b.recv_multipart(copy=False)
        assert (first.get(engine.MORE), last.get(engine.MORE)) == (1, 0)
        assert engine.MORE == pyzmq.MORE
    finally:
        ctx.destroy(linger=0)


@async_test()
async def test_asyncio_calls_hand_back_futures_as_pyzmqs_do() -> None:
    """A recv that has to wait is a Future, as in zmq.asyncio: it can be cancelled, and given
    to asyncio.wait (which refuses the coroutine it used to be)."""
    ctx = engine.asyncio.Context()
    try:
        a, b = ctx.socket(engine.PAIR), ctx.socket(engine.PAIR)
        b.bind("inproc://futures")
        a.connect("inproc://futures")
        for pending in (b.recv(), b.recv_string(), b.recv_multipart(), b.poll(5_000)):
            assert isinstance(pending, asyncio.Future), pending
            done, _ = await asyncio.wait({pending}, timeout=0.01)
            assert not done
            assert pending.cancel()
        await a.send(b"kept")  # nothing the cancelled calls left behind took it
        assert await within(b.recv_string()) == "kept"
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_send_multipart_with_sndmore_waits_for_the_rest(lib: Any) -> None:
    """send_multipart(parts, SNDMORE) leaves the message open, as pyzmq's: the engine used
    to send the parts as a message of their own."""
    ctx = lib.Context()
    try:
        a, b = ctx.socket(lib.PAIR), ctx.socket(lib.PAIR)
        b.bind(f"inproc://sndmore-{id(ctx)}")
        a.connect(f"inproc://sndmore-{id(ctx)}")
        b.setsockopt(lib.RCVTIMEO, 10_000)
        a.send_multipart([b"1", b"2"], lib.SNDMORE)
        a.send(b"3")
        assert b.recv_multipart() == [b"1", b"2", b"3"]
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_trackers_as_pyzmq_hands_them_out(lib: Any) -> None:
    """A tracker only for track=True with copy=False (None with copy=True), and
    Frame(data, track=True).tracker; the engine took no `track` in Frame() and handed a
    tracker out for copied sends. Frame(None) is an empty frame, as Frame() is (the engine
    refused None)."""
    assert isinstance(lib.Frame(b"x", track=True).tracker, lib.MessageTracker)
    assert lib.Frame(b"x").tracker is None
    assert lib.Frame(None).bytes == lib.Frame().bytes == b""
    with pytest.raises(TypeError):
        lib.Frame("text")
    ctx = lib.Context()
    try:
        a, b = ctx.socket(lib.PAIR), ctx.socket(lib.PAIR)
        b.bind(f"inproc://track-{id(ctx)}")
        a.connect(f"inproc://track-{id(ctx)}")
        assert a.send(b"copied", track=True) is None
        assert a.send_multipart([b"copied"], track=True) is None
        tracker = a.send(b"x" * 100_000, copy=False, track=True)
        assert isinstance(tracker, lib.MessageTracker)
        b.setsockopt(lib.RCVTIMEO, 10_000)
        assert [b.recv(), b.recv(), len(b.recv())] == [b"copied", b"copied", 100_000]
        tracker.wait(10)
        assert tracker.done
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_the_serializing_calls_take_pyzmqs_arguments(lib: Any) -> None:
    """recv_serialized(..., copy=False) hands Frames to the deserializer, send_serialized
    takes flags as its third argument, send_pyobj passes the rest to send(): the engine's
    took none of these (a TypeError each)."""
    ctx = lib.Context()
    try:
        a = ctx.socket(lib.PAIR)
        a.bind("inproc://serialized")
        b = ctx.socket(lib.PAIR)
        b.connect("inproc://serialized")
        a.send_serialized("x", lambda m: [m.encode(), b"z"], lib.SNDMORE, copy=False)
        a.send(b"end")
        kinds = b.recv_serialized(lambda frames: [type(f).__name__ for f in frames], copy=False)
        assert kinds == ["Frame", "Frame", "Frame"]
        tracker = a.send_pyobj({"k": 1}, 0, pickle.DEFAULT_PROTOCOL, copy=False, track=True)
        assert isinstance(tracker, lib.MessageTracker)
        assert b.recv_pyobj() == {"k": 1}
        a.send_json({"b": 1, "a": 2}, sort_keys=True)
        assert b.recv() == b'{"a": 2, "b": 1}'
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_option_calls_take_pyzmqs_keyword_names(lib: Any) -> None:
    """pyzmq names a socket option's value `optval`, a context default's `opt` and `value`:
    a call that passes them by keyword worked there and was a TypeError here."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.DEALER)
        sock.setsockopt(option=lib.LINGER, optval=5)
        sock.set(option=lib.SNDHWM, optval=7)
        sock.setsockopt_string(option=lib.ROUTING_ID, optval="named")
        assert (sock.linger, sock.sndhwm, sock.routing_id) == (5, 7, b"named")
        ctx.set(option=lib.MAX_SOCKETS, optval=64)
        ctx.setsockopt(opt=lib.RCVHWM, value=9)
        assert ctx.getsockopt(opt=lib.RCVHWM) == 9 and ctx.socket(lib.PULL).rcvhwm == 9
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_a_second_inproc_pair_connects_and_the_first_keeps_its_peer(lib: Any) -> None:
    """An inproc connect to a PAIR that has its peer succeeds, as in libzmq (whose bound PAIR
    then ends the newcomer's pipe): the engine raised ENOCOMPATPROTO, as if the two types
    could not talk; and one made before the bound PAIR had taken in the first got in too, so
    the PAIR heard two peers. The first pair goes on talking, alone."""
    ctx = lib.Context()
    try:
        bound = ctx.socket(lib.PAIR)
        bound.bind("inproc://taken-pair")
        first = ctx.socket(lib.PAIR)
        first.connect("inproc://taken-pair")
        early = ctx.socket(lib.PAIR)
        early.connect("inproc://taken-pair")  # before the bound PAIR has heard a word
        first.send(b"hello")
        assert bound.poll(10_000) and bound.recv() == b"hello"
        try:  # (libzmq's early PAIR may take it, into the pipe its peer ends)
            early.send(b"intruder", lib.DONTWAIT)
        except lib.Again:
            pass
        first.send(b"again")
        assert bound.poll(10_000) and bound.recv() == b"again"
        assert bound.poll(200) == 0, "a PAIR heard a second peer"
        late = ctx.socket(lib.PAIR)
        late.connect("inproc://taken-pair")  # no error
        for i in range(5):
            bound.send(b"%d" % i)
            assert first.poll(10_000) and first.recv() == b"%d" % i
        assert early.poll(100) == 0 and late.poll(0) == 0
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_a_monitor_events_value_is_an_event_as_pyzmq_parses_it(lib: Any) -> None:
    """pyzmq's parse_monitor_message hands the value (here the listening descriptor) out as an
    Event, an int all the same; pyzmq's simple_monitor example prints it (the engine gave a
    plain int, so it printed other lines)."""
    monitor_module = importlib.import_module(f"{lib.__name__}.utils.monitor")
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PULL)
        watcher = sock.get_monitor_socket(lib.EVENT_LISTENING)
        watcher.setsockopt(lib.RCVTIMEO, 10_000)
        sock.bind("tcp://127.0.0.1:0")
        event = monitor_module.recv_monitor_message(watcher)
        assert event["event"] == lib.EVENT_LISTENING
        assert type(event["value"]) is lib.Event and int(event["value"]) > 0
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_bind_errors_say_what_bind_says(lib: Any, tmp_path: Any) -> None:
    """bind_to_random_port passes on bind's errno for an unknown transport (EPROTONOSUPPORT;
    the engine said EINVAL), and an ipc bind into a missing directory names the path (the
    engine's ZMQError dropped a detail that began with the errno's own text)."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PUB)
        with pytest.raises(lib.ZMQError) as unknown:
            sock.bind_to_random_port("rand://*")
        assert unknown.value.errno == lib.EPROTONOSUPPORT
        with pytest.raises(lib.ZMQError) as malformed:
            sock.bind_to_random_port("tcp:*")
        assert malformed.value.errno == lib.EINVAL
        missing = f"{tmp_path}/no-such-dir/sock"
        with pytest.raises(lib.ZMQError) as enoent:
            sock.bind(f"ipc://{missing}")
        assert enoent.value.errno == errno.ENOENT
        assert missing in str(enoent.value)
        assert "no such file or directory" in str(enoent.value).lower()
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_socket_kwargs_reach_the_socket_class_constructor(lib: Any) -> None:
    """ctx.socket(type, **kwargs) hands kwargs to the socket class, as pyzmq does (the engine
    took each as an option, so a subclass's own keyword was an unknown option)."""

    class Tagged(lib.Socket):  # type: ignore[misc, name-defined]
        tag_value = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.tag_value = kwargs.pop("tag", None)
            super().__init__(*args, **kwargs)

    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.DEALER, socket_class=Tagged, tag="mine")
        assert isinstance(sock, Tagged) and sock.tag_value == "mine"
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_context_instance_is_one_context_for_threads_asking_at_once(lib: Any) -> None:
    """Sixteen threads and the main one call instance() together on a class slow to build:
    all get the same context (the engine's made several)."""
    started = threading.Barrier(17)

    class Slow(lib.Context):  # type: ignore[misc, name-defined]
        _instance = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.2)  # the window the threads' calls meet in; no result waits on it
            super().__init__(*args, **kwargs)

    got: list[Any] = []

    def ask() -> None:
        started.wait(10)
        got.append(Slow.instance())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    ask()
    for thread in threads:
        thread.join(10)
    try:
        assert len(got) == 17 and all(ctx is got[0] for ctx in got)
    finally:
        for ctx in {id(ctx): ctx for ctx in got}.values():
            ctx.term()
