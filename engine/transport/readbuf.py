"""One read buffer per thread, kept: stream sockets read into it and copy out what came.

`sock.recv(READ_SIZE)` allocates READ_SIZE bytes for every read and shrinks them to what
arrived. At 256 KiB glibc serves that block with mmap, shrinks it with mremap and frees it with
munmap: three system calls and a page fault per read, about 18 µs of a 16-byte read on the
2-core machine this was measured on (against 3.5 µs with this buffer). A request/reply round
trip pays it on both sides. Reading into a buffer that stays mapped costs one copy of the bytes
that arrived instead.

A buffer is used only between the read into it and that copy, with no switch of thread or
greenlet in between (the sockets read are native, even under gevent), so one per OS thread is
enough whatever the number of connections or greenlets. The thread-local is the native one:
gevent's would give every greenlet (a Locust user) a buffer of its own.
"""

from __future__ import annotations

import socket

from ..native import native_thread_local

#: Most bytes one read takes: thousands of short messages, or 64 of 1 KiB, per read and so
#: per wake-up. Not more: every full read is copied into a bytes object of its size, and at
#: 256 KiB glibc gave those blocks back to the system and took them again on nearly every
#: read (brk, then page faults on the fresh pages): 3,588 brk calls in 300,000 messages of
#: 1 KiB, and 1.0-1.2 µs of system time per message against 0.2-0.45 µs at 64 KiB. 64 KiB
#: stays below glibc's default mmap and trim thresholds (128 KiB) even where they never
#: adapt; 128 KiB did as well only once glibc had raised them.
READ_SIZE = 64 * 1024

_buffers = native_thread_local()


def read_buffer() -> memoryview:
    """This OS thread's read buffer (READ_SIZE bytes), made on its first read."""
    try:
        return _buffers.view
    except AttributeError:
        view = _buffers.view = memoryview(bytearray(READ_SIZE))
        return view


def recv_bytes(sock: socket.socket) -> bytes:
    """One read of `sock` (b"": end of stream); raises as sock.recv does."""
    view = read_buffer()
    return view[: sock.recv_into(view)].tobytes()
