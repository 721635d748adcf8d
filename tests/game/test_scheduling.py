"""`crossroads serve` puts its front and its workers under Linux's SCHED_BATCH (the woken
process does not preempt the one that woke it: gameserver/scheduling.py), and
`--no-sched-batch` leaves them under the default policy. Read from the kernel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serverkit import StartServer

pytestmark = pytest.mark.skipif(
    not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is a Linux scheduling policy"
)


@pytest.mark.parametrize(
    ("flags", "policy"),
    [((), "SCHED_BATCH"), (("--no-sched-batch",), "SCHED_OTHER")],
    ids=["default", "no-sched-batch"],
)
def test_the_front_and_its_workers_run_under_the_chosen_policy(
    start_server: StartServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: tuple[str, ...],
    policy: str,
) -> None:
    monkeypatch.delenv("CROSSROADS_SCHED_BATCH", raising=False)
    server = start_server(f"sqlite:///{tmp_path}/game.sqlite3", 2, *flags)
    assert server.ping()["workers"] == 2  # both workers started and said READY
    assert len(server.worker_pids) == 2
    for pid in [server.process.pid, *server.worker_pids]:
        assert os.sched_getscheduler(pid) == getattr(os, policy), pid
