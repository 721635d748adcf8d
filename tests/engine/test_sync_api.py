"""The sync face's Context and Socket API, as pyzmq programs use it.

Contexts: instance(), term(), destroy(linger), context manager, fork. Sockets: endpoints,
blocking and non-blocking send/recv, multipart, serialisation helpers, poll, close and errors.
"""

from __future__ import annotations

import os
import select
import signal
import time

import pytest

import engine as zmq

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

WAIT_MS = 10_000
WAIT_S = 15.0


def pair(ctx: zmq.Context, transport: str = "tcp") -> tuple[zmq.Socket, zmq.Socket]:
    """Two connected PAIR sockets (bound, connected) that time out rather than hang."""
    a = ctx.socket(zmq.PAIR)
    b = ctx.socket(zmq.PAIR)
    for s in (a, b):
        s.rcvtimeo = WAIT_MS
        s.sndtimeo = WAIT_MS
    addr = "tcp://127.0.0.1:*" if transport == "tcp" else f"inproc://pair-{time.monotonic_ns()}"
    b.connect(a.bind(addr))
    return a, b


# -- Context --------------------------------------------------------------------------------------


def test_instance_is_one_object_until_terminated() -> None:
    """Context.instance() returns the same context twice; after term() a fresh one."""
    first = zmq.Context.instance()
    assert zmq.Context.instance() is first
    assert isinstance(first, zmq.Context)
    first.term()
    assert first.closed
    second = zmq.Context.instance()
    try:
        assert second is not first
        assert not second.closed
    finally:
        second.term()


def test_instance_is_recreated_in_forked_child() -> None:
    """In a child made by fork(), instance() is a new, working context; the child reports
    over a pipe."""
    parent = zmq.Context.instance()
    sock = parent.socket(zmq.PAIR)  # start the parent's I/O thread before forking
    sock.bind("inproc://before-fork")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanups
        status = 1
        try:
            child = zmq.Context.instance()
            fresh = child is not parent and child is zmq.Context.instance()
            a = child.socket(zmq.PAIR)
            a.bind("inproc://in-child")
            b = child.socket(zmq.PAIR)
            b.connect("inproc://in-child")
            b.send(b"ping")
            a.rcvtimeo = WAIT_MS
            works = a.recv() == b"ping"
            child.destroy(linger=0)
            os.write(write_end, f"fresh={fresh} works={works}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], WAIT_S)
        report = os.read(read_end, 100) if ready else b"(no report)"
        assert report == b"fresh=True works=True"
        assert zmq.Context.instance() is parent  # the parent's instance is untouched
    finally:
        os.close(read_end)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        parent.destroy(linger=0)


def test_term_closes_open_sockets_and_refuses_new_ones() -> None:
    """term() closes what is open; afterwards socket() raises ENOTSUP (pyzmq's answer)."""
    ctx = zmq.Context()
    a, b = pair(ctx)
    a.linger = b.linger = 0
    ctx.term()
    assert ctx.closed and a.closed and b.closed
    with pytest.raises(zmq.ZMQError) as info:
        ctx.socket(zmq.PAIR)
    assert info.value.errno == zmq.ENOTSUP
    ctx.term()  # a second term is harmless


def test_destroy_with_linger_drops_unsent_messages() -> None:
    """destroy(linger=0) returns although messages wait for a peer that never comes."""
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect("tcp://127.0.0.1:9")  # the discard port: nobody answers ZMTP there
    for _ in range(10):
        push.send(b"lost")
    ctx.destroy(linger=0)
    assert push.closed and ctx.closed


def test_context_manager_terminates() -> None:
    """`with zmq.Context() as ctx:` terminates the context and its sockets."""
    with zmq.Context() as ctx:
        a, b = pair(ctx, "inproc")
        b.send(b"x")
        assert a.recv() == b"x"
    assert ctx.closed and a.closed and b.closed


def test_context_socket_defaults() -> None:
    """Options set on the context apply to sockets created afterwards (pyzmq's ctx.linger)."""
    with zmq.Context() as ctx:
        ctx.linger = 0
        ctx.setsockopt(zmq.SNDHWM, 17)
        sock = ctx.socket(zmq.PUSH)
        assert sock.linger == 0
        assert sock.getsockopt(zmq.SNDHWM) == 17
        assert ctx.getsockopt(zmq.SNDHWM) == 17
        assert ctx.get(zmq.IO_THREADS) == 1


# -- endpoints ------------------------------------------------------------------------------------


def test_bind_returns_endpoint_and_sets_last_endpoint(ctx: zmq.Context) -> None:
    """bind() to a wildcard port returns the resolved endpoint, as LAST_ENDPOINT does."""
    sock = ctx.socket(zmq.PULL)
    endpoint = sock.bind("tcp://127.0.0.1:*")
    assert endpoint.startswith("tcp://127.0.0.1:") and not endpoint.endswith(":0")
    assert sock.getsockopt(zmq.LAST_ENDPOINT) == endpoint.encode()
    assert sock.getsockopt_string(zmq.LAST_ENDPOINT) == endpoint
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    assert sock.last_endpoint == f"tcp://127.0.0.1:{port}".encode()


def test_unbind_frees_the_address(ctx: zmq.Context) -> None:
    """unbind() releases the port; unbinding again is ENOENT."""
    first = ctx.socket(zmq.PULL)
    endpoint = first.bind("tcp://127.0.0.1:*")
    with pytest.raises(zmq.ZMQError) as info:
        ctx.socket(zmq.PULL).bind(endpoint)
    assert info.value.errno == zmq.EADDRINUSE
    first.unbind(endpoint)
    second = ctx.socket(zmq.PULL)
    assert second.bind(endpoint) == endpoint
    with pytest.raises(zmq.ZMQError) as info:
        first.unbind(endpoint)
    assert info.value.errno == zmq.ENOENT


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_disconnect_stops_sending_to_that_peer(ctx: zmq.Context, transport: str) -> None:
    """After disconnect, a PUSH load-balances only over the peers still connected."""
    pulls = [ctx.socket(zmq.PULL) for _ in range(2)]
    addr = "tcp://127.0.0.1:*" if transport == "tcp" else "inproc://pull-{}"
    endpoints = [p.bind(addr.format(i)) for i, p in enumerate(pulls)]
    push = ctx.socket(zmq.PUSH)
    for endpoint in endpoints:
        push.connect(endpoint)
    for pull in pulls:
        pull.rcvtimeo = WAIT_MS
    push.send(b"one")
    push.send(b"two")
    assert sorted(p.recv() for p in pulls) == [b"one", b"two"]
    push.disconnect(endpoints[0])
    for i in range(4):
        push.send(b"%d" % i)
    poller = zmq.Poller()
    for pull in pulls:
        poller.register(pull, zmq.POLLIN)
    got = []
    while len(got) < 4:
        ready = dict(poller.poll(WAIT_MS))
        assert pulls[0] not in ready, f"disconnected peer got {pulls[0].recv()!r}"
        assert pulls[1] in ready, "timed out"
        got.append(pulls[1].recv())
    assert got == [b"0", b"1", b"2", b"3"]
    assert pulls[0].poll(50) == 0


# -- send and receive -----------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["DONTWAIT", "NOBLOCK"])
def test_nonblocking_recv_raises_again(ctx: zmq.Context, flag: str) -> None:
    """recv with DONTWAIT/NOBLOCK and nothing queued raises zmq.Again (EAGAIN)."""
    a, _ = pair(ctx)
    with pytest.raises(zmq.Again) as info:
        a.recv(getattr(zmq, flag))
    assert isinstance(info.value, zmq.ZMQError)
    assert info.value.errno == zmq.EAGAIN
    with pytest.raises(zmq.Again):
        a.recv_multipart(zmq.NOBLOCK)


def test_nonblocking_send_without_peer_raises_again(ctx: zmq.Context) -> None:
    """A PUSH with no peer cannot queue: a DONTWAIT send raises zmq.Again."""
    push = ctx.socket(zmq.PUSH)  # no peer at all: nowhere to queue
    with pytest.raises(zmq.Again):
        push.send(b"x", zmq.DONTWAIT)
    with pytest.raises(zmq.Again):
        push.send_multipart([b"x", b"y"], zmq.NOBLOCK)


def test_timeouts_raise_again(ctx: zmq.Context) -> None:
    """RCVTIMEO and SNDTIMEO turn a blocking call into zmq.Again."""
    pull = ctx.socket(zmq.PULL)
    pull.bind("inproc://nothing-comes")
    pull.rcvtimeo = 50
    with pytest.raises(zmq.Again):
        pull.recv()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDTIMEO, 50)
    with pytest.raises(zmq.Again):
        push.send(b"no peer")


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_sndmore_and_rcvmore(ctx: zmq.Context, transport: str) -> None:
    """Frames sent with SNDMORE arrive one per recv(), RCVMORE set on all but the last."""
    a, b = pair(ctx, transport)
    b.send(b"first", zmq.SNDMORE)
    b.send(b"", zmq.SNDMORE)
    b.send(b"last")
    frames = []
    while True:
        frames.append(a.recv())
        if not a.getsockopt(zmq.RCVMORE):
            break
        assert a.rcvmore
    assert frames == [b"first", b"", b"last"]
    assert a.getsockopt(zmq.RCVMORE) == 0


def test_multipart_with_empty_frames_and_frames(ctx: zmq.Context) -> None:
    """Empty frames, buffer-protocol parts and copy=False Frames survive."""
    a, b = pair(ctx)
    for msg in ([b""], [b"", b""], [b"a", b"", b"c", b""], [bytearray(b"ba"), memoryview(b"mv")]):
        b.send_multipart(msg)
        assert a.recv_multipart() == [bytes(f) for f in msg]
    b.send_multipart([b"x", b"y"])
    frames = a.recv_multipart(copy=False)
    assert [f.bytes for f in frames] == [b"x", b"y"]
    assert [f.more for f in frames] == [True, False]
    b.send(zmq.Frame(b"framed"))
    frame = a.recv(copy=False)
    assert frame.bytes == b"framed" and bytes(frame.buffer) == b"framed"


def test_string_json_and_pyobj_helpers(ctx: zmq.Context) -> None:
    """send_string/recv_string (with encodings), send_json/recv_json, send_pyobj/recv_pyobj."""
    a, b = pair(ctx)
    b.send_string("héllo wörld")
    assert a.recv_string() == "héllo wörld"
    b.send_string("café", encoding="latin-1")
    assert a.recv() == "café".encode("latin-1")
    b.send(b"caf\xe9")
    assert a.recv_string(encoding="latin-1") == "café"
    b.send_json({"player": 1, "pos": [1.5, -2], "name": None})
    assert a.recv_json() == {"player": 1, "pos": [1.5, -2], "name": None}
    b.send_pyobj({"set": {1, 2}, "tuple": (b"x",)})
    assert a.recv_pyobj() == {"set": {1, 2}, "tuple": (b"x",)}
    with pytest.raises(TypeError):
        b.send("str is not bytes")  # type: ignore[arg-type]


def test_poll_with_timeout_and_flags(ctx: zmq.Context) -> None:
    """Socket.poll(timeout, flags) reports the ready events among `flags`."""
    a, b = pair(ctx)
    assert a.poll(0) == 0
    assert a.poll(30, zmq.POLLIN) == 0
    assert a.poll(WAIT_MS, zmq.POLLOUT) == zmq.POLLOUT
    b.send(b"x")
    assert a.poll(WAIT_MS) == zmq.POLLIN
    assert a.poll(0, zmq.POLLIN | zmq.POLLOUT) == zmq.POLLIN | zmq.POLLOUT
    assert a.getsockopt(zmq.EVENTS) & zmq.POLLIN
    assert a.recv() == b"x"
    assert a.poll(0) == 0


def test_req_misuse_raises_efsm(ctx: zmq.Context) -> None:
    """REQ and REP enforce lock step with EFSM, as libzmq does."""
    req = ctx.socket(zmq.REQ)
    with pytest.raises(zmq.ZMQError) as info:
        req.recv()
    assert info.value.errno == zmq.EFSM
    req.connect("inproc://efsm")
    req.send(b"one")
    with pytest.raises(zmq.ZMQError) as info:
        req.send(b"two")
    assert info.value.errno == zmq.EFSM
    rep = ctx.socket(zmq.REP)
    with pytest.raises(zmq.ZMQError) as info:
        rep.send(b"unasked")
    assert info.value.errno == zmq.EFSM


# -- closing --------------------------------------------------------------------------------------


def test_close_and_closed(ctx: zmq.Context) -> None:
    """close(linger) sets `closed`; later calls raise ENOTSOCK."""
    a, b = pair(ctx)
    assert not a.closed
    a.close(linger=0)
    assert a.closed
    a.close()  # closing twice is fine
    with pytest.raises(zmq.ZMQError) as info:
        a.send(b"x")
    assert info.value.errno == zmq.ENOTSOCK
    with pytest.raises(zmq.ZMQError):
        a.recv()
    b.close()


def test_socket_context_manager(ctx: zmq.Context) -> None:
    """A socket used as a context manager is closed on exit."""
    with ctx.socket(zmq.PUSH) as push, ctx.socket(zmq.PULL) as pull:
        pull.connect(push.bind("inproc://cm"))
        push.send(b"inside")
        pull.rcvtimeo = WAIT_MS
        assert pull.recv() == b"inside"
    assert push.closed and pull.closed


def test_close_with_linger_delivers_queued_messages(ctx: zmq.Context) -> None:
    """close(linger) on a connected PUSH still sends everything it had queued."""
    pull = ctx.socket(zmq.PULL)
    pull.rcvtimeo = WAIT_MS
    endpoint = pull.bind("tcp://127.0.0.1:*")
    push = ctx.socket(zmq.PUSH)
    push.connect(endpoint)
    push.send(b"connected?")
    assert pull.recv() == b"connected?"
    for i in range(50):
        push.send(b"%d" % i)
    push.close(linger=WAIT_MS)
    assert [pull.recv() for _ in range(50)] == [b"%d" % i for i in range(50)]


@pytest.mark.parametrize("how", ["close", "term"])
def test_send_then_close_before_connected_still_delivers(how: str) -> None:
    """connect, send, close/term at once: libzmq delivers within LINGER (the Guide relies on
    this in one-shot senders such as taskvent)."""
    receiver_ctx = zmq.Context()
    try:
        pull = receiver_ctx.socket(zmq.PULL)
        pull.rcvtimeo = WAIT_MS
        endpoint = pull.bind("tcp://127.0.0.1:*")
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.linger = WAIT_MS
        push.connect(endpoint)
        push.send(b"last words")
        if how == "close":
            push.close()
        ctx.term()
        assert pull.recv() == b"last words"
    finally:
        receiver_ctx.destroy(linger=0)
