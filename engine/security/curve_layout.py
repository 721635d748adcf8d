"""The buffers and nonces CURVE's batches are laid out in (curve_message.py seals and opens them).

Sealing or opening a batch frame by frame from Python costs more than libsodium does at small
sizes, so a batch is laid out once: in a per-thread workspace whose box pointers are made once
per layout, with nonces taken as slices of a page of 256 made at once, and payloads cut out of a
buffer by one struct call per run instead of a slice each.
"""

from __future__ import annotations

import functools
import struct
import threading
from itertools import repeat
from operator import add
from typing import Any

_U64 = struct.Struct(">Q")


#: Every octet value in order, twice: the low nonce octets of up to 256 frames are a slice.
OCTETS_TWICE = bytes(range(256)) * 2


def low_octets(first: int, count: int) -> bytes:
    """The low octets of the short nonces first, first + 1, ... (`count` of them)."""
    low = first & 0xFF
    if low + count <= len(OCTETS_TWICE):
        return OCTETS_TWICE[low : low + count]
    return (OCTETS_TWICE * (1 + count // 256))[low : low + count]


def nonce_runs(first: int, count: int) -> list[tuple[int, int, bytes]]:
    """The short nonces first .. first + count - 1 as runs that share their seven high octets:
    (index of the run's first nonce, its length, those seven octets)."""
    runs = []
    index = 0
    while index < count:
        nonce = first + index
        length = min(count - index, 256 - (nonce & 0xFF))
        runs.append((index, length, _U64.pack(nonce)[:7]))
        index += length
    return runs


#: The size of each thread's workspace: a batch that fits is sealed or opened there.
WORKSPACE_SIZE = 1 << 16
#: Frame layouts (box offset, stride) whose pointers a workspace keeps at once.
WORKSPACE_LAYOUTS = 4


class Workspace(threading.local):
    """One thread's buffer for sealing or opening a batch in place, with the cffi pointer to
    each frame's box made once per layout and kept: a new cffi object per frame costs about a
    third of the cipher's own time at 16 B (about 160 ns here). Per thread, so that the I/O
    thread and user threads never share one; a batch is copied in and out within one call."""

    def __init__(self) -> None:
        self.buf = bytearray(WORKSPACE_SIZE)
        #: In use by a call on this thread. A second use while it is (only a finalizer run by
        #: the garbage collector inside that call could do it) takes the path without it.
        self.busy = False
        self._base: Any = None
        self._boxes: dict[tuple[int, int], list[Any]] = {}

    def boxes(self, ffi: Any, box: int, stride: int, count: int) -> list[Any]:
        """Pointers to (at least) the first `count` boxes: the first at `box`, one every
        `stride` octets."""
        if self._base is None:
            # Held for the thread's life, which pins the buffer: it is never resized, only
            # written in place, so every pointer into it stays valid.
            self._base = ffi.from_buffer(self.buf)
        key = (box, stride)
        boxes = self._boxes.get(key)
        if boxes is None:
            if len(self._boxes) >= WORKSPACE_LAYOUTS:
                self._boxes.clear()
            boxes = self._boxes[key] = []
        made = len(boxes)
        if made < count:
            start = box + made * stride
            boxes += map(add, repeat(self._base), range(start, box + count * stride, stride))
        return boxes


workspace = Workspace()


class NoncePage:
    """The 24-octet box nonces of one direction that share the seven high octets of their
    short nonce (256 of them), as bytes objects, made once per 256 frames: a run of frames
    takes a slice. libsodium takes bytes as they are, where a pointer into one buffer would
    cost a cffi object per frame."""

    __slots__ = ("_high", "_nonces", "prefix")

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self._high = b""
        self._nonces: tuple[bytes, ...] = ()

    def take(self, high: bytes, low: int, count: int) -> tuple[bytes, ...]:
        if high != self._high:
            page = bytearray(self.prefix + high + b"\0") * 256
            page[23::24] = OCTETS_TWICE[:256]
            self._nonces = tuple(cut(page, 0, 256, 0, 24, 0))
            self._high = high
        return self._nonces[low : low + count]


#: `_cut` takes at most this many records per struct call: one format for the full runs and
#: one for the rest keep the cached formats few and small.
CUT_CHUNK = 128


@functools.lru_cache(maxsize=512)
def cutter(skip: int, size: int, tail: int, count: int) -> struct.Struct:
    """A struct that reads `count` records of `skip` ignored octets, `size` kept, `tail` ignored."""
    record = (f"{skip}x" if skip else "") + f"{size}s" + (f"{tail}x" if tail else "")
    return struct.Struct("<" + record * count)


def cut(
    buf: bytes | bytearray, pos: int, count: int, skip: int, size: int, tail: int
) -> list[bytes]:
    """`count` pieces of `buf` from `pos`, every record of `skip` + `size` + `tail` octets giving
    its `size` middle octets, as bytes: struct makes them all in C (a slice per piece from
    Python costs about ten times as much)."""
    if count <= CUT_CHUNK:
        return list(cutter(skip, size, tail, count).unpack_from(buf, pos))
    stride = skip + size + tail
    full, rest = divmod(count, CUT_CHUNK)
    unpack_full = cutter(skip, size, tail, CUT_CHUNK).unpack_from
    pieces: list[bytes] = []
    for _ in range(full):
        pieces += unpack_full(buf, pos)
        pos += CUT_CHUNK * stride
    if rest:
        pieces += cutter(skip, size, tail, rest).unpack_from(buf, pos)
    return pieces
