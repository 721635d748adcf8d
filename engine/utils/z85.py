"""pyzmq's `zmq.utils.z85`: `encode` and `decode` (ZeroMQ RFC 32; the codec is
engine.security.z85)."""

from __future__ import annotations

from ..security.z85 import decode, encode

__all__ = ["decode", "encode"]
