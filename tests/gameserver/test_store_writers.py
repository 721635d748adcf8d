"""SQLite's writer queue (a flock beside the database) and its background checkpoints."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gameserver.store import StoreBusy, Tx
from gameserver.store.sqlite_backend import WRITER_LOCK_SUFFIX, SqliteStore
from gameserver.store.sqlite_writers import Checkpointer, WriterBusy, WriterQueue

WAIT_S = 10.0  # a bound for events that happen at once when things work


def test_a_waiting_writer_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    path = str(tmp_path / "q")
    holder, waiter = WriterQueue(path), WriterQueue(path)
    holder.acquire(1.0)
    got = threading.Event()
    thread = threading.Thread(target=lambda: (waiter.acquire(WAIT_S), got.set()))
    thread.start()
    assert not got.wait(0.2)  # still held
    holder.release()
    assert got.wait(WAIT_S)
    thread.join()
    with pytest.raises(WriterBusy):  # now the other one holds it
        holder.acquire(0.05)
    waiter.release()
    holder.acquire(1.0)
    holder.close()
    waiter.close()


def test_a_grant_that_comes_after_its_waiter_gave_up_is_handed_back(tmp_path: Path) -> None:
    path = str(tmp_path / "q")
    holder, late = WriterQueue(path), WriterQueue(path)
    holder.acquire(1.0)
    with pytest.raises(WriterBusy):
        late.acquire(0.05)  # its helper thread still waits in flock
    holder.release()
    # The helper's late grant is released, not kept: both can take turns again.
    late.acquire(WAIT_S)
    with pytest.raises(WriterBusy):
        holder.acquire(0.05)
    late.release()
    holder.acquire(WAIT_S)
    holder.release()
    holder.close()
    late.close()


def test_the_lock_of_a_killed_process_is_freed(tmp_path: Path) -> None:
    path = str(tmp_path / "q")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from gameserver.store.sqlite_writers import WriterQueue\n"
            f"WriterQueue({path!r}).acquire(5.0)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        queue = WriterQueue(path)
        with pytest.raises(WriterBusy):
            queue.acquire(0.05)
        child.kill()  # SIGKILL: the kernel drops its flock
        child.wait()
        queue.acquire(WAIT_S)
        queue.close()
    finally:
        child.kill()
        child.wait()


def test_a_store_queues_its_writes_and_frees_the_queue_after_each(tmp_path: Path) -> None:
    db = str(tmp_path / "game.db")
    store = SqliteStore(db, busy_timeout=0.2)
    outsider = WriterQueue(db + WRITER_LOCK_SUFFIX)

    def write(tx: Tx) -> None:
        tx.put("doc", "a", 1)

    store.transaction(write)
    with store.batch():
        store.transaction(write)
    with pytest.raises(ZeroDivisionError):
        store.transaction(lambda tx: (tx.put("doc", "b", 2), 1 / 0))
    outsider.acquire(0.5)  # free after a commit, a batch and a rollback
    with pytest.raises(StoreBusy):  # a writer waits for the queue, then gives up
        store.transaction(write)
    outsider.release()
    store.transaction(write)
    assert store.read(lambda tx: tx.get("doc", "b")) is None
    outsider.close()
    store.close()


def _noting_each_checkpoint(checkpoints: Checkpointer) -> threading.Event:
    """An Event set after each of `checkpoints`' checkpoints (the real one runs first)."""
    done = threading.Event()
    original = checkpoints._checkpoint

    def noted(conn: object) -> None:
        original(conn)  # type: ignore[arg-type]
        done.set()

    checkpoints._checkpoint = noted  # type: ignore[method-assign]
    return done


def test_commits_are_checkpointed_in_the_background(tmp_path: Path) -> None:
    db = str(tmp_path / "game.db")
    store = SqliteStore(db)
    checkpoints = Checkpointer(db, commits=3, interval=WAIT_S)
    done = _noting_each_checkpoint(checkpoints)
    for n in range(3):
        store.transaction(lambda tx, n=n: tx.put("doc", str(n), n))
        checkpoints.committed()
    assert done.wait(WAIT_S)  # after 3 commits, long before the interval
    assert checkpoints.checkpoints == 1
    checkpoints.close()
    store.close()


def _context_switches(thread: threading.Thread) -> int:
    """How many times `thread` has gone to sleep and been woken (the kernel's count)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])


def test_one_commit_is_checkpointed_within_the_interval_and_then_the_thread_sleeps(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "game.db")
    store = SqliteStore(db)
    interval = 0.02
    checkpoints = Checkpointer(db, commits=1_000, interval=interval)
    done = _noting_each_checkpoint(checkpoints)
    store.transaction(lambda tx: tx.put("doc", "a", 1))
    checkpoints.committed()
    assert done.wait(WAIT_S)  # one commit, far below `commits`: the interval ends the wait
    assert checkpoints.checkpoints == 1
    before = _context_switches(checkpoints._thread)
    # Proving an absence takes time: 25 intervals, in which a thread with a timer would
    # have woken 25 times.
    threading.Event().wait(25 * interval)
    assert _context_switches(checkpoints._thread) - before <= 1
    assert checkpoints.checkpoints == 1
    checkpoints.close()
    assert not checkpoints._thread.is_alive()
    store.close()


def test_a_queue_that_cannot_lock_leaves_the_store_to_sqlites_own_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import os

    store = SqliteStore(str(tmp_path / "game.db"))
    assert store._writers is not None
    real_fd = store._writers._fd
    # No such descriptor: flock fails with a real EBADF, as it may on a file system without it.
    store._writers._fd = 1_000_000
    store.transaction(lambda tx: tx.put("doc", "a", 1))
    assert store._writers is None
    assert "no writer queue" in caplog.text
    assert store.read(lambda tx: tx.get("doc", "a")) == 1
    store.close()
    os.close(real_fd)
