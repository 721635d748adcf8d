"""Hostile input at the front's action port (raw engine sockets, Hypothesis): the server stays
up, other players are unaffected, and nobody can act as or read for another player."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverkit import WAIT, Server

import engine
from gameserver.broadcast import NOTICE_TYPE, wire_topic
from gameserver.front import PING_BODY
from gameserver.protocol import CatchupReply, ErrorReply, LoginReply, Reply, decode_reply
from gameserver.topics import private_topic

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run
    suppress_health_check=[HealthCheck.too_slow],
)


class World:
    """The server, two honest players, and Eve: a player who also sends raw garbage."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.context = server.client_context()
        self.alice = server.sync_session()
        self.bob = server.sync_session()
        self.alice.login("Alice", "alice-password")
        self.bob.login("Bob", "bob-password")
        eve = server.sync_session()
        self.eve_token = eve.login("Eve", "eve-password").token
        eve.close()
        # Eve listens to everything the broadcast carries: every prefix matches b"".
        self.spy = self.context.socket(engine.SUB)
        self.spy.subscribe(b"")
        self.spy.connect(server.updates)

    def raw(self, frames: list[bytes], expect_reply: bool = True) -> list[bytes] | None:
        """Send frames on a fresh DEALER; the reply frames (None if none came)."""
        sock = self.context.socket(engine.DEALER)
        sock.linger = 0
        sock.connect(self.server.actions)
        try:
            sock.send_multipart(frames)
            if not sock.poll((WAIT if expect_reply else 1.0) * 1000):
                return None
            return sock.recv_multipart()
        finally:
            sock.close(linger=0)

    def request(self, obj: Any) -> Any:
        # json, not orjson: it also writes integers beyond 64 bits, which the server must refuse.
        reply = self.raw([b"", obj if isinstance(obj, bytes) else json.dumps(obj).encode()])
        assert reply is not None, f"no reply to {obj!r}"
        assert reply[0] == b""
        if orjson.loads(reply[1]).get("type") == "pong":
            return "pong"  # the fuzzer found the health check: fine
        return decode_reply(reply[1])

    def close(self) -> None:
        for session in (self.alice, self.bob):
            session.close()
        self.context.destroy(linger=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = tmp_path_factory.mktemp("hostile")
    server = Server(f"sqlite:///{path / 'game.db'}", path / "serve.log", 2)
    try:
        w = World(server)
        yield w
        w.close()
    finally:
        server.kill_all()


def test_the_front_answers_garbage_frames(world: World) -> None:
    @FUZZ
    @given(st.lists(st.binary(max_size=600), min_size=1, max_size=5))
    def check(frames: list[bytes]) -> None:
        reply = world.raw(frames)
        assert reply is not None, f"no reply to {frames!r}"
        answer = decode_reply(reply[-1])
        assert isinstance(answer, ErrorReply)
        assert answer.code in ("bad_request", "unsupported_version", "too_large")

    check()
    assert_healthy(world)


TOKENS = st.sampled_from(["guess", "bob-topic", "eve", "random", "alice-mangled"])
TEXT = st.text(max_size=60) | st.sampled_from(["say hi", "quit", "give lamp to Bob", "take lamp"])


@st.composite
def hostile_requests(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "v": draw(st.sampled_from([1, 1, 1, 2, "1", True, None])),
        "type": draw(st.sampled_from(["action", "catchup", "resume", "login", "ping", "x"])),
    }
    for key, value in (
        ("token", TOKENS),
        ("action_id", st.text(max_size=70) | st.just("a-1")),
        ("text", TEXT),
        ("topic", st.sampled_from(["world", "room.crossroads", "bob-private", "priv.x"])),
        ("since_seq", st.integers(min_value=-5, max_value=2**63)),
        ("name", st.sampled_from(["Bob", "Alice", "x", "Mallory"]) | st.text(max_size=25)),
        ("password", st.text(max_size=20)),
        ("extra", st.integers()),
    ):
        if draw(st.booleans()):
            obj[key] = draw(value)
    return obj


def test_hostile_requests_never_cross_players(world: World) -> None:
    bob_topic = world.bob.session.private_topic
    alice_token = world.alice.session.token
    assert bob_topic is not None and alice_token is not None
    tokens = {
        "guess": "A" * 43,
        "bob-topic": bob_topic,  # the public-looking name is no credential
        "eve": world.eve_token,
        "alice-mangled": alice_token[:-1] + ("A" if alice_token[-1] != "A" else "B"),
    }

    @FUZZ
    @given(hostile_requests())
    def check(obj: dict[str, Any]) -> None:
        if obj.get("token") == "random":
            obj["token"] = secrets.token_urlsafe(32)
        elif "token" in obj:
            obj["token"] = tokens[obj["token"]]
        if obj.get("topic") == "bob-private":
            obj["topic"] = bob_topic
        answer = world.request(obj)
        if isinstance(answer, LoginReply):
            assert answer.player not in ("Alice", "Bob")  # only fresh names register
        elif isinstance(answer, CatchupReply):
            assert obj["token"] == world.eve_token and answer.topic != bob_topic
        elif isinstance(answer, Reply):
            assert obj["token"] == world.eve_token  # only Eve's own token acts, as Eve
        else:
            assert isinstance(answer, ErrorReply) or answer == "pong"

    check()
    assert_healthy(world)


def test_oversized_messages(world: World) -> None:
    big = orjson.dumps({"v": 1, "type": "action", "token": "t" * 20, "text": "x" * 5000})
    req = world.context.socket(engine.REQ)  # a plain REQ peer works too
    req.linger = 0
    req.connect(world.server.actions)
    req.send(big)
    assert req.poll(WAIT * 1000)
    answer = decode_reply(req.recv())
    req.close(linger=0)
    assert isinstance(answer, ErrorReply) and answer.code == "too_large"
    # Beyond MAXMSGSIZE the engine drops that connection: no reply, and nobody else notices.
    assert world.raw([b"", b"x" * 100_000], expect_reply=False) is None
    assert_healthy(world)


def test_private_messages_stay_private(world: World) -> None:
    bob_topic = world.bob.session.private_topic
    assert bob_topic is not None
    # The name is a one-way hash of a random token: nothing public leads to it.
    assert bob_topic not in {private_topic("Bob"), private_topic("bob"), private_topic("")}
    eve_catchup = {"v": 1, "type": "catchup", "token": world.eve_token, "topic": bob_topic}
    answer = world.request({**eve_catchup, "since_seq": 0})
    assert isinstance(answer, ErrorReply) and answer.code in ("forbidden", "unauthorized")

    secret = "the password is swordfish"
    assert world.alice.act(f"whisper Bob {secret}").ok
    heard = world.bob.wait_for(lambda e: e.kind == "whisper", WAIT)
    assert secret in heard.text
    # Eve subscribed to every topic, yet the whisper's content never crossed the broadcast:
    # only a content-free notice on Bob's private topic did.
    world.alice.act("say over and out")  # published after the whisper's notice
    seen: list[list[bytes]] = []
    while not any(b"over and out" in m[-1] for m in seen):
        assert world.spy.poll(WAIT * 1000), "the spy stopped receiving"
        seen.append(world.spy.recv_multipart())
    assert not any(secret.encode() in frame for msg in seen for frame in msg)
    prefix = wire_topic(bob_topic)
    private = [m[0].removeprefix(prefix) for m in seen if m[0].startswith(prefix)]
    assert private and all(orjson.loads(p)["type"] == NOTICE_TYPE for p in private)


def assert_healthy(world: World) -> None:
    """The server is up and honest players play on as if nothing happened."""
    assert world.server.process.poll() is None
    pong = world.raw([b"", PING_BODY])
    assert pong is not None and orjson.loads(pong[1])["workers"] >= 1
    mark = f"still here {secrets.token_hex(4)}"
    assert world.alice.act(f"say {mark}").ok
    world.bob.wait_for(lambda e: e.kind == "say" and mark in e.text, WAIT)
