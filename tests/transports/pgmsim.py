"""A simulated LAN for the sans-I/O PGM state machines: one source, some receivers, a clock.

Time is simulated: `run` hands packets around until none are in flight, then jumps the clock
to the earliest timer any party has, so a test of a 10-second recovery interval takes
milliseconds and never sleeps. `drop` decides, per packet and direction, what the network
loses; everything else arrives instantly and in order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.pgm import packets as wire
from engine.pgm.receiver import Event, GapReported, MessageReceived, PgmReceiver, ReceiverConfig
from engine.pgm.sender import PgmSender, SenderConfig

GSI = b"\x01\x02\x03\x04\x05\x06"
SOURCE_PORT, DATA_PORT = 4000, 5555
NLA, GROUP = "192.0.2.1", "239.192.1.1"
#: Never wait on a timer further ahead than this in one step (peer expiry is 300 s).
HORIZON = 600.0

#: drop(direction, receiver index, parsed packet) -> lose it? direction is "down" (source to
#: receivers) or "up" (receiver to source).
Drop = Callable[[str, int, wire.Packet], bool]


def sender_config(**overrides: object) -> SenderConfig:
    values: dict[str, object] = dict(
        gsi=GSI,
        source_port=SOURCE_PORT,
        data_port=DATA_PORT,
        nla=NLA,
        group=GROUP,
        max_tpdu=1500,
        ip_overhead=28,
        rate=1_000_000.0,
        window_sqns=1000,
    )
    values.update(overrides)
    return SenderConfig(**values)  # type: ignore[arg-type]


def receiver_config(**overrides: object) -> ReceiverConfig:
    values: dict[str, object] = dict(
        data_port=DATA_PORT,
        group=GROUP,
        window_sqns=1000,
        recovery_ivl=10.0,
        max_message_size=1 << 20,
    )
    values.update(overrides)
    return ReceiverConfig(**values)  # type: ignore[arg-type]


def odata(sqns: set[int]) -> Drop:
    """Lose the original transmission of these sequences (their repairs get through)."""
    return lambda d, _i, p: (
        d == "down" and isinstance(p, wire.Data) and not p.repair and (p.sqn in sqns)
    )


def any_data(sqns: set[int]) -> Drop:
    """Lose these sequences for good: original and every repair."""
    return lambda d, _i, p: d == "down" and isinstance(p, wire.Data) and p.sqn in sqns


@dataclass
class Lan:
    sender: PgmSender
    receivers: list[PgmReceiver]
    drop: Drop = lambda _d, _i, _p: False
    now: float = 0.0
    events: list[list[Event]] = field(default_factory=list)
    #: Every packet put on the wire: (time, direction, receiver index or -1, parsed).
    log: list[tuple[float, str, int, wire.Packet]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        receivers: int = 1,
        seed: int = 7,
        sender: SenderConfig | None = None,
        receiver: ReceiverConfig | None = None,
        drop: Drop | None = None,
    ) -> Lan:
        rng = random.Random(seed)
        lan = cls(
            PgmSender(sender or sender_config(), 0.0),
            [
                PgmReceiver(receiver or receiver_config(), random.Random(rng.random()))
                for _ in range(receivers)
            ],
        )
        if drop is not None:
            lan.drop = drop
        lan.events = [[] for _ in range(receivers)]
        return lan

    def send(self, *messages: list[bytes]) -> None:
        for frames in messages:
            self.sender.send(frames)

    def step(self) -> None:
        """Run every party's timers at `now` and deliver packets until none are in flight."""
        self.sender.handle_timer(self.now)
        for rx in self.receivers:
            rx.handle_timer(self.now)
        while True:
            moved = False
            for packet in self.sender.datagrams():
                moved = True
                parsed = wire.parse(packet)
                for i, rx in enumerate(self.receivers):
                    self.log.append((self.now, "down", i, parsed))
                    if not self.drop("down", i, parsed):
                        rx.packet_received(packet, NLA, self.now)
            for i, rx in enumerate(self.receivers):
                for packet, address in rx.datagrams():
                    moved = True
                    parsed = wire.parse(packet)
                    self.log.append((self.now, "up", i, parsed))
                    assert address == NLA
                    if not self.drop("up", i, parsed):
                        self.sender.packet_received(packet, self.now)
                self.events[i] += rx.events()
            if not moved:
                return
            self.sender.handle_timer(self.now)  # NAKs just arrived: answer them at once

    def run(self, until: Callable[[], bool] | float, limit: float = HORIZON) -> None:
        """Step and advance the clock until `until()` holds (or the clock passes `until`)."""
        deadline = until if isinstance(until, int | float) else HORIZON
        stop = (lambda: self.now >= deadline) if isinstance(until, int | float) else until
        while True:
            self.step()
            if stop():
                return
            timers = [self.sender.next_timer(self.now)]
            timers += [rx.next_timer() for rx in self.receivers]
            due = min(t for t in timers if t is not None)
            self.now = min(max(due, self.now + 1e-6), deadline)
            if self.now > limit:
                raise TimeoutError(f"simulated {limit} s without reaching the condition")

    def messages(self, i: int = 0) -> list[list[bytes]]:
        return [e.frames for e in self.events[i] if isinstance(e, MessageReceived)]

    def gaps(self, i: int = 0) -> list[int]:
        return [e.lost for e in self.events[i] if isinstance(e, GapReported)]

    def sent(self, kind: type, direction: str = "down", **fields: object) -> list[float]:
        """Times at which packets of `kind` (with these field values) went on the wire."""
        out = []
        for t, d, i, p in self.log:
            wanted = d == direction and isinstance(p, kind) and (i <= 0 or direction == "up")
            if wanted and all(getattr(p, k) == v for k, v in fields.items()):
                out.append(t)
        return out
