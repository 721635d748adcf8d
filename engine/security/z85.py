"""Z85 (ZeroMQ RFC 32): binary as printable text, 4 octets to 5 characters.

CURVE keys travel in configuration files and on command lines as 40-character Z85 strings.
pyzmq's `zmq.utils.z85` names: `encode` and `decode` (exported by the engine as `z85_encode` and
`z85_decode`).
"""

from __future__ import annotations

import struct

ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_DIGIT = {char: value for value, char in enumerate(ALPHABET)}
_POWERS = (85**4, 85**3, 85**2, 85, 1)
_MAX_GROUP = 0xFFFFFFFF


def encode(data: bytes | bytearray | memoryview) -> bytes:
    """Z85 text of `data`, whose length must be a multiple of 4."""
    raw = bytes(data)
    if len(raw) % 4:
        raise ValueError(f"Z85 encodes a multiple of 4 bytes, not {len(raw)}")
    out = bytearray()
    for (value,) in struct.iter_unpack(">I", raw):
        for power in _POWERS:
            out.append(ALPHABET[value // power % 85])
    return bytes(out)


def decode(text: str | bytes) -> bytes:
    """The bytes behind Z85 `text`, whose length must be a multiple of 5."""
    if isinstance(text, str):
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("Z85 text must be ASCII") from None
    else:
        raw = bytes(text)
    if len(raw) % 5:
        raise ValueError(f"Z85 decodes a multiple of 5 characters, not {len(raw)}")
    out = bytearray()
    for start in range(0, len(raw), 5):
        value = 0
        for char in raw[start : start + 5]:
            digit = _DIGIT.get(char)
            if digit is None:
                raise ValueError(f"{chr(char)!r} is not a Z85 character")
            value = value * 85 + digit
        if value > _MAX_GROUP:
            raise ValueError("Z85 group is larger than 32 bits")
        out += value.to_bytes(4, "big")
    return bytes(out)
