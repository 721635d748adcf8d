"""Two helpers that keep SQLite's writers moving when several processes share one database.

:class:`WriterQueue`: SQLite lets one writer at a time hold a WAL database's write lock, and a
writer that finds it taken runs the busy handler, which *sleeps* 1, 2, 5, 10... ms before it
looks again. Two busy workers handing the lock back and forth lost about 10 % of their time in
those naps, waking late after the other had long finished. Here every writer first takes an
exclusive ``flock`` on a file beside the database: the kernel queues the waiters and wakes one
the moment the holder lets go, and the kernel drops the lock of a process that dies (``kill
-9`` included), so a dead writer never blocks the others. SQLite's own lock stays the authority:
a writer that does not use the queue (an older version, the ``sqlite3`` shell) is still kept
out by it, and the busy handler still bounds the wait.

:class:`Checkpointer`: in WAL mode the log is copied back into the database and synced at a
checkpoint, which SQLite runs by itself inside the commit that makes the log long enough (a
20-30 ms stall of that worker's event loop, every few hundred commits). The store turns that off
(``wal_autocheckpoint = 0``) and a thread with its own connection runs a PASSIVE checkpoint
(never waiting for a lock, never in a writer's way) every ``commits`` commits, or ``interval``
seconds after the first commit not yet checkpointed; the sqlite3 module lets go of the GIL
meanwhile. With nothing committed the thread sleeps without a timer.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time

log = logging.getLogger(__name__)

#: Commits between background checkpoints (SQLite's own default is about 1,000 pages of log,
#: which a game's small commits reach after a few hundred).
CHECKPOINT_EVERY_COMMITS = 200
#: A commit is checkpointed at most this long after it was made, however few commits follow.
CHECKPOINT_INTERVAL_S = 1.0


class WriterBusy(Exception):
    """The queue's lock was not free within the timeout."""


class WriterQueue:
    """A cross-process FIFO-ish lock around write transactions (``flock`` on ``path``).

    ``acquire(timeout)`` / ``release()``; not re-entrant, one holder per object. The
    uncontended case is one non-blocking ``flock`` call. A contended one waits in a helper
    thread (``flock`` has no timeout of its own), so the wait can end at the timeout: a lock
    that arrives after its waiter gave up is released at once.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = self._open()
        self.held = False

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self, timeout: float) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._wait(timeout)
        self.held = True

    def _wait(self, timeout: float) -> None:
        fd = self._fd
        granted = threading.Event()
        decided = threading.Lock()  # the grant and the giving up do not cross
        abandoned = False

        def take() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel wakes us at the release
            with decided:
                if abandoned:
                    os.close(fd)  # too late: closing the description releases the lock
                else:
                    granted.set()

        threading.Thread(target=take, name="sqlite-writer-queue", daemon=True).start()
        if granted.wait(timeout):
            return
        with decided:
            if granted.is_set():  # granted between the timeout and now: keep it
                return
            abandoned = True
            # The waiter keeps the old description (a flock belongs to it, whichever
            # thread asked): later acquires use a fresh one, which its late grant cannot touch.
            self._fd = self._open()
        raise WriterBusy(f"another writer held {self.path} for {timeout:.0f}s")

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        # Quietly: the descriptor may be the one that failed already (sqlite_backend).
        with contextlib.suppress(OSError):
            self.release()
        with contextlib.suppress(OSError):
            os.close(self._fd)


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` off the writers' thread; ``committed()`` after
    each write commit, ``close()`` at the end."""

    def __init__(
        self,
        path: str,
        *,
        commits: int = CHECKPOINT_EVERY_COMMITS,
        interval: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self.path = path
        self.commits = commits
        self.interval = interval
        self._pending = 0
        self._wake = threading.Event()
        self._stopping = False
        self.checkpoints = 0  # completed, for tests and curiosity
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        # Called on the writer's thread after each commit: a counter and, rarely, an Event
        # (the first commit since a checkpoint wakes the idle thread, the `commits`th ends
        # its wait early).
        self._pending += 1
        if self._pending == 1 or self._pending >= self.commits:
            self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                # Cleared before `_pending` is read, so a commit after the read wakes the wait.
                self._wake.clear()
                if self._stopping:
                    break
                pending = self._pending
                if not pending:
                    # Nothing to checkpoint: no timer, so an idle server's thread sleeps until
                    # the next commit (it used to wake every `interval` to find nothing).
                    self._wake.wait()
                    continue
                if pending < self.commits:
                    self._wake.wait(self.interval)  # let more commits join this checkpoint
                self._pending = 0  # a commit racing this line is caught next time
                self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # a busy or failing disk: the next one tries again
            log.warning("background checkpoint of %s failed: %s", self.path, exc)
            time.sleep(self.interval)

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)
