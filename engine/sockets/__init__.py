"""Socket-type semantics: one class per ZeroMQ socket type, over the shared SocketCore."""

from __future__ import annotations

from .. import constants as c
from .base import SocketCore
from .pipeline import PairSocket, PullSocket, PushSocket
from .pubsub import PubSocket, SubSocket, XPubSocket, XSubSocket
from .reqrep import DealerSocket, RepSocket, ReqSocket, RouterSocket

SOCKET_CLASSES: dict[int, type[SocketCore]] = {
    c.PAIR: PairSocket,
    c.PUB: PubSocket,
    c.SUB: SubSocket,
    c.REQ: ReqSocket,
    c.REP: RepSocket,
    c.DEALER: DealerSocket,
    c.ROUTER: RouterSocket,
    c.PULL: PullSocket,
    c.PUSH: PushSocket,
    c.XPUB: XPubSocket,
    c.XSUB: XSubSocket,
}

__all__ = ["SOCKET_CLASSES", "SocketCore"]
