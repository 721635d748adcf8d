"""SCATTER, GATHER and CHANNEL: the thread-safe, single-frame forms of PUSH, PULL and PAIR.

SCATTER load-balances to the peers with room and blocks when none has; GATHER fair-queues what
its peers send; CHANNEL has exactly one peer. Each is its classic counterpart's routing under
ThreadSafeSocket's lock, with multipart messages received dropped whole (libzmq).
"""

from __future__ import annotations

from .. import constants as c
from ..pipe import Message
from .pipeline import PairSocket, PullSocket, PushSocket
from .threadsafe import ThreadSafeSocket, single_frames


class ScatterSocket(ThreadSafeSocket, PushSocket):
    socket_type = c.SCATTER


class GatherSocket(ThreadSafeSocket, PullSocket):
    socket_type = c.GATHER

    def _recv(self) -> Message | None:
        return single_frames(self.inbox)


class ChannelSocket(ThreadSafeSocket, PairSocket):
    socket_type = c.CHANNEL

    def _recv(self) -> Message | None:
        return single_frames(self.inbox)
