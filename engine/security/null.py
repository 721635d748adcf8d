"""The NULL mechanism (RFC 23/37): each side sends READY with its metadata; no security.

With a ZAP_DOMAIN set, libzmq asks the ZAP handler before sending READY (so a handler can still
allow or deny by address), and so does this one.
"""

from __future__ import annotations

from enum import Enum

from ..constants import ProtocolErrorCode
from .commands import decode_properties
from .mechanism import Mechanism


class NullState(Enum):
    STARTING = "starting"
    WAITING_FOR_ZAP = "waiting for zap"
    READY_SENT = "ready sent"


class NullMechanism(Mechanism):
    name = b"NULL"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state = NullState.STARTING
        self._metadata = b""
        self._ready_received = False

    def start(self, metadata: bytes) -> None:
        self._metadata = metadata
        if self.zap.domain:
            self._ask_zap(b"NULL", ())
            self.state = NullState.WAITING_FOR_ZAP
        else:
            self._send_ready()

    def command_received(self, name: bytes, rest: bytes) -> None:
        if name != b"READY" or self._ready_received:
            self._refuse(
                "expected READY",
                f"expected READY, got {name!r}",
                ProtocolErrorCode.ZMTP_UNEXPECTED_COMMAND,
            )
        self._ready_received = True
        self.peer_properties = decode_properties(rest)
        self._check_complete()

    def _zap_passed(self) -> None:
        self._send_ready()

    def _send_ready(self) -> None:
        self._send(b"READY", self._metadata)
        self.state = NullState.READY_SENT
        self._check_complete()

    def _check_complete(self) -> None:
        self.complete = self._ready_received and self.state is NullState.READY_SENT
