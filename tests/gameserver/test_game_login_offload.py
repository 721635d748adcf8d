"""A worker's logins hash their passwords off its loop (gameserver.jobs.run_login, driven by
gameserver.worker's HashingProcess): the other jobs of a batch are answered at once, the
login when its hashing is done, and the store is only touched on the calling thread."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from functools import partial

from gamekit import FAST_PASSWORDS, Game

from gameserver.jobs import run_jobs
from gameserver.protocol import (
    ActionRequest,
    LoginReply,
    LoginRequest,
    Reply,
    decode_reply,
    encode,
    request_job,
)
from gameserver.service import GameService
from gameserver.worker import HashingProcess


class HeldHashing:
    """An offload that holds each piece of hashing work until the test releases it, and
    runs it on another thread, as the worker's hashing process runs it elsewhere."""

    def __init__(self) -> None:
        self.waiting: asyncio.Queue[tuple[Callable[[], object], asyncio.Future[object]]]
        self.waiting = asyncio.Queue()
        self.threads: set[int] = set()

    async def __call__(self, work: Callable[[], object]) -> object:
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        await self.waiting.put((work, done))
        return await done

    async def release_one(self) -> None:
        work, done = await self.waiting.get()

        def run() -> object:
            self.threads.add(threading.get_ident())
            return work()

        done.set_result(await asyncio.to_thread(run))


def _login_job(name: str) -> list[bytes]:
    return request_job(encode(LoginRequest(name=name, password="pw-1234")))


def test_a_hashing_login_does_not_hold_up_the_batch(service: GameService, game: Game) -> None:
    player = game.login("Ann")
    look = ActionRequest(token=player.token, action_id="ann-look-1", text="look")
    look_job = request_job(encode(look))

    async def scenario() -> None:
        hashing = HeldHashing()
        answers = run_jobs(service, [_login_job("Newcomer"), look_job], offload=hashing)
        login_answer, look_answer = answers
        # The look is answered now, while the login waits for its hashing.
        assert isinstance(look_answer, list)
        assert isinstance(decode_reply(look_answer[0]), Reply)
        assert not isinstance(login_answer, list)
        pending = asyncio.ensure_future(login_answer)
        await asyncio.sleep(0)  # the login reads its account, then asks for a hash
        assert not pending.done()
        await hashing.release_one()
        frames = await asyncio.wait_for(pending, 10)
        reply = decode_reply(frames[0])
        assert isinstance(reply, LoginReply) and reply.created, reply
        assert threading.get_ident() not in hashing.threads  # the hash ran elsewhere

    asyncio.run(scenario())
    # The newcomer's account was written by the store transaction after the hash: it exists.
    assert game.login("Newcomer", "pw-1234").name == "Newcomer"


def test_a_wrong_password_is_refused_after_its_verification(
    service: GameService, game: Game
) -> None:
    game.login("Bea", "right-password")

    async def scenario() -> bytes:
        hashing = HeldHashing()
        job = request_job(encode(LoginRequest(name="Bea", password="wrong-pass")))
        (answer,) = run_jobs(service, [job], offload=hashing)
        assert not isinstance(answer, list)
        pending = asyncio.ensure_future(answer)
        await hashing.release_one()  # the verification
        return (await asyncio.wait_for(pending, 10))[0]

    reply = decode_reply(asyncio.run(scenario()))
    assert getattr(reply, "code", None) == "bad_credentials", reply


def test_the_hashing_process_hashes_elsewhere_and_comes_back_after_a_kill() -> None:
    """The worker's real hashing process: a hash made there verifies here; killed (say, by
    the kernel's OOM killer), the next login gets a new process instead of an error."""

    async def scenario() -> None:
        hashing = HashingProcess()
        try:
            await hashing.start()
            made = await hashing.run(partial(FAST_PASSWORDS.hash, "pw-1234"))
            assert FAST_PASSWORDS.verify("pw-1234", made)  # type: ignore[arg-type]
            pids = hashing.pids()
            assert pids and os.getpid() not in pids
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            again = await asyncio.wait_for(
                hashing.run(partial(FAST_PASSWORDS.verify, "pw-1234", made)), 30
            )
            assert again is True
            assert hashing.pids() and not set(hashing.pids()) & set(pids)
        finally:
            hashing.close()

    asyncio.run(scenario())
