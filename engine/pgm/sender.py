"""A PGM source, sans I/O: messages in, packets for the multicast group out, repair on request.

What OpenPGM does for a libzmq PUB, as far as the wire shows:

- On start, three SPMs announce the source (its TSI, its window, its address for NAKs).
- Messages are framed (`framing.pack_apdus`) into APDUs that each fit one ODATA packet, sent at
  most at `rate` bytes per second (IP and UDP headers included), each numbered in sequence.
- The last `window_sqns` packets stay in the transmit window. A NAK for one of them (sent to
  this source's address) is answered at once with an NCF to the group, and the packet is sent
  again as RDATA (also rate limited, ahead of new data). A NAK for a packet already gone from
  the window is ignored: receivers learn from the trailing edge in every packet and SPM that it
  cannot be repaired, and report the loss.
- After data, "heartbeat" SPMs follow at growing intervals so receivers notice a lost last
  packet; with nothing to send, an "ambient" SPM goes out every `ambient_interval` seconds.
- An SPM request is answered with an SPM.

The caller feeds packets received (`packet_received`), time (`handle_timer`), and messages
(`send`); it takes `datagrams` (all for the group) and sleeps until `next_timer`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from . import packets as wire
from .framing import ApduWriter

#: OpenPGM's heartbeat SPM schedule as libzmq configures it: seconds after the last data packet.
HEARTBEAT_SCHEDULE = (0.1, 0.1, 0.1, 0.1, 1.3, 7.0, 16.0, 25.0, 30.0)
#: libzmq's ambient SPM interval: seconds between SPMs when nothing else happens.
AMBIENT_INTERVAL = 30.0
#: SPMs sent when the source starts and when it closes (with OPT_FIN), as OpenPGM does.
ANNOUNCE_COUNT = 3
#: PGM header plus the data header (sequence, trail): per-packet cost on top of the APDU.
DATA_OVERHEAD = wire.HEADER_SIZE + wire.DATA_HEADER.size
#: The rate limiter lets this many seconds of rate through in one burst (but always one packet).
BURST_SECONDS = 0.01


def max_apdu(max_tpdu: int, ip_overhead: int) -> int:
    """Largest APDU that fits one packet of `max_tpdu` bytes (IP header included), as OpenPGM's
    PGM_MSS: minus the IP (and, for epgm, UDP) header and the PGM data headers."""
    size = max_tpdu - ip_overhead - DATA_OVERHEAD
    if size < 3:
        raise ValueError(f"a TPDU of {max_tpdu} bytes leaves no room for data")
    return size


def window_sqns(rate_kbit: int, recovery_ivl_ms: int, max_tpdu: int) -> int:
    """Packets in a window that holds `recovery_ivl` of traffic at `rate` (libzmq's
    compute_sqns: kilobits per second are bytes per millisecond over 8); at least one."""
    return max(1, (rate_kbit // 8) * recovery_ivl_ms // max_tpdu)


@dataclass(slots=True)
class SenderConfig:
    gsi: bytes
    #: This source's port (the TSI's second half); the data port is the endpoint's port.
    source_port: int
    data_port: int
    #: The address receivers send NAKs to (this host's address on the multicast interface).
    nla: str
    group: str
    #: Largest packet, IP header included (MULTICAST_MAXTPDU, 1500 by default).
    max_tpdu: int
    #: IP header, plus the UDP header for epgm: counted by the rate limit and the TPDU size.
    ip_overhead: int
    #: Bytes per second, all data packets and their headers included (RATE is in kbit/s).
    rate: float
    window_sqns: int
    heartbeat_schedule: Sequence[float] = HEARTBEAT_SCHEDULE
    ambient_interval: float = AMBIENT_INTERVAL
    #: Sequence of the first data packet (OpenPGM starts at 0; RFC 3208 allows any).
    initial_sqn: int = 0


@dataclass(slots=True)
class SenderStats:
    odata: int = 0
    rdata: int = 0
    spm: int = 0
    ncf: int = 0
    naks: int = 0
    #: NAKs for packets no longer in the window (the receivers will report a gap).
    naks_too_late: int = 0
    #: Packets dropped: malformed, or not meant for this source.
    dropped: int = 0


class PgmSender:
    """One PGM source's state: transmit window, rate limit, SPM timers, pending repairs."""

    def __init__(self, config: SenderConfig, now: float) -> None:
        self.config = config
        self.stats = SenderStats()
        self.apdu_max = max_apdu(config.max_tpdu, config.ip_overhead)
        # Nothing sent yet: the window is empty, its lead one before the first sequence (for
        # OpenPGM, lead -1 and trail 0).
        self._lead = (config.initial_sqn - 1) & wire.SQN_MASK
        self._window: deque[tuple[int, bytes]] = deque()  # (sqn, APDU), oldest first
        self._stream = ApduWriter(self.apdu_max)  # framed messages not yet cut into packets
        self._repairs: deque[int] = deque()  # sqns to resend, in NAK order
        self._repair_set: set[int] = set()
        self._out: list[bytes] = []
        self._spm_sqn = 0
        self._tokens = float(self._packet_cost(self.apdu_max))
        self._tokens_at = now
        self._heartbeat_index = len(config.heartbeat_schedule)  # no heartbeat before data
        self._next_heartbeat: float | None = None
        self._next_ambient = now + config.ambient_interval
        self._closed = False
        for _ in range(ANNOUNCE_COUNT):
            self._send_spm()

    # -- window --------------------------------------------------------------------------------

    @property
    def trail(self) -> int:
        """Oldest sequence still in the window (lead + 1 when it is empty)."""
        return self._window[0][0] if self._window else (self._lead + 1) & wire.SQN_MASK

    @property
    def lead(self) -> int:
        return self._lead

    @property
    def pending_bytes(self) -> int:
        """Framed bytes accepted by `send` and not yet on the wire (for a send high-water mark)."""
        return self._stream.pending

    # -- inputs --------------------------------------------------------------------------------

    def send(self, frames: Sequence[bytes]) -> None:
        """Queue one (multipart) message; it goes out as the rate allows, via `handle_timer`."""
        if self._closed:
            raise RuntimeError("the PGM source is closed")
        self._stream.write(frames)

    def packet_received(self, packet: bytes, now: float) -> None:
        """A packet that arrived on the source's socket (NAKs, SPMRs; anything else is dropped)."""
        try:
            parsed = wire.parse(packet)
        except wire.MalformedPacket:
            self.stats.dropped += 1
            return
        cfg = self.config
        if isinstance(parsed, wire.Nak) and parsed.kind == wire.NAK:
            if not self._for_me(parsed.gsi, parsed.source_port, parsed.data_port):
                return
            if parsed.source_nla != cfg.nla or parsed.group_nla != cfg.group:
                self.stats.dropped += 1  # a NAK for another address of ours, or another group
                return
            self._on_nak(parsed.sqns)
        elif isinstance(parsed, wire.Spmr):
            if self._for_me(parsed.gsi, parsed.source_port, parsed.data_port):
                self._send_spm()
        else:
            # Our own multicast (loopback off is not universal), other sources' traffic:
            # nothing for a source to do.
            self.stats.dropped += 1

    def _for_me(self, gsi: bytes, source_port: int, data_port: int) -> bool:
        cfg = self.config
        if gsi == cfg.gsi and source_port == cfg.source_port and data_port == cfg.data_port:
            return True
        self.stats.dropped += 1
        return False

    def _on_nak(self, sqns: tuple[int, ...]) -> None:
        self.stats.naks += 1
        trail, size = self.trail, len(self._window)
        repairable = [s for s in sqns if (s - trail) & wire.SQN_MASK < size]
        self.stats.naks_too_late += len(sqns) - len(repairable)
        if not repairable:
            return
        cfg = self.config
        self._out.append(
            wire.build_nak(
                wire.NCF,
                cfg.gsi,
                cfg.source_port,
                cfg.data_port,
                tuple(repairable),
                cfg.nla,
                cfg.group,
            )
        )
        self.stats.ncf += 1
        for sqn in repairable:
            if sqn not in self._repair_set:
                self._repair_set.add(sqn)
                self._repairs.append(sqn)

    # -- outputs -------------------------------------------------------------------------------

    def datagrams(self) -> list[bytes]:
        """Packets to send to the group now, in order; the list is handed over."""
        out, self._out = self._out, []
        return out

    def handle_timer(self, now: float) -> None:
        """Send what the rate allows (repairs first), and any SPM that is due."""
        self._refill(now)
        sent_data = False
        while self._repairs and self._take_tokens(self._repair_cost()):
            sqn = self._repairs.popleft()
            self._repair_set.discard(sqn)
            apdu = self._in_window(sqn)
            if apdu is not None:
                cfg = self.config
                self._out.append(
                    wire.build_data(
                        cfg.gsi, cfg.source_port, cfg.data_port, sqn, self.trail, apdu, repair=True
                    )
                )
                self.stats.rdata += 1
                sent_data = True
        while self._stream.pending and not self._repairs:
            if not self._take_tokens(self._packet_cost(self._stream.next_size())):
                break
            self._send_odata(self._stream.cut())
            sent_data = True
        if sent_data:
            self._heartbeat_index = 0
            self._next_heartbeat = now + self.config.heartbeat_schedule[0]
        elif self._next_heartbeat is not None and now >= self._next_heartbeat:
            self._send_spm()
            self._heartbeat_index += 1
            if self._heartbeat_index < len(self.config.heartbeat_schedule):
                self._next_heartbeat = now + self.config.heartbeat_schedule[self._heartbeat_index]
            else:
                self._next_heartbeat = None
        if now >= self._next_ambient:
            self._send_spm()
        if sent_data or self._out:
            self._next_ambient = now + self.config.ambient_interval

    def next_timer(self, now: float) -> float | None:
        """When `handle_timer` next has something to do (None: only an input can wake it)."""
        due = self._next_ambient
        if self._next_heartbeat is not None:
            due = min(due, self._next_heartbeat)
        if self._repairs or self._stream.pending:
            if self._repairs:
                cost = self._repair_cost()
            else:
                cost = self._packet_cost(self._stream.next_size())
            self._refill(now)
            wait = max(0.0, (cost - self._tokens) / self.config.rate)
            due = min(due, now + wait)
        return due

    def close(self) -> None:
        """Announce the end of the session (three SPMs with OPT_FIN); data still queued is
        dropped, as libzmq does when the socket closes without linger."""
        if self._closed:
            return
        self._closed = True
        self._stream.clear()
        for _ in range(ANNOUNCE_COUNT):
            self._send_spm(fin=True)

    # -- helpers -------------------------------------------------------------------------------

    def _packet_cost(self, apdu_size: int) -> int:
        return apdu_size + DATA_OVERHEAD + self.config.ip_overhead

    def _repair_cost(self) -> int:
        apdu = self._in_window(self._repairs[0])
        return self._packet_cost(len(apdu) if apdu is not None else 0)

    def _refill(self, now: float) -> None:
        rate = self.config.rate
        cap = max(rate * BURST_SECONDS, float(self._packet_cost(self.apdu_max)))
        self._tokens = min(cap, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now

    def _take_tokens(self, cost: int) -> bool:
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True

    def _in_window(self, sqn: int) -> bytes | None:
        if not self._window:
            return None
        index = (sqn - self._window[0][0]) & wire.SQN_MASK
        return self._window[index][1] if index < len(self._window) else None

    def _send_odata(self, apdu: bytes) -> None:
        cfg = self.config
        self._lead = (self._lead + 1) & wire.SQN_MASK
        self._window.append((self._lead, apdu))
        if len(self._window) > cfg.window_sqns:
            self._window.popleft()
        self._out.append(
            wire.build_data(cfg.gsi, cfg.source_port, cfg.data_port, self._lead, self.trail, apdu)
        )
        self.stats.odata += 1

    def _send_spm(self, fin: bool = False) -> None:
        cfg = self.config
        self._out.append(
            wire.build_spm(
                cfg.gsi,
                cfg.source_port,
                cfg.data_port,
                self._spm_sqn,
                self.trail,
                self._lead,
                cfg.nla,
                fin,
            )
        )
        self._spm_sqn = (self._spm_sqn + 1) & wire.SQN_MASK
        self.stats.spm += 1
