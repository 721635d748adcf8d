"""A PGM receiver, sans I/O: packets from the group in, whole messages (or a gap) out.

One receive window per source (a source is a TSI: the GSI and source port of a publisher):

- Data is delivered in sequence order. A packet that arrives after a hole leaves a *missing*
  slot for each sequence skipped.
- A missing slot waits a random back-off (so that of many receivers one NAKs and the source's
  NCF, multicast to all, silences the rest), then a NAK goes unicast to the address the
  source's SPM gave. Without an NCF in `nak_repeat_ivl` it backs off and NAKs again; after an
  NCF it waits `nak_rdata_ivl` for the RDATA, and backs off and NAKs again if none comes.
- A slot is given up as lost when its retries run out, when it has waited longer than the
  recovery interval, when the source's trailing edge (in every data packet and SPM) passes it,
  or when the source runs more than the window ahead of it (this receiver fell behind). A lost
  slot is reported as a gap: the half-read message is dropped and decoding resumes at the
  next message start (`framing.ApduReader`). Corrupt data is never delivered.
- The first data packet or SPM of a source defines its window: data from before that is not
  asked for (a late joiner starts at the present, as with libzmq).

Timings are libzmq's (pgm_socket.cpp) unless configured. The caller feeds packets and time,
drains `events()` and `datagrams()` (NAKs and SPM requests, each for one unicast address), and
sleeps until `next_timer()`. Nothing here raises on network input: bad packets are counted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from . import packets as wire
from .framing import ApduReader

#: libzmq's PGM_NAK_BO_IVL: the random back-off before a NAK is drawn from (0, this] seconds.
NAK_BACKOFF_IVL = 0.05
#: libzmq's PGM_NAK_RPT_IVL: wait this long for an NCF before NAKing again.
NAK_REPEAT_IVL = 0.2
#: libzmq's PGM_NAK_RDATA_IVL: after an NCF, wait this long for the RDATA.
NAK_RDATA_IVL = 0.2
#: libzmq's PGM_NAK_NCF_RETRIES and PGM_NAK_DATA_RETRIES.
NAK_NCF_RETRIES = 50
NAK_DATA_RETRIES = 50
#: libzmq's PGM_SPMR_EXPIRY: ask a source for an SPM when data came this long without one.
SPMR_DELAY = 0.025
#: libzmq's PGM_PEER_EXPIRY: forget a source not heard from for this long.
PEER_EXPIRY = 300.0
#: Sources tracked at once. A group normally has a handful of publishers; the cap bounds what
#: packets with made-up TSIs can make a receiver allocate (each source holds a window).
MAX_SOURCES = 64

Tsi = tuple[bytes, int]

BACK_OFF, WAIT_NCF, WAIT_DATA, LOST = range(4)


@dataclass(frozen=True, slots=True)
class MessageReceived:
    source: Tsi
    frames: list[bytes]


@dataclass(frozen=True, slots=True)
class GapReported:
    """`lost` packets of `source` could not be repaired; messages they carried are gone."""

    source: Tsi
    lost: int


Event = MessageReceived | GapReported


@dataclass(slots=True)
class ReceiverConfig:
    data_port: int
    group: str
    #: Sequences a source may run ahead of the oldest undelivered one (RATE x RECOVERY_IVL).
    window_sqns: int
    #: Seconds a missing packet is waited for (RECOVERY_IVL).
    recovery_ivl: float
    #: Cap on one message's bytes (MAXMSGSIZE, or the engine's default cap).
    max_message_size: int
    nak_backoff_ivl: float = NAK_BACKOFF_IVL
    nak_repeat_ivl: float = NAK_REPEAT_IVL
    nak_rdata_ivl: float = NAK_RDATA_IVL
    nak_ncf_retries: int = NAK_NCF_RETRIES
    nak_data_retries: int = NAK_DATA_RETRIES
    spmr_delay: float = SPMR_DELAY
    peer_expiry: float = PEER_EXPIRY
    max_sources: int = MAX_SOURCES


@dataclass(slots=True)
class ReceiverStats:
    data: int = 0
    repaired: int = 0
    duplicates: int = 0
    naks_sent: int = 0
    spmrs_sent: int = 0
    lost: int = 0
    gaps: int = 0
    #: Malformed packets.
    malformed: int = 0
    #: Well-formed packets for another data port, or of a kind a receiver does not act on.
    ignored: int = 0
    #: Packets from new sources while `max_sources` were tracked.
    refused: int = 0


@dataclass(slots=True)
class _Missing:
    since: float
    expiry: float
    state: int = BACK_OFF
    ncf_retries: int = 0
    data_retries: int = 0


@dataclass(slots=True)
class _Source:
    tsi: Tsi
    address: str
    reader: ApduReader
    heard: float
    nla: str | None = None
    spm_sqn: int | None = None
    spmr_due: float | None = None
    defined: bool = False
    next_sqn: int = 0  # oldest sequence not yet delivered
    lead: int = 0  # newest sequence known to exist
    trail: int = 0  # the source's trailing edge: older sequences cannot be repaired
    slots: dict[int, bytes | _Missing] = field(default_factory=dict)
    missing: int = 0  # slots holding a _Missing that is not LOST


class PgmReceiver:
    """Receive windows for every source on one group and data port."""

    def __init__(self, config: ReceiverConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.stats = ReceiverStats()
        self._rng = rng or random.Random()
        self._sources: dict[Tsi, _Source] = {}
        self._events: list[Event] = []
        self._out: list[tuple[bytes, str]] = []

    # -- outputs -------------------------------------------------------------------------------

    def events(self) -> list[Event]:
        """Messages and gaps since the last call, in order; the list is handed over."""
        out, self._events = self._events, []
        return out

    def datagrams(self) -> list[tuple[bytes, str]]:
        """(packet, unicast address) to send: NAKs and SPM requests; the list is handed over."""
        out, self._out = self._out, []
        return out

    @property
    def sources(self) -> int:
        return len(self._sources)

    # -- packets -------------------------------------------------------------------------------

    def packet_received(self, packet: bytes, sender_address: str, now: float) -> None:
        """One PGM packet (from its PGM header on) that came from `sender_address`."""
        try:
            parsed = wire.parse(packet)
        except wire.MalformedPacket:
            self.stats.malformed += 1
            return
        if isinstance(parsed, wire.Data):
            source = self._source(parsed.gsi, parsed.sport, parsed.dport, sender_address, now)
            if source is not None:
                self._on_data(source, parsed, now)
        elif isinstance(parsed, wire.Spm):
            source = self._source(parsed.gsi, parsed.sport, parsed.dport, sender_address, now)
            if source is not None:
                self._on_spm(source, parsed, now)
        elif isinstance(parsed, wire.Nak) and parsed.kind == wire.NCF:
            found = self._sources.get((parsed.gsi, parsed.source_port))
            if found is None or parsed.data_port != self.config.data_port:
                self.stats.ignored += 1
            else:
                self._on_ncf(found, parsed.sqns, now)
        else:  # other receivers' NAKs and SPMRs on the group, POLLs, ACKs
            self.stats.ignored += 1

    def _source(
        self, gsi: bytes, sport: int, dport: int, address: str, now: float
    ) -> _Source | None:
        if dport != self.config.data_port:
            self.stats.ignored += 1
            return None
        tsi = (gsi, sport)
        source = self._sources.get(tsi)
        if source is None:
            if len(self._sources) >= self.config.max_sources:
                self.stats.refused += 1
                return None
            source = _Source(tsi, address, ApduReader(self.config.max_message_size), now)
            source.spmr_due = now + self.config.spmr_delay
            self._sources[tsi] = source
        source.heard = now
        source.address = address
        return source

    def _on_data(self, source: _Source, data: wire.Data, now: float) -> None:
        self.stats.data += 1
        if not source.defined:
            self._define(source, (data.sqn - 1) & wire.SQN_MASK, data.trail)
        else:
            self._update_trail(source, data.trail)
        payload = data.payload
        if data.fragment is not None and data.fragment[2] != len(payload):
            payload = None  # a piece of a bigger APDU: libzmq never sends these; count it lost
        self._insert(source, data.sqn, payload, data.repair, now)
        self._flush(source)

    def _on_spm(self, source: _Source, spm: wire.Spm, now: float) -> None:
        older = source.spm_sqn is not None and (
            wire.sqn_distance(spm.spm_sqn, source.spm_sqn) >= wire.SQN_HALF
        )
        if older:
            self.stats.duplicates += 1  # an SPM overtaken by a newer one
            return
        source.spm_sqn = spm.spm_sqn
        source.nla = spm.nla
        source.spmr_due = None
        if not source.defined:
            self._define(source, spm.lead, spm.trail)
            return
        self._update_trail(source, spm.trail)
        if 0 < wire.sqn_distance(spm.lead, source.lead) < wire.SQN_HALF:
            # Data up to spm.lead exists: whatever of it did not arrive is missing.
            self._extend(source, spm.lead, now)
        self._flush(source)

    def _on_ncf(self, source: _Source, sqns: tuple[int, ...], now: float) -> None:
        for sqn in sqns:
            slot = source.slots.get(sqn)
            if isinstance(slot, _Missing) and slot.state in (BACK_OFF, WAIT_NCF):
                slot.state = WAIT_DATA
                slot.expiry = now + self.config.nak_rdata_ivl

    # -- the window ----------------------------------------------------------------------------

    def _define(self, source: _Source, lead: int, trail: int) -> None:
        source.defined = True
        source.lead = lead
        source.next_sqn = (lead + 1) & wire.SQN_MASK
        source.trail = trail

    def _update_trail(self, source: _Source, trail: int) -> None:
        """The source can no longer repair anything before `trail`: give that up."""
        if not 0 < wire.sqn_distance(trail, source.trail) < wire.SQN_HALF:
            return
        source.trail = trail
        ahead = wire.sqn_distance(trail, source.next_sqn)
        if 0 < ahead < wire.SQN_HALF:
            self._give_up_before(source, trail)

    def _insert(
        self, source: _Source, sqn: int, payload: bytes | None, repair: bool, now: float
    ) -> None:
        ahead = wire.sqn_distance(sqn, source.next_sqn)
        if ahead >= wire.SQN_HALF:
            self.stats.duplicates += 1  # delivered (or given up) already
            return
        if ahead >= self.config.window_sqns:
            # The source is a whole window ahead of what we could deliver: this receiver fell
            # behind. What cannot fit is given up, oldest first.
            self._give_up_before(source, (sqn - self.config.window_sqns + 1) & wire.SQN_MASK)
        behind_lead = wire.sqn_distance(source.lead, sqn)
        if behind_lead < wire.SQN_HALF:  # at or before the lead: fills a hole, or repeats
            slot = source.slots.get(sqn)
            if isinstance(slot, _Missing) and slot.state != LOST:
                self._fill(source, sqn, payload)
                if repair:
                    self.stats.repaired += 1
            else:
                self.stats.duplicates += 1
            return
        self._extend(source, (sqn - 1) & wire.SQN_MASK, now)
        source.lead = sqn
        self._fill(source, sqn, payload)

    def _fill(self, source: _Source, sqn: int, payload: bytes | None) -> None:
        slot = source.slots.get(sqn)
        if isinstance(slot, _Missing):
            source.missing -= 1
        if payload is None:
            source.slots[sqn] = _Missing(0.0, 0.0, LOST)
        else:
            source.slots[sqn] = payload

    def _extend(self, source: _Source, lead: int, now: float) -> None:
        """Sequences after the current lead up to `lead` exist but did not arrive."""
        if wire.sqn_distance(lead, source.next_sqn) >= self.config.window_sqns:
            self._give_up_before(source, (lead - self.config.window_sqns + 1) & wire.SQN_MASK)
        count = wire.sqn_distance(lead, source.lead)
        if count >= wire.SQN_HALF:
            return  # the lead is already past `lead`
        for i in range(1, count + 1):
            sqn = (source.lead + i) & wire.SQN_MASK
            backoff = self._rng.uniform(0.0, self.config.nak_backoff_ivl)
            source.slots[sqn] = _Missing(since=now, expiry=now + backoff)
        source.missing += count
        source.lead = lead

    def _give_up_before(self, source: _Source, first_kept: int) -> None:
        """Deliver or give up everything before `first_kept` (whose gaps are then reported)."""
        lost = 0
        while 0 < wire.sqn_distance(first_kept, source.next_sqn) < wire.SQN_HALF:
            if wire.sqn_distance(source.lead, source.next_sqn) >= wire.SQN_HALF:
                # Past the lead nothing was ever stored: all of it is lost, counted at once
                # (never walked: a trailing edge can be up to 2**31 ahead).
                lost += wire.sqn_distance(first_kept, source.next_sqn)
                source.next_sqn = first_kept
                break
            sqn = source.next_sqn
            slot = source.slots.pop(sqn, None)
            if isinstance(slot, bytes):
                lost = self._report(source, lost)
                self._deliver(source, slot)
            else:
                if isinstance(slot, _Missing) and slot.state != LOST:
                    source.missing -= 1
                lost += 1
            source.next_sqn = (sqn + 1) & wire.SQN_MASK
        self._report(source, lost)
        if wire.sqn_distance(source.lead, source.next_sqn) >= wire.SQN_HALF:
            source.lead = (source.next_sqn - 1) & wire.SQN_MASK  # the window is empty

    def _flush(self, source: _Source) -> None:
        """Deliver in order from the oldest undelivered sequence, through lost slots."""
        lost = 0
        while True:
            slot = source.slots.get(source.next_sqn)
            if isinstance(slot, bytes):
                lost = self._report(source, lost)
                self._deliver(source, slot)
            elif isinstance(slot, _Missing) and slot.state == LOST:
                lost += 1
            else:
                break
            del source.slots[source.next_sqn]
            source.next_sqn = (source.next_sqn + 1) & wire.SQN_MASK
        self._report(source, lost)

    def _report(self, source: _Source, lost: int) -> int:
        """Report `lost` packets as one gap (if any); returns 0 for the caller's next count."""
        if lost:
            source.reader.lost()
            self.stats.lost += lost
            self.stats.gaps += 1
            self._events.append(GapReported(source.tsi, lost))
        return 0

    def _deliver(self, source: _Source, apdu: bytes) -> None:
        for frames in source.reader.feed(apdu):
            self._events.append(MessageReceived(source.tsi, frames))

    # -- time ----------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        """NAK what is due, give up what waited too long, ask for SPMs, forget silent sources."""
        cfg = self.config
        for tsi, source in list(self._sources.items()):
            if now - source.heard > cfg.peer_expiry:
                del self._sources[tsi]
                continue
            if source.spmr_due is not None and now >= source.spmr_due:
                source.spmr_due = None
                self._out.append((wire.build_spmr(tsi[0], tsi[1], cfg.data_port), source.address))
                self.stats.spmrs_sent += 1
            if source.missing:
                self._run_nak_timers(source, now)

    def _run_nak_timers(self, source: _Source, now: float) -> None:
        cfg = self.config
        to_nak: list[int] = []
        gave_up = False
        for sqn, slot in source.slots.items():
            if not isinstance(slot, _Missing) or slot.state == LOST:
                continue
            if now - slot.since > cfg.recovery_ivl:
                gave_up = self._lose(source, slot)
            elif now < slot.expiry:
                continue
            elif slot.state == BACK_OFF:
                to_nak.append(sqn)
                slot.state = WAIT_NCF
                slot.expiry = now + cfg.nak_repeat_ivl
            elif slot.state == WAIT_NCF:
                slot.ncf_retries += 1
                if slot.ncf_retries > cfg.nak_ncf_retries:
                    gave_up = self._lose(source, slot)
                else:
                    self._back_off(slot, now)
            else:  # WAIT_DATA
                slot.data_retries += 1
                if slot.data_retries > cfg.nak_data_retries:
                    gave_up = self._lose(source, slot)
                else:
                    self._back_off(slot, now)
        to_nak.sort(key=lambda s: wire.sqn_distance(s, source.next_sqn))
        nla = source.nla or source.address  # before any SPM, its packets' source address
        for i in range(0, len(to_nak), wire.NAK_SQNS_MAX):
            chunk = to_nak[i : i + wire.NAK_SQNS_MAX]
            nak = wire.build_nak(
                wire.NAK, source.tsi[0], source.tsi[1], cfg.data_port, chunk, nla, cfg.group
            )
            self._out.append((nak, nla))
            self.stats.naks_sent += 1
        if gave_up:
            self._flush(source)

    def _back_off(self, slot: _Missing, now: float) -> None:
        slot.state = BACK_OFF
        slot.expiry = now + self._rng.uniform(0.0, self.config.nak_backoff_ivl)

    @staticmethod
    def _lose(source: _Source, slot: _Missing) -> bool:
        slot.state = LOST
        source.missing -= 1
        return True

    def next_timer(self) -> float | None:
        """The earliest time `handle_timer` has something to do, or None."""
        cfg = self.config
        due: float | None = None
        for source in self._sources.values():
            times = [source.heard + cfg.peer_expiry]
            if source.spmr_due is not None:
                times.append(source.spmr_due)
            if source.missing:
                for slot in source.slots.values():
                    if isinstance(slot, _Missing) and slot.state != LOST:
                        times.append(min(slot.expiry, slot.since + cfg.recovery_ivl))
            first = min(times)
            due = first if due is None else min(due, first)
        return due
