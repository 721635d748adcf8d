"""Socket-type semantics: one class per ZeroMQ socket type, over the shared SocketCore."""

from __future__ import annotations

from .. import constants as c
from .base import SocketCore
from .client_server import ClientSocket, PeerSocket, ServerSocket
from .dgram import DgramSocket
from .pipeline import PairSocket, PullSocket, PushSocket
from .pubsub import PubSocket, SubSocket, XPubSocket, XSubSocket
from .radio_dish import DishSocket, RadioSocket
from .raw_stream import StreamSocket
from .reqrep import DealerSocket, RepSocket, ReqSocket, RouterSocket
from .scatter_gather import ChannelSocket, GatherSocket, ScatterSocket

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
    c.STREAM: StreamSocket,
    c.SERVER: ServerSocket,
    c.CLIENT: ClientSocket,
    c.RADIO: RadioSocket,
    c.DISH: DishSocket,
    c.GATHER: GatherSocket,
    c.SCATTER: ScatterSocket,
    c.DGRAM: DgramSocket,
    c.PEER: PeerSocket,
    c.CHANNEL: ChannelSocket,
}

__all__ = ["SOCKET_CLASSES", "SocketCore"]
