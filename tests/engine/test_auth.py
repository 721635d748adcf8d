"""The authenticators on real engine sockets: a REQ at inproc://zeromq.zap.01 asks, as a
handshake does, and gets RFC 27 replies decided by the policy."""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path
from typing import Any

import pytest

import engine
import engine.asyncio
from engine.auth import CURVE_ALLOW_ANY, create_certificates, load_certificate
from engine.auth.asyncio import AsyncioAuthenticator
from engine.auth.base import Authenticator
from engine.auth.thread import ThreadAuthenticator
from engine.security import z85
from engine.security.zap import ZAP_ENDPOINT, ZapReply, ZapRequest
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)


def ask(ctx: engine.Context, request: ZapRequest | list[bytes]) -> ZapReply:
    frames = request if isinstance(request, list) else request.to_frames()
    req = ctx.socket(engine.REQ)
    req.linger = 0
    req.rcvtimeo = 5000
    try:
        req.connect(ZAP_ENDPOINT)
        req.send_multipart(frames)
        return ZapReply.from_frames(req.recv_multipart())
    finally:
        req.close()


def plain(user: bytes, password: bytes, address: str = "127.0.0.1", domain: str = "") -> ZapRequest:
    return ZapRequest(domain, address, b"", b"PLAIN", (user, password))


def curve(key: bytes, address: str = "127.0.0.1", domain: str = "") -> ZapRequest:
    return ZapRequest(domain, address, b"", b"CURVE", (key,))


@pytest.fixture
def ctx():
    context = engine.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def auth(ctx: engine.Context):
    authenticator = ThreadAuthenticator(ctx)
    authenticator.start()
    yield authenticator
    authenticator.stop()


def test_plain_passwords(ctx: engine.Context, auth: ThreadAuthenticator) -> None:
    auth.configure_plain(domain="*", passwords={"alice": "s3cret"})
    ok = ask(ctx, plain(b"alice", b"s3cret"))
    assert (ok.status_code, ok.user_id) == (200, "alice")
    assert ask(ctx, plain(b"alice", b"guess")).status_code == 400
    assert ask(ctx, plain(b"mallory", b"s3cret")).status_code == 400
    assert ask(ctx, plain(b"\xff", b"x")).status_code == 400


def test_address_lists(ctx: engine.Context, auth: ThreadAuthenticator) -> None:
    auth.configure_plain(passwords={"alice": "pw"})
    auth.deny("10.0.0.9")
    assert ask(ctx, plain(b"alice", b"pw", "10.0.0.9")).status_code == 400
    assert ask(ctx, plain(b"alice", b"pw", "10.0.0.8")).status_code == 200
    null = ZapRequest("d", "10.0.0.9", b"", b"NULL")
    assert ask(ctx, null).status_code == 400


def test_an_allow_list_lets_only_its_addresses_in(
    ctx: engine.Context, auth: ThreadAuthenticator
) -> None:
    auth.configure_plain(passwords={"alice": "pw"})
    auth.allow("10.0.0.7")
    assert ask(ctx, plain(b"alice", b"pw", "10.0.0.8")).status_code == 400
    assert ask(ctx, plain(b"alice", b"pw", "10.0.0.7")).status_code == 200
    assert ask(ctx, ZapRequest("d", "10.0.0.7", b"", b"NULL")).status_code == 200


@LIBS
@pytest.mark.parametrize("first", ["allow", "deny"])
def test_allow_and_deny_do_not_mix(lib: Any, first: str) -> None:
    """As pyzmq's: the second kind of list is a ValueError (the engine let an allow list win
    over a deny list, silently)."""
    thread_auth = importlib.import_module(f"{lib.__name__}.auth.thread")
    ctx = lib.Context()
    try:
        authenticator = thread_auth.ThreadAuthenticator(ctx)
        getattr(authenticator, first)("10.0.0.1")
        getattr(authenticator, first)("10.0.0.2")  # more of the same kind is fine
        second = "deny" if first == "allow" else "allow"
        with pytest.raises(ValueError):
            getattr(authenticator, second)("10.0.0.3")
    finally:
        ctx.destroy(linger=0)


def test_curve_certificates_by_domain(
    ctx: engine.Context, auth: ThreadAuthenticator, tmp_path: Path
) -> None:
    workers = tmp_path / "workers"
    workers.mkdir()
    _, secret_file = create_certificates(workers, "worker-1")
    public, _ = load_certificate(secret_file)
    stranger, _ = engine.curve_keypair()
    auth.configure_curve(domain="workers", location=workers)
    ok = ask(ctx, curve(z85.decode(public), domain="workers"))
    assert (ok.status_code, ok.user_id) == (200, public.decode())
    assert ask(ctx, curve(z85.decode(stranger), domain="workers")).status_code == 400
    # No configuration for another domain, and none for "*": nobody gets in there.
    assert ask(ctx, curve(z85.decode(public), domain="players")).status_code == 400
    auth.configure_curve(domain="*", location=CURVE_ALLOW_ANY)
    assert ask(ctx, curve(z85.decode(stranger), domain="players")).status_code == 200
    assert ask(ctx, curve(z85.decode(stranger), domain="workers")).status_code == 400


def test_curve_callback(ctx: engine.Context, auth: ThreadAuthenticator) -> None:
    good, _ = engine.curve_keypair()
    seen: list[tuple[str, bytes]] = []

    class Provider:
        def callback(self, domain: str, key: bytes) -> bool:
            seen.append((domain, key))
            return key == good  # handed in Z85, as pyzmq hands it

    auth.configure_curve_callback(domain="*", credentials_provider=Provider())
    assert ask(ctx, curve(z85.decode(good), domain="g")).status_code == 200
    bad, _ = engine.curve_keypair()
    assert ask(ctx, curve(z85.decode(bad), domain="g")).status_code == 400
    assert seen == [("g", good), ("g", bad)]


def test_an_async_curve_callback_is_awaited_by_the_thread(
    ctx: engine.Context, auth: ThreadAuthenticator
) -> None:
    """A provider whose callback is a coroutine, as pyzmq allows: the thread flavour awaits
    it on a loop of its own (the engine took the coroutine object, truthy, for a yes and let
    every key in)."""
    good, _ = engine.curve_keypair()

    class Provider:
        async def callback(self, domain: str, key: bytes) -> bool:
            await asyncio.sleep(0)
            return key == good

    auth.configure_curve_callback(domain="*", credentials_provider=Provider())
    assert ask(ctx, curve(z85.decode(good), domain="g")).status_code == 200
    bad, _ = engine.curve_keypair()
    assert ask(ctx, curve(z85.decode(bad), domain="g")).status_code == 400


def test_an_async_curve_callback_nothing_awaits_lets_no_key_in() -> None:
    """The sans-I/O authenticate() of a bare Authenticator cannot await: refused."""
    good, _ = engine.curve_keypair()

    class Provider:
        async def callback(self, domain: str, key: bytes) -> bool:
            return key == good

    bare = Authenticator()
    bare.configure_curve_callback(domain="*", credentials_provider=Provider())
    assert bare.authenticate(curve(z85.decode(good))).status_code == 400


def test_malformed_request_gets_500(ctx: engine.Context, auth: ThreadAuthenticator) -> None:
    reply = ask(ctx, [b"9.9", b"1", b"", b"", b"", b"NULL"])
    assert reply.status_code == 500
    assert ask(ctx, [b"1.0", b"1", b"", b"", b"", b"GSSAPI", b"x"]).status_code == 400


def test_only_one_handler_per_context(ctx: engine.Context, auth: ThreadAuthenticator) -> None:
    second = ThreadAuthenticator(ctx)
    with pytest.raises(engine.ZMQError):
        second.start()
    assert not second.is_alive()
    auth.stop()
    assert not auth.is_alive()
    second.start()  # the endpoint is free again
    second.configure_plain(passwords={"a": "b"})
    assert ask(ctx, plain(b"a", b"b")).status_code == 200
    second.stop()


def test_asyncio_authenticator() -> None:
    async def main() -> None:
        ctx = engine.asyncio.Context()
        auth = AsyncioAuthenticator(ctx)
        auth.start()
        auth.configure_plain(passwords={"bob": "pw"})
        req = ctx.socket(engine.REQ)
        req.connect(ZAP_ENDPOINT)
        await req.send_multipart(plain(b"bob", b"pw").to_frames())
        reply = ZapReply.from_frames(await asyncio.wait_for(req.recv_multipart(), 5))
        assert (reply.status_code, reply.user_id) == (200, "bob")
        await req.send_multipart(plain(b"bob", b"no").to_frames())
        reply = ZapReply.from_frames(await asyncio.wait_for(req.recv_multipart(), 5))
        assert reply.status_code == 400
        req.close(linger=0)
        auth.stop()
        ctx.destroy(linger=0)

    asyncio.run(main())


@pytest.mark.parametrize("lib_name", ["engine", "zmq"])
def test_a_denial_is_logged_at_debug_as_pyzmq_logs_it(
    lib_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused request leaves a debug record and nothing at INFO or above, on both libraries:
    pyzmq's strawhouse and woodhouse examples print the same lines on the engine (it logged
    each denial at INFO, so they printed one more)."""
    lib = importlib.import_module(lib_name)
    thread_auth = importlib.import_module(f"{lib_name}.auth.thread")
    caplog.set_level(logging.DEBUG)
    context = lib.Context()
    authenticator = thread_auth.ThreadAuthenticator(context)
    authenticator.start()
    try:
        authenticator.configure_plain(domain="*", passwords={"alice": "s3cret"})
        req = context.socket(lib.REQ)
        req.linger = 0
        req.rcvtimeo = 5000
        req.connect("inproc://zeromq.zap.01")
        req.send_multipart([b"1.0", b"1", b"", b"127.0.0.1", b"", b"PLAIN", b"alice", b"guess"])
        reply = req.recv_multipart()
        req.close()
    finally:
        authenticator.stop()
        context.destroy(linger=0)
    assert reply[2] == b"400"
    ours = [r for r in caplog.records if r.name.startswith(f"{lib_name}.auth")]
    assert any(r.levelno == logging.DEBUG and "DENIED" in r.getMessage().upper() for r in ours)
    assert [r.getMessage() for r in ours if r.levelno >= logging.INFO] == []


def test_an_asyncio_authenticator_answers_handshakes_that_come_together() -> None:
    """Eight PLAIN clients of an asyncio server at once: the handler's replies are sent while
    the loop has the other handshakes' work to run, and each must still reach the handshake
    that asked (a change to how such inproc sends wait for the loop left them undeliverable,
    which only the game's own tests caught)."""

    async def main() -> list[bytes]:
        ctx = engine.asyncio.Context()
        auth = AsyncioAuthenticator(ctx)
        auth.start()
        auth.configure_plain(passwords={"bob": "pw"})
        server = ctx.socket(engine.PULL)
        server.plain_server = True
        server.bind("tcp://127.0.0.1:0")
        endpoint = server.getsockopt(engine.LAST_ENDPOINT).decode()
        clients = []
        for number in range(8):
            client = ctx.socket(engine.PUSH)
            client.plain_username, client.plain_password = b"bob", b"pw"
            client.connect(endpoint)
            clients.append((number, client))
        for number, client in clients:
            await client.send(b"%d" % number)
        try:
            return sorted([await asyncio.wait_for(server.recv(), 10) for _ in clients])
        finally:
            auth.stop()
            ctx.destroy(linger=0)

    assert asyncio.run(main()) == sorted(b"%d" % n for n in range(8))


@LIBS
def test_a_thread_authenticator_serves_an_asyncio_context(lib: Any) -> None:
    """ThreadAuthenticator given an asyncio context: its thread answers, and a denied
    address stays out (the engine's thread died making asyncio sockets it cannot wait on,
    and with no handler a NULL client came in)."""
    thread_auth = importlib.import_module(f"{lib.__name__}.auth.thread")
    aio = importlib.import_module(f"{lib.__name__}.asyncio")

    async def run() -> list[bool]:
        ctx = aio.Context()
        authenticator = thread_auth.ThreadAuthenticator(ctx)
        authenticator.start()
        try:
            verdicts = []
            for denied in (False, True):
                if denied:
                    authenticator.deny("127.0.0.1")
                server = ctx.socket(lib.PUSH)
                server.linger = 0
                server.zap_domain = b"global"
                port = server.bind_to_random_port("tcp://127.0.0.1")
                client = ctx.socket(lib.PULL)
                client.linger = 0
                client.connect(f"tcp://127.0.0.1:{port}")
                # A handshake's answer: allowed comes at once; refused, never (500 ms).
                verdicts.append(bool(await server.poll(5000 if not denied else 500, lib.POLLOUT)))
                server.close()
                client.close()
            return verdicts
        finally:
            authenticator.stop()
            ctx.destroy(linger=0)

    assert asyncio.run(run()) == [True, False]


@LIBS
@pytest.mark.parametrize("flavour", ["thread", "asyncio"])
def test_an_async_curve_callback_decides_a_real_handshake(lib: Any, flavour: str) -> None:
    """CURVE clients against a server whose ZAP handler's provider is `async def`: the
    right key connects, another does not (both flavours, both libraries)."""
    aio = importlib.import_module(f"{lib.__name__}.asyncio")
    auth_module = importlib.import_module(f"{lib.__name__}.auth.{flavour}")
    server_public, server_secret = lib.curve_keypair()
    client_public, client_secret = lib.curve_keypair()

    class Provider:
        async def callback(self, domain: str, key: bytes) -> bool:
            await asyncio.sleep(0.01)
            return key == client_public

    async def connects(ctx: Any, public: bytes, secret: bytes) -> bool:
        server = ctx.socket(lib.PUSH)
        server.linger = 0
        server.curve_server = True
        server.curve_publickey, server.curve_secretkey = server_public, server_secret
        port = server.bind_to_random_port("tcp://127.0.0.1")
        client = ctx.socket(lib.PULL)
        client.linger = 0
        client.curve_serverkey = server_public
        client.curve_publickey, client.curve_secretkey = public, secret
        client.connect(f"tcp://127.0.0.1:{port}")
        try:
            # A handshake's answer: allowed comes at once; refused, never (500 ms).
            return bool(await server.poll(500 if public != client_public else 5000, lib.POLLOUT))
        finally:
            server.close()
            client.close()

    async def run() -> list[bool]:
        ctx = aio.Context()
        name = "ThreadAuthenticator" if flavour == "thread" else "AsyncioAuthenticator"
        authenticator = getattr(auth_module, name)(ctx)
        authenticator.start()
        try:
            authenticator.configure_curve_callback(credentials_provider=Provider())
            stranger_public, stranger_secret = lib.curve_keypair()
            return [
                await connects(ctx, client_public, client_secret),
                await connects(ctx, stranger_public, stranger_secret),
            ]
        finally:
            authenticator.stop()
            ctx.destroy(linger=0)

    assert asyncio.run(run()) == [True, False]
