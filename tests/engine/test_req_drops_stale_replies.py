"""A REQ drops whatever has arrived and is unread when it sends a new request, as libzmq's
does, so a reply that came after the REQ stopped waiting for it never passes for the next
request's reply.

With REQ_RELAXED a REQ may ask again before its reply comes; when both replies then come, the
first is taken as the answer and the second waits in the queue. The engine handed that stale
second reply to the next request's recv().
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS

pytestmark = pytest.mark.timeout(60)


def _recv_or_nothing(sock: Any, lib: Any, ms: int) -> bytes | None:
    sock.setsockopt(lib.RCVTIMEO, ms)
    try:
        return sock.recv()
    except lib.Again:
        return None


@LIBS
def test_a_late_reply_is_not_the_next_requests(lib: Any) -> None:
    # inproc: a message sent is in its peer's queue when send() returns, in libzmq and here,
    # so the late reply has surely come when the next request goes.
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.bind("inproc://stale-replies")
        req = ctx.socket(lib.REQ)
        req.setsockopt(lib.REQ_RELAXED, 1)
        req.connect("inproc://stale-replies")

        req.send(b"first")
        first = router.recv_multipart()
        req.send(b"second")  # relaxed: asks again without the first reply
        second = router.recv_multipart()
        router.send_multipart([*first[:-1], b"reply to first"])
        router.send_multipart([*second[:-1], b"reply to second"])
        assert _recv_or_nothing(req, lib, WAIT_MS) == b"reply to first"  # (no REQ_CORRELATE)

        req.send(b"third")  # the reply to "second" is queued, unread, and now stale
        third = router.recv_multipart()
        assert _recv_or_nothing(req, lib, 200) is None
        router.send_multipart([*third[:-1], b"reply to third"])
        assert _recv_or_nothing(req, lib, WAIT_MS) == b"reply to third"
    finally:
        ctx.destroy(0)
