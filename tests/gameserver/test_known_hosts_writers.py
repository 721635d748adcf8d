"""Writers of one known-hosts file at the same time: none fails, no entry is lost.

A load test's Locust workers each learn the front's key on their first player and remember
it in the same file; with one shared temporary name, one writer's rename took the file from
under the other ("cannot remember ...: No such file or directory"), and a read-add-replace
racing another could drop the entry the other had just added.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from gameserver.known_hosts import KnownHosts

WRITERS = 8
ENDPOINTS_EACH = 25
KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


def test_concurrent_writers_keep_every_entry_and_log_no_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "known_hosts"
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        hosts = KnownHosts(path)  # each its own handle, as each process has
        start.wait()
        for i in range(ENDPOINTS_EACH):
            hosts.remember(f"tcp://10.0.{n}.{i}:7301", KEY)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    with caplog.at_level(logging.WARNING, logger="gameserver.known_hosts"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert [r.getMessage() for r in caplog.records] == []
    hosts = KnownHosts(path).load()
    assert len(hosts) == WRITERS * ENDPOINTS_EACH
    assert set(hosts.values()) == {KEY}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known_hosts", "known_hosts.lock"]
