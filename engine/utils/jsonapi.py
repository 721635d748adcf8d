"""JSON as bytes, as pyzmq's zmq.utils.jsonapi: what send_json and recv_json carry."""

from __future__ import annotations

import json
from typing import Any

#: The JSON module in use, a name pyzmq keeps for code that reads it (the standard one).
jsonmod = json


def dumps(obj: Any, **kwargs: Any) -> bytes:
    """`obj` as UTF-8 JSON; keyword arguments go to json.dumps."""
    return json.dumps(obj, **kwargs).encode("utf-8")


def loads(data: bytes | str, **kwargs: Any) -> Any:
    """The object UTF-8 JSON (bytes or text) holds; keyword arguments go to json.loads."""
    return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data, **kwargs)


__all__ = ["dumps", "loads"]
