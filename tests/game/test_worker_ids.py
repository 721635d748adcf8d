"""Worker routing ids are unique per process, wherever the process runs.

Under Docker every container's worker has the same name and the same pid (6-8). The id was name
plus pid, so the front refused all but one of them, and the others only got in once reconnects
happened to give them different ids. Two workers in one process share name and pid just the
same, so here both must be taken on their first connection.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

from serverkit import WAIT, Server, StartServer, run

import engine.asyncio as ezmq
from engine.patterns.lazy_pirate import RequestFailed
from gameserver.cluster_keys import worker_credentials
from gameserver.settings import Settings
from gameserver.worker import GameWorker, open_service, routing_name


def test_routing_names_differ_per_call_and_name_host_and_pid() -> None:
    first, second = routing_name("w"), routing_name("w")
    assert first != second
    name, host, pid, suffix = first.split(".")
    assert (name, pid) == ("w", str(os.getpid()))
    assert host == socket.gethostname().split(".")[0][:32]
    assert len(bytes.fromhex(suffix)) >= 6


async def _workers_seen(server: Server) -> int:
    try:
        pong = await asyncio.to_thread(server.ping, 2.0)
    except RequestFailed:
        return -1
    return int(pong["workers"])


def test_workers_with_the_same_name_and_pid_are_all_taken_at_first_connect(
    start_server: StartServer, sqlite_url: str
) -> None:
    server = start_server(sqlite_url, 0)
    backend = server.wait_for(r"^workers (\S+)")[1]

    async def scenario() -> list[int]:
        context = ezmq.Context()
        # The keys the front made on its first start, as `crossroads worker` finds them.
        worker_credentials(context, Settings(keys_dir=server.log_path.parent / "keys"))
        services = [await asyncio.to_thread(open_service, sqlite_url, None) for _ in range(2)]
        workers = [GameWorker(backend, s, name="w", context=context) for s in services]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            deadline = time.monotonic() + WAIT
            while await _workers_seen(server) < 2:
                assert time.monotonic() < deadline, "the front never took both workers"
                await asyncio.sleep(0.05)  # polling pace; the deadline bounds the wait
            return [w.pirate.core.generation for w in workers]
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*tasks)
            context.destroy(linger=0)
            for service in services:
                service.close()

    # One connection each: neither was refused as a duplicate and had to come back.
    assert run(scenario(), timeout=WAIT * 2) == [1, 1]
