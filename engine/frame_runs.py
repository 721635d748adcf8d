"""Runs of equal frames: a stream of same-sized one-frame messages, split in C.

A sender of fixed records (ticks, samples, a benchmark's messages) puts hundreds of frames of
one size back to back in one read. Decoded frame by frame, each costs a dozen Python steps;
found as a run, the whole run is checked by a few strided slices and cut in a few calls.
This module knows only the frame layout of RFC 23: a short frame is a flags octet and a size
octet, a long one a flags octet and an 8-octet size, then the body. The codec (zmtp) decides
when to look for a run.
"""

from __future__ import annotations

import struct

#: Header length of a short frame (flags, 1-octet size) and of a long one (flags, 8-octet size).
SHORT_HEADER = 2
LONG_HEADER = 9
#: Equal frames a run probe looks at first; each further probe looks at twice as many.
RUN_PROBE = 8
#: A run of short frames is cut by struct formats of this many records, and of the powers of
#: two below it for the rest: at most 7 compiled formats per size, made on first use, so at
#: most 1,792 in all. Long frames have no such cache (a peer could name any of millions of
#: sizes); their bodies are sliced, which at their size costs little more.
RUN_CHUNK = 64
_run_formats: dict[tuple[int, int], struct.Struct] = {}
#: One octet of a header, by value (a one-octet bytes for lstrip).
_OCTET = [bytes((n,)) for n in range(256)]


def _run_format(size: int, count: int) -> struct.Struct:
    """`count` records of a short frame of `size` octets: its two header octets, then the body."""
    fmt = _run_formats.get((size, count))
    if fmt is None:
        fmt = _run_formats[size, count] = struct.Struct("<" + f"2x{size}s" * count)
    return fmt


def equal_frames(data: bytes, pos: int, header: bytes, size: int, most: int) -> int:
    """How many frames with exactly this `header` and a `size`-octet body start at `pos` back
    to back (at most `most`, which the caller makes sure fit in `data`). Each probe compares
    every header octet of its frames by one strided slice, and probes double in length, so a
    run costs a few C-level scans and a mismatch little."""
    stride = len(header) + size
    octets = [(i, _OCTET[header[i]]) for i in range(len(header))]
    n = 0
    width = RUN_PROBE
    while n < most:
        if width > most - n:
            width = most - n
        start = pos + n * stride
        stop = start + width * stride
        # lstrip leaves what follows the first frame whose octet differs: the frames after
        # the run's end.
        left = 0
        for i, octet in octets:
            differ = len(data[start + i : stop : stride].lstrip(octet))
            if differ > left:
                left = differ
        good = width - left
        n += good
        if good < width:
            break
        width *= 2
    return n


def split_run(data: bytes, pos: int, size: int, count: int) -> list[bytes]:
    """The bodies of `count` short frames of `size` octets at `pos` (as equal_frames found
    them): cut in C by struct formats, a few calls per run instead of a Python step per frame."""
    stride = SHORT_HEADER + size
    bodies: list[bytes] = []
    whole = count - count % RUN_CHUNK
    if whole:
        chunks = _run_format(size, RUN_CHUNK).iter_unpack(
            memoryview(data)[pos : pos + whole * stride]
        )
        for chunk in chunks:
            bodies += chunk
        pos += whole * stride
    rest = count - whole
    step = RUN_CHUNK // 2
    while rest:
        if rest >= step:
            bodies += _run_format(size, step).unpack_from(data, pos)
            pos += step * stride
            rest -= step
        step //= 2
    return bodies


def slice_run(data: bytes, pos: int, header_len: int, size: int, count: int) -> list[bytes]:
    """The bodies of `count` frames of `size` octets behind `header_len`-octet headers at
    `pos`, sliced (long frames: no format cache to grow)."""
    stride = header_len + size
    start = pos + header_len
    return [data[i : i + size] for i in range(start, start + count * stride, stride)]
