"""The CURVE MESSAGE command (RFC 26): every ZMTP frame of the traffic phase, sealed.

    MESSAGE = [7]"MESSAGE" short-nonce(8) Box[flags(1) payload](sender' -> recipient')

The box nonce is a 16-octet prefix ("CurveZMQMESSAGEC" from the client, "...S" from the server)
plus the 8-octet short nonce, a counter that must grow with every command in each direction; a
receiver refuses a nonce that does not (a replay). The flags octet says MORE (bit 0) and, as
libzmq uses it, COMMAND (bit 1): PING, PONG, SUBSCRIBE and CANCEL travel sealed as commands.
Other bits are reserved and must be zero.

On the wire libzmq sends each MESSAGE as an ordinary frame (no COMMAND or MORE flag on the outer
frame; the real flags are inside the box), and accepts either; we do the same.
"""

from __future__ import annotations

import struct

from ..constants import ProtocolErrorCode
from .commands import ProtocolError
from .keys import sodium_cffi

MESSAGE_PREFIX = b"\x07MESSAGE"
#: [7]"MESSAGE" plus the short nonce.
HEADER_SIZE = len(MESSAGE_PREFIX) + 8
#: Poly1305 tag: each box is this much larger than what it holds.
MAC_SIZE = 16
#: The smallest valid MESSAGE: header, tag, flags octet (RFC 26: "at least 33 octets").
MIN_MESSAGE_SIZE = HEADER_SIZE + MAC_SIZE + 1
#: Everything a sealed frame adds to its payload (checked against MAXMSGSIZE by the codec).
OVERHEAD = MIN_MESSAGE_SIZE

FLAG_MORE = 0x01
FLAG_COMMAND = 0x02
RESERVED_FLAGS = 0xFC
#: RFC 26: no more than 2^64 - 1 commands in one direction of one connection.
MAX_NONCE = (1 << 64) - 1

CLIENT_PREFIX = b"CurveZMQMESSAGEC"
SERVER_PREFIX = b"CurveZMQMESSAGES"

_U64 = struct.Struct(">Q")
_LONG = struct.Struct(">BQ")
#: Frames up to this size decrypt into one reused buffer; larger ones get their own.
OPEN_BUFFER = 64 * 1024


class CurveCipher:
    """Seals and opens the MESSAGE commands of one connection, in both directions.

    `key` is the precomputed Curve25519 shared key of the two transient key pairs; `sent` and
    `received` are the last short nonces used in each direction during the handshake.

    Cost matters here (one box per frame): the sealing of a batch writes every frame straight
    into one preallocated buffer, encrypting each payload in place, and opening decrypts into
    a reused buffer. Both call libsodium through PyNaCl's own cffi handle, which skips PyNaCl's
    per-call argument checks (done once here) and allocations.
    """

    def __init__(self, key: bytes, *, as_server: bool, sent: int, received: int) -> None:
        ffi, lib = sodium_cffi()
        if len(key) != 32:
            raise ValueError("a CURVE shared key is 32 bytes")
        self._ffi = ffi
        self._seal_box = lib.crypto_box_easy_afternm
        self._open_box = lib.crypto_box_open_easy_afternm
        self._key = key
        send_prefix = SERVER_PREFIX if as_server else CLIENT_PREFIX
        recv_prefix = CLIENT_PREFIX if as_server else SERVER_PREFIX
        # 24-octet nonces: the fixed prefix, then the short nonce rewritten for every frame.
        self._send_nonce = bytearray(send_prefix + bytes(8))
        self._send_nonce_ptr = ffi.from_buffer(self._send_nonce)
        self._recv_nonce = bytearray(recv_prefix + bytes(8))
        self._recv_nonce_ptr = ffi.from_buffer(self._recv_nonce)
        self._sent = sent
        self._received = received
        self._plain = bytearray(OPEN_BUFFER)
        self._plain_ptr = ffi.from_buffer(self._plain)
        self._plain_view = memoryview(self._plain)
        self._data: bytes | None = None  # the read buffer `_data_ptr` points into
        self._data_ptr = None

    def seal(self, flags: int, payload: bytes, pieces: list[bytes]) -> None:
        """Append one sealed frame to `pieces`."""
        pieces.append(self.seal_frames([(flags, payload)]))

    def seal_frames(self, items: list[tuple[int, bytes]]) -> bytearray:
        """The wire form of a batch of frames, each (flags, payload), in one buffer."""
        total = 0
        for _, payload in items:
            size = MIN_MESSAGE_SIZE + len(payload)
            total += size + (2 if size < 256 else 9)
        last = self._sent + len(items)
        if last > MAX_NONCE:
            raise ProtocolError("CURVE nonces exhausted", ProtocolErrorCode.ZMTP_INVALID_SEQUENCE)
        out = bytearray(total)
        ptr = self._ffi.from_buffer(out)
        seal_box = self._seal_box
        nonce = self._send_nonce
        nonce_ptr = self._send_nonce_ptr
        key = self._key
        pack_u64 = _U64.pack_into
        n = self._sent
        pos = 0
        for flags, payload in items:
            n += 1
            mlen = 1 + len(payload)
            size = HEADER_SIZE + MAC_SIZE + mlen
            if size < 256:
                out[pos + 1] = size
                pos += 2
            else:
                _LONG.pack_into(out, pos, 0x02, size)
                pos += 9
            out[pos : pos + 8] = MESSAGE_PREFIX
            pack_u64(out, pos + 8, n)
            pack_u64(nonce, 16, n)
            # The plaintext goes where its ciphertext belongs; libsodium encrypts in place.
            text = pos + HEADER_SIZE + MAC_SIZE
            out[text] = flags
            out[text + 1 : text + mlen] = payload
            seal_box(ptr + (pos + HEADER_SIZE), ptr + text, mlen, nonce_ptr, key)
            pos = text + mlen
        self._sent = n
        return out

    def open(self, data: bytes, start: int, stop: int) -> tuple[int, bytes]:
        """(flags, payload) of the MESSAGE in data[start:stop]; ProtocolError if not genuine."""
        if data[start : start + 8] != MESSAGE_PREFIX:
            raise ProtocolError(
                "expected a CURVE MESSAGE", ProtocolErrorCode.ZMTP_UNEXPECTED_COMMAND
            )
        size = stop - start
        if size < MIN_MESSAGE_SIZE:
            raise ProtocolError(
                "CURVE MESSAGE too short", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_MESSAGE
            )
        (nonce,) = _U64.unpack_from(data, start + 8)
        if nonce <= self._received:
            raise ProtocolError(
                "CURVE MESSAGE nonce did not increase (replay?)",
                ProtocolErrorCode.ZMTP_INVALID_SEQUENCE,
            )
        if data is not self._data:
            self._data = data
            self._data_ptr = self._ffi.from_buffer(data)
        self._recv_nonce[16:24] = data[start + 8 : start + 16]
        clen = size - HEADER_SIZE
        mlen = clen - MAC_SIZE
        if mlen <= OPEN_BUFFER:
            plain, plain_ptr, view = self._plain, self._plain_ptr, self._plain_view
        else:  # a large frame gets a buffer of its own
            plain = bytearray(mlen)
            plain_ptr = self._ffi.from_buffer(plain)
            view = memoryview(plain)
        if self._open_box(
            plain_ptr, self._data_ptr + (start + HEADER_SIZE), clen, self._recv_nonce_ptr, self._key
        ):
            raise ProtocolError(
                "CURVE MESSAGE box does not open", ProtocolErrorCode.ZMTP_CRYPTOGRAPHIC
            )
        self._received = nonce
        flags = plain[0]
        if flags & RESERVED_FLAGS or flags == FLAG_MORE | FLAG_COMMAND:
            raise ProtocolError(
                "CURVE MESSAGE has invalid flags", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_MESSAGE
            )
        return flags, bytes(view[1:mlen])

    def release(self) -> None:
        """Drop the reference to the last read buffer (call when a read is fully decoded)."""
        self._data = None
        self._data_ptr = None
