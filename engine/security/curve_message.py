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
from collections.abc import Iterable
from itertools import repeat
from operator import add, itemgetter

from ..constants import ProtocolErrorCode
from .commands import ProtocolError
from .curve_layout import (
    WORKSPACE_SIZE,
    NoncePage,
    cut,
    low_octets,
    nonce_runs,
)
from .curve_layout import workspace as _workspace
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
#: Where a box's tag goes before sealing (libsodium writes it in front of the ciphertext).
_TAG_ROOM = bytes(16)
#: A frame's flags octet by "more frames follow" (False, True).
_FLAGS = (b"\x00", bytes((FLAG_MORE,)))
_LONG_FRAME = struct.Struct(">BQ")
#: The flags octets a sealed frame may carry (none, MORE, COMMAND).
_VALID_FLAGS = bytes((0, FLAG_MORE, FLAG_COMMAND))
#: Batches of one size are sealed by `_seal_uniform` up to this payload size (larger payloads
#: are dominated by the cipher, and one join of them would only cost a copy).
_UNIFORM_LIMIT = 1 << 16
#: The outer frame's own flags (ZMTP): LONG, and COMMAND as RFC 26 would have it.
FRAME_LONG = 0x02
FRAME_COMMAND = 0x04
#: Outer frame header + [7]"MESSAGE" + short nonce, short and long forms.
_SHORT_HEADER = struct.Struct(">BB8sQ")
_LONG_HEADER = struct.Struct(">BQ8sQ")
#: [7]"MESSAGE" and the short nonce, as they open a MESSAGE body.
_MESSAGE_HEADER = struct.Struct(">8sQ")


class CurveCipher:
    """Seals and opens the MESSAGE commands of one connection, in both directions.

    `key` is the precomputed Curve25519 shared key of the two transient key pairs; `sent` and
    `received` are the last short nonces used in each direction during the handshake.

    Cost matters here (one box per frame, unavoidably): a batch of messages is laid out in
    one buffer and every box sealed in place; a run of received frames is copied once and
    every box opened in place, the payloads cut out by struct. Both call libsodium through
    PyNaCl's own cffi handle, with the argument checks PyNaCl would repeat per call done once
    here. At 16 B the call itself (libsodium about 0.5 us, cffi about as much again on this
    machine) is most of what is left; see `curve_layout.Workspace` for the per-frame pointers.
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
        self._send_nonces = NoncePage(send_prefix)
        recv_prefix = CLIENT_PREFIX if as_server else SERVER_PREFIX
        self._recv_nonces = NoncePage(recv_prefix)
        # 24-octet nonces: the fixed prefix, then the short nonce rewritten for every frame.
        self._send_nonce = bytearray(send_prefix + bytes(8))
        self._send_nonce_ptr = ffi.from_buffer(self._send_nonce)
        self._recv_nonce = bytearray(recv_prefix + bytes(8))
        self._recv_nonce_ptr = ffi.from_buffer(self._recv_nonce)
        self._sent = sent
        self._received = received

    # -- sealing ------------------------------------------------------------------------------

    def seal(self, flags: int, payload: bytes, pieces: list[bytes]) -> None:
        """Append one sealed frame (a command, or a frame with explicit flags) to `pieces`."""
        pieces.append(self.seal_messages([[payload]], False, flags))

    def seal_message(self, message: list[bytes]) -> bytearray:
        """`seal_messages([message], False)`: one message's wire form, every frame sealed."""
        if len(message) == 1:
            return self._seal_single(message[0])
        return self._seal_one(message)

    def seal_messages(
        self, messages: list[list[bytes]], subscriptions: bool, forced: int = 0
    ) -> bytearray:
        """The wire form of a batch of messages, every frame sealed, in one buffer.

        With `subscriptions` (SUB/XSUB to a ZMTP 3.1 peer), a one-frame message that starts
        with 0x01 or 0x00 travels as a sealed SUBSCRIBE or CANCEL command, as libzmq sends it.
        `forced` replaces every frame's flags (for commands).
        """
        if len(messages) == 1 and not (subscriptions or forced):
            # One message (a reply, a published event): a shorter path than the batch's.
            message = messages[0]
            if len(message) == 1:
                return self._seal_single(message[0])
            return self._seal_one(message)
        frames = sum(map(len, messages))
        if self._sent + frames > MAX_NONCE:
            raise ProtocolError("CURVE nonces exhausted", ProtocolErrorCode.ZMTP_INVALID_SEQUENCE)
        if frames == len(messages) and not subscriptions and not forced:
            # The common case: one-frame messages, no flags at all.
            flag_list: Iterable[int] = repeat(0)
            payloads = list(map(itemgetter(0), messages))
            if frames > 1:
                size = len(payloads[0])
                if size < _UNIFORM_LIMIT and list(map(len, payloads)).count(size) == frames:
                    return self._seal_uniform(payloads, size)
        else:
            flag_list, payloads = _frames(messages, subscriptions, forced)
        bound = sum(map(len, payloads))
        # Per frame: the longest header and the MESSAGE overhead.
        out = bytearray(bound + frames * (9 + OVERHEAD))
        ptr = self._ffi.from_buffer(out)
        seal_box = self._seal_box
        key = self._key
        nonce = self._send_nonce
        nonce_ptr = self._send_nonce_ptr
        pack_nonce = _U64.pack_into
        short_header = _SHORT_HEADER.pack_into
        long_header = _LONG_HEADER.pack_into
        n = self._sent
        pack_nonce(nonce, 16, n + 1)
        pos = 0
        for flags, payload in zip(flag_list, payloads, strict=False):  # flag_list may repeat
            n += 1
            low = n & 0xFF
            if low:  # the short nonce grows by one: only its last octet changes
                nonce[23] = low
            else:
                pack_nonce(nonce, 16, n)
            mlen = len(payload) + 1
            size = HEADER_SIZE + MAC_SIZE + mlen
            if size < 256:
                short_header(out, pos, 0, size, MESSAGE_PREFIX, n)
                pos += 2 + HEADER_SIZE
            else:
                long_header(out, pos, 0x02, size, MESSAGE_PREFIX, n)
                pos += 9 + HEADER_SIZE
            # The plaintext goes where its ciphertext belongs; libsodium encrypts in place.
            text = pos + MAC_SIZE
            out[text] = flags
            out[text + 1 : text + mlen] = payload
            seal_box(ptr + pos, ptr + text, mlen, nonce_ptr, key)
            pos = text + mlen
        self._sent = n
        self._ffi.release(ptr)  # let go of the buffer so that it can be cut to size
        del out[pos:]
        return out

    def _seal_one(self, frames: list[bytes]) -> bytearray:
        """`seal_messages` for a batch of one message, the usual unit of a reply or of a
        published event.

        The batch path's set-up (flag lists, a bound, the nonce rewritten in place) is most of
        its cost at one message on this machine, about 4.5 us of 11 at one 216-octet frame. Here
        the wire form is laid out by one join, each frame's 24-octet nonce is its prefix plus
        the packed short nonce, and every box is sealed in place: the same bytes.
        """
        n = self._sent
        last = len(frames) - 1
        if n + last + 1 > MAX_NONCE:
            raise ProtocolError("CURVE nonces exhausted", ProtocolErrorCode.ZMTP_INVALID_SEQUENCE)
        pack = _U64.pack
        items: list[bytes] = []
        boxes: list[tuple[int, int, bytes]] = []  # (box offset, plaintext length, short nonce)
        pos = 0
        for i, payload in enumerate(frames):
            n += 1
            mlen = len(payload) + 1
            size = MIN_MESSAGE_SIZE - 1 + mlen
            head = bytes((0, size)) if size < 256 else _LONG_FRAME.pack(FRAME_LONG, size)
            short = pack(n)
            pos += len(head) + HEADER_SIZE
            boxes.append((pos, mlen, short))
            pos += MAC_SIZE + mlen
            # The plaintext (flags octet, payload) sits where its box will begin + MAC_SIZE.
            items += (head, MESSAGE_PREFIX, short, _TAG_ROOM, _FLAGS[i < last], payload)
        out = bytearray().join(items)
        ptr = self._ffi.from_buffer(out)
        try:
            seal_box, key, prefix = self._seal_box, self._key, self._send_nonces.prefix
            for box, mlen, short in boxes:
                if seal_box(ptr + box, ptr + box + MAC_SIZE, mlen, prefix + short, key):
                    raise ProtocolError("CURVE MESSAGE could not be sealed")
        finally:
            self._ffi.release(ptr)
        self._sent = n
        return out

    def _seal_single(self, payload: bytes) -> bytearray:
        """`_seal_one` for a one-frame message (a published event, to each subscriber in
        turn): no per-frame lists or loop, which were a third of its cost at one frame (6.6 ->
        4.4 us at a 110-octet event on this machine). The same bytes."""
        n = self._sent + 1
        if n > MAX_NONCE:
            raise ProtocolError("CURVE nonces exhausted", ProtocolErrorCode.ZMTP_INVALID_SEQUENCE)
        mlen = len(payload) + 1
        size = MIN_MESSAGE_SIZE - 1 + mlen
        short = _U64.pack(n)
        if size < 256:
            head = bytes((0, size))
            box = 2 + HEADER_SIZE
        else:
            head = _LONG_FRAME.pack(FRAME_LONG, size)
            box = 9 + HEADER_SIZE
        # The plaintext (flags octet, payload) sits where its box will begin + MAC_SIZE.
        out = bytearray().join((head, MESSAGE_PREFIX, short, _TAG_ROOM, _FLAGS[0], payload))
        ffi = self._ffi
        ptr = ffi.from_buffer(out)
        failed = self._seal_box(
            ptr + box, ptr + (box + MAC_SIZE), mlen, self._send_nonces.prefix + short, self._key
        )
        ffi.release(ptr)
        if failed:
            raise ProtocolError("CURVE MESSAGE could not be sealed")
        self._sent = n
        return out

    def _seal_uniform(self, payloads: list[bytes], size: int) -> bytearray:
        """`seal_messages` for a batch of one-frame, flagless messages all of one size.

        The whole batch is laid out by one join: per frame its header (with the seven high
        octets of its short nonce, shared by up to 256 frames in a row), its plaintext (flags
        octet, payload) where its box begins, and 16 octets of room. The low nonce octets go in
        by one stepped write. Every frame is then sealed in place (libsodium documents that c
        and m may overlap: it moves the plaintext up and puts the tag before it), in this
        thread's workspace when the batch fits, libsodium called once per frame from C (map):
        the same boxes, the same wire bytes; the nonces are plain bytes.
        """
        count = len(payloads)
        n = self._sent
        first = n + 1
        self._sent = n + count
        mlen = size + 1
        body = HEADER_SIZE + MAC_SIZE + mlen
        frame_head = bytes((0, body)) if body < 256 else _LONG_FRAME.pack(FRAME_LONG, body)
        head = frame_head + MESSAGE_PREFIX
        room = bytes(MAC_SIZE)
        # Join items: lead_0 p_0 room+lead_1 p_1 ... room+lead_last p_last room, each lead being
        # the frame header, the short nonce (low octet zero for now) and a zero flags octet.
        items = [room] * (2 * count + 1)
        items[1::2] = payloads
        nonces: list[bytes] = []
        lows = low_octets(first, count)
        for index, length, high in nonce_runs(first, count):
            items[2 * index : 2 * (index + length) : 2] = [room + head + high + b"\0\0"] * length
            nonces += self._send_nonces.take(high, lows[index], length)
        items[0] = items[0][MAC_SIZE:]
        out = bytearray().join(items)
        box = len(head) + 8
        stride = box + MAC_SIZE + mlen
        end = stride * count
        out[box - 1 : end : stride] = lows
        ffi = self._ffi
        workspace = _workspace
        if end <= WORKSPACE_SIZE and not workspace.busy:
            # Sealed in this thread's workspace, whose box pointers are made once.
            workspace.busy = True
            try:
                work = workspace.buf
                work[:end] = out
                boxes = workspace.boxes(ffi, box, stride, count)
                results = list(
                    map(
                        self._seal_box,
                        boxes,
                        boxes,
                        repeat(mlen, count),
                        nonces,
                        repeat(self._key),
                    )
                )
                out[:] = memoryview(work)[:end]
            finally:
                workspace.busy = False
        else:
            ptr = ffi.from_buffer(out)
            try:
                boxes = list(map(add, repeat(ptr, count), range(box, end, stride)))
                results = list(
                    map(self._seal_box, boxes, boxes, repeat(mlen), nonces, repeat(self._key))
                )
            finally:
                ffi.release(ptr)
        if any(results):
            raise ProtocolError("CURVE MESSAGE could not be sealed")
        return out

    # -- opening ------------------------------------------------------------------------------

    def open_run(
        self, data: bytes, pos: int, max_frames: int, max_size: int
    ) -> tuple[list[bytes], bytes, int, int]:
        """Open up to `max_frames` complete sealed frames of `data` from `pos`.

        Returns (payloads, their flags octets, where it stopped, how many bytes the next frame
        needs from there). ProtocolError for anything not genuinely sealed by the peer.
        """
        end = len(data)
        if end - pos < 2 or max_frames <= 0:
            return [], b"", pos, 2
        payloads: list[bytes] = []
        flag_octets = b""
        # Uniform runs one after the other (a run ends where the size changes, or where the
        # workspace is full); whatever is left goes frame by frame.
        while max_frames > 1:
            run = self._open_uniform(data, pos, max_frames, max_size)
            if run is None:
                break
            payloads += run[0]
            flag_octets += run[1]
            pos = run[2]
            max_frames -= len(run[0])
            if pos == end:
                return payloads, flag_octets, pos, 2
        if not payloads:
            return self._open_frames(data, pos, max_frames, max_size)
        if not max_frames:
            return payloads, flag_octets, pos, 2
        more, more_flags, pos, need = self._open_frames(data, pos, max_frames, max_size)
        return payloads + more, flag_octets + more_flags, pos, need

    def _open_uniform(
        self, data: bytes, pos: int, max_frames: int, max_size: int
    ) -> tuple[list[bytes], bytes, int] | None:
        """The usual run: whole frames of one size, consecutive nonces. Checked for the whole
        run at once (the headers cut out together, the low nonce octets by a stepped slice)
        rather than frame by frame, then opened by libsodium called from C (map). None when the
        run is anything else (or too short to gain): the frame-by-frame path then decides, with
        its own errors.
        """
        if not isinstance(data, (bytes, bytearray)):
            return None  # (a memoryview goes frame by frame)
        end = len(data)
        if end - pos < 2:
            return None
        flags = data[pos]
        if flags & FRAME_LONG:
            if flags & ~(FRAME_LONG | FRAME_COMMAND) or end - pos < 9:
                return None
            (size,) = _U64.unpack_from(data, pos + 1)
            head = 9
        else:
            if flags & ~FRAME_COMMAND:
                return None
            size = data[pos + 1]
            head = 2
        if size < MIN_MESSAGE_SIZE or size > max_size:
            return None
        stride = head + size
        count = min(max_frames, (end - pos) // stride, WORKSPACE_SIZE // stride)
        if count < 2:
            return None
        size_run = count * stride
        stop = pos + size_run
        if data[pos + head : pos + head + 8] != MESSAGE_PREFIX:
            return None
        # Short nonces: exactly the next `count` after the last one received. Their low octets
        # by one stepped slice; everything before them in each frame (frame header,
        # [7]"MESSAGE", the seven high nonce octets) cut out by struct and compared at once.
        received = self._received
        if received + count > MAX_NONCE:
            return None
        first = received + 1
        low_at = head + 15
        lows = low_octets(first, count)
        if data[pos + low_at : stop : stride] != lows:
            return None
        expected: list[bytes] = []
        nonces: list[bytes] = []
        frame_head = data[pos : pos + head] + MESSAGE_PREFIX
        for index, length, high in nonce_runs(first, count):
            expected += [frame_head + high] * length
            nonces += self._recv_nonces.take(high, lows[index], length)
        if cut(data, pos, count, 0, low_at, stride - low_at) != expected:
            return None
        clen = size - HEADER_SIZE
        mlen = clen - MAC_SIZE
        workspace = _workspace
        if workspace.busy:
            return None  # (a finalizer sealing or opening inside a call that uses it)
        workspace.busy = True
        try:
            # Opened in place in this thread's workspace (libsodium documents that m and c may
            # overlap): each plaintext lands where its box began, over the tag.
            work = workspace.buf
            work[:size_run] = memoryview(data)[pos:stop]
            box = head + HEADER_SIZE
            boxes = workspace.boxes(self._ffi, box, stride, count)
            results = list(
                map(self._open_box, boxes, boxes, repeat(clen, count), nonces, repeat(self._key))
            )
            if any(results):
                self._received = received + results.index(next(filter(None, results)))
                raise ProtocolError(
                    "CURVE MESSAGE box does not open", ProtocolErrorCode.ZMTP_CRYPTOGRAPHIC
                )
            flag_octets = bytes(work[box:size_run:stride])
            if flag_octets.translate(None, _VALID_FLAGS):
                # Frame by frame from here: it stops at the first frame with invalid flags.
                return None
            self._received = received + count
            # Each payload follows its flags octet; 16 octets of ciphertext stay behind it.
            return cut(work, 0, count, box + 1, mlen - 1, MAC_SIZE), flag_octets, stop
        finally:
            workspace.busy = False

    def _open_frames(
        self, data: bytes, pos: int, max_frames: int, max_size: int
    ) -> tuple[list[bytes], bytes, int, int]:
        """`open_run` frame by frame: any run, with the exact error for whatever is wrong."""
        end = len(data)
        if end - pos < 2 or max_frames <= 0:
            return [], b"", pos, 2
        # No more frames than whole MESSAGEs could fit (but one, to report what is wrong).
        count = min(max_frames, max(1, (end - pos) // MIN_MESSAGE_SIZE))
        ffi = self._ffi
        data_ptr = ffi.from_buffer(data)
        plain = bytearray(end - pos)  # the plaintexts are shorter than what holds them
        plain_ptr = ffi.from_buffer(plain)
        open_box = self._open_box
        key = self._key
        nonce = self._recv_nonce
        nonce_ptr = self._recv_nonce_ptr
        pack_nonce = _U64.pack_into
        read_header = _MESSAGE_HEADER.unpack_from
        received = self._received
        pack_nonce(nonce, 16, received)
        cuts = [0] * (count + 1)  # payload i is plain[cuts[i] + 1 : cuts[i + 1]]
        flag_octets = bytearray(count)
        opened = 0
        used = 0
        need = 2
        while opened < count:
            avail = end - pos
            if avail < 2:
                break
            flags = data[pos]
            if flags & FRAME_LONG:
                if avail < 9:
                    need = 9
                    break
                (size,) = _U64.unpack_from(data, pos + 1)
                start = pos + 9
            else:
                size = data[pos + 1]
                start = pos + 2
            if flags & ~(FRAME_LONG | FRAME_COMMAND):
                raise ProtocolError(
                    "a sealed frame carries MORE or reserved flags outside its box",
                    ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_MESSAGE,
                )
            if size > max_size:
                raise ProtocolError("message larger than the maximum message size")
            stop = start + size
            if stop > end:
                need = stop - pos
                break
            if size < MIN_MESSAGE_SIZE:
                if data[start : start + 8] != MESSAGE_PREFIX:
                    raise ProtocolError(
                        "expected a CURVE MESSAGE", ProtocolErrorCode.ZMTP_UNEXPECTED_COMMAND
                    )
                raise ProtocolError(
                    "CURVE MESSAGE too short", ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_MESSAGE
                )
            prefix, short = read_header(data, start)
            if prefix != MESSAGE_PREFIX:
                raise ProtocolError(
                    "expected a CURVE MESSAGE", ProtocolErrorCode.ZMTP_UNEXPECTED_COMMAND
                )
            if short <= received:
                raise ProtocolError(
                    "CURVE MESSAGE nonce did not increase (replay?)",
                    ProtocolErrorCode.ZMTP_INVALID_SEQUENCE,
                )
            if short == received + 1 and short & 0xFF:
                nonce[23] = short & 0xFF  # the usual step: only the last octet changes
            else:
                pack_nonce(nonce, 16, short)
            clen = size - HEADER_SIZE
            if open_box(plain_ptr + used, data_ptr + (start + HEADER_SIZE), clen, nonce_ptr, key):
                raise ProtocolError(
                    "CURVE MESSAGE box does not open", ProtocolErrorCode.ZMTP_CRYPTOGRAPHIC
                )
            received = short
            sealed_flags = plain[used]
            if sealed_flags & RESERVED_FLAGS or sealed_flags == FLAG_MORE | FLAG_COMMAND:
                self._received = received
                raise ProtocolError(
                    "CURVE MESSAGE has invalid flags",
                    ProtocolErrorCode.ZMTP_MALFORMED_COMMAND_MESSAGE,
                )
            flag_octets[opened] = sealed_flags
            used += clen - MAC_SIZE
            opened += 1
            cuts[opened] = used
            pos = stop
        self._received = received
        ffi.release(data_ptr)
        if not opened:
            return [], b"", pos, need
        blob = bytes(memoryview(plain)[:used])  # one copy; each payload is a slice of it
        return (
            [blob[cuts[i] + 1 : cuts[i + 1]] for i in range(opened)],
            bytes(flag_octets[:opened]),
            pos,
            need,
        )


def _frames(
    messages: list[list[bytes]], subscriptions: bool, forced: int
) -> tuple[list[int], list[bytes]]:
    """Flags and payload of every frame: MORE inside a multipart message, and subscriptions
    (0x01/0x00 one-frame messages of SUB/XSUB) turned into SUBSCRIBE/CANCEL commands."""
    flags: list[int] = []
    payloads: list[bytes] = []
    for msg in messages:
        last = len(msg) - 1
        for i, payload in enumerate(msg):
            flag = forced or (FLAG_MORE if i < last else 0)
            if subscriptions and not last and payload[:1] in (b"\x00", b"\x01"):
                name = b"\x09SUBSCRIBE" if payload[0] == 1 else b"\x06CANCEL"
                payload = name + payload[1:]
                flag = FLAG_COMMAND
            flags.append(flag)
            payloads.append(payload)
    return flags, payloads
