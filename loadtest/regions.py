"""Regional relays across a shaped long link, in two network namespaces (needs root).

``dc`` runs a plain engine XPUB publisher (this module's ``publish`` command: the relay tests'
publisher plus a send timestamp in every event); ``nz`` runs N subscribers (``subscribe``: one
process, N SUB sockets, N TCP connections) either straight across the link or behind a
``crossroads relay`` in ``nz``. A veth pair joins the namespaces on a /30 that exists only inside
them, shaped with ``tc netem delay`` + ``tbf rate`` both ways. The same event load runs in both
modes; the kernel counts what crossed (``ss -tin`` bytes_acked on the publisher's port, and the
dc veth's TX counters), the subscribers time each event against the shared host clock.

`lan` measures a region's LAN instead: N players behind the relay, served over tcp or over epgm
multicast (see the section at the end).

Every process started is killed by PID and every namespace is deleted on any exit.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import engine as zmq
import engine.asyncio as azmq
from engine.patterns.demo_cli import positive

from . import netns
from .netns import kill

REPO_ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
TOPIC = b"room.hall\0"
#: Bound on a start-up or settle wait: generous for a loaded 2-core machine.
WAIT = 30.0
#: Subscribers count as connected when each got one probe; a probe goes out this often.
PROBE_EVERY = 0.5


# -- the two roles run inside the namespaces ----------------------------------------------------


def publish(bind: str) -> int:
    """XPUB on ``bind``; stdin: ``probe`` or ``go COUNT SIZE PER_SECOND``; prints ``sent N``."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.sndhwm = 0  # every byte is counted: none may be dropped
    print(f"bound {pub.bind(bind)}", flush=True)
    commands: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [commands.put(line) for line in sys.stdin], daemon=True).start()
    print("ready", flush=True)

    def wait_until(due: float) -> None:
        """Drain subscription messages until ``due`` (monotonic)."""
        while (left := due - time.monotonic()) > 0:
            if pub.poll(int(left * 1000) + 1, zmq.POLLIN):
                pub.recv_multipart()

    while True:
        wait_until(time.monotonic() + 0.005)
        while not commands.empty():
            words = commands.get().split()
            if words == ["probe"]:
                pub.send_multipart([TOPIC, b"P"])
            elif words[:1] == ["go"]:
                count, size, rate = int(words[1]), int(words[2]), float(words[3])
                start = time.monotonic()
                for seq in range(count):
                    wait_until(start + seq / rate)
                    head = f"{seq} {time.time():.6f} ".encode()
                    pub.send_multipart([TOPIC, head.ljust(size, b"x")])
                print(f"sent {count}", flush=True)


async def subscribe(endpoint: str, n: int, count: int, timeout: float) -> int:
    """N SUBs; ``ready`` once all got a probe, then ``done JSON`` once all got ``count`` events
    (or at ``timeout``); then they stay connected until stdin closes."""
    ctx = azmq.Context()
    socks = []
    for _ in range(n):
        s = ctx.socket(zmq.SUB)
        s.rcvhwm = 0
        s.connect(endpoint)
        s.setsockopt(zmq.SUBSCRIBE, TOPIC)
        socks.append(s)
    probed, got, latencies = [False] * n, [0] * n, []
    done = asyncio.Event()

    async def read(i: int, s: azmq.Socket) -> None:
        while True:
            body = (await s.recv_multipart())[1]
            if body == b"P":
                if not probed[i]:
                    probed[i] = True
                    if all(probed):
                        print("ready", flush=True)
                continue
            latencies.append(time.time() - float(body.split(b" ", 2)[1]))
            got[i] += 1
            if sum(got) == n * count:
                done.set()

    tasks = [asyncio.create_task(read(i, s)) for i, s in enumerate(socks)]
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        pass  # report what arrived: the caller compares it with what was sent
    for t in tasks:
        t.cancel()
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    report = {"received": sum(got), "expected": n * count, "samples": len(latencies)}
    if latencies:
        report |= {"p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0)}
    print("done " + json.dumps(report), flush=True)
    # Stay connected until stdin closes: the caller reads the kernel counters of these connections.
    await asyncio.to_thread(sys.stdin.read)
    for s in socks:
        s.close(0)
    ctx.term()
    return 0


# -- the orchestrator ---------------------------------------------------------------------------


def sh(*cmd: str, check: bool = True) -> str:
    """Run one command (ip, tc, ss) and return its stdout."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


class Proc:
    """A Python process in a namespace; stdout lines collected on a thread; killed by PID."""

    def __init__(
        self, ns: str, args: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        env = dict(os.environ, **(env or {}), PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        self.log = log
        with log.open("ab") as err:  # `ip netns exec` execs: the PID is python's
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                cwd=REPO_ROOT,
                text=True,
            )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """The first line matching ``pattern``; raises TimeoutError at the deadline."""
        deadline, regex = time.monotonic() + timeout, re.compile(pattern)
        with self._changed:
            while True:
                for line in self.lines:
                    if m := regex.search(line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    tail = self.log.read_text(errors="replace")[-800:]
                    raise TimeoutError(f"{self.process.args[4:]} never printed {pattern!r}\n{tail}")
                self._changed.wait(left)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL by PID, then reap."""
        kill(self.process)


class Link:
    """Namespaces ``dc`` and ``nz`` joined by a shaped veth pair; `close` undoes everything."""

    def __init__(self, tag: str, delay_ms: float, rate_mbit: float, logdir: Path) -> None:
        self.dc, self.nz = f"cr-dc-{tag}", f"cr-nz-{tag}"
        self.vdc, self.vnz = f"crd{tag}", f"crn{tag}"
        net = zlib.crc32(tag.encode()) % 256
        self.dc_ip, self.nz_ip = f"10.77.{net}.1", f"10.77.{net}.2"
        self.logdir = logdir
        self.procs: list[Proc] = []
        self.closed = False
        atexit.register(self.close)
        sh("ip", "netns", "add", self.dc)
        sh("ip", "netns", "add", self.nz)
        # Created straight inside the namespaces: the pair never appears on the host.
        sh("ip", "link", "add", self.vdc, "netns", self.dc, "type", "veth", "peer", "name",
           self.vnz, "netns", self.nz)  # fmt: skip
        for ns, dev, ip in ((self.dc, self.vdc, self.dc_ip), (self.nz, self.vnz, self.nz_ip)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            self.delay_applied = self._shape(ns, dev, delay_ms, rate_mbit)

    @staticmethod
    def _shape(ns: str, dev: str, delay_ms: float, rate_mbit: float) -> bool:
        """netem delay with a tbf rate under it; tbf alone (returns False) if there is no netem."""
        tc = ["tc", "-n", ns, "qdisc", "add", "dev", dev]
        tbf = ["tbf", "rate", f"{rate_mbit}mbit", "burst", "32kbit", "latency", "2s"]
        try:
            sh(*tc, "root", "handle", "1:", "netem", "delay", f"{delay_ms}ms", "limit", "100000")
        except RuntimeError as exc:
            if "unknown" not in str(exc):
                raise
            sh(*tc, "root", "handle", "1:", *tbf)  # this kernel lacks sch_netem
            return False
        sh(*tc, "parent", "1:1", "handle", "10:", *tbf)
        return True

    def spawn(self, ns: str, name: str, args: list[str]) -> Proc:
        proc = Proc(ns, args, self.logdir / f"{name}.log")
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        while self.procs:
            self.procs.pop().kill()

    def close(self) -> None:
        """Kill every process started (by PID), delete both namespaces (and so the veths)."""
        if self.closed:
            return
        self.closed = True
        self.kill_all()
        for ns in (self.dc, self.nz):
            sh("ip", "netns", "del", ns, check=False)

    def sent_bytes(self, port: int) -> tuple[int, bool]:
        """(bytes acked from ``port`` in dc, whether some are still unacknowledged)."""
        out = sh("ip", "netns", "exec", self.dc, "ss", "-tinH", "state", "established",
                 f"( sport = :{port} )")  # fmt: skip
        return sum(int(n) for n in re.findall(r"bytes_acked:(\d+)", out)), "unacked:" in out

    def settled(self, port: int) -> tuple[int, int, int]:
        """(bytes acked from ``port``, dc veth TX bytes, TX packets) once nothing is in flight."""
        deadline = time.monotonic() + WAIT
        while True:
            acked, pending = self.sent_bytes(port)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"data from port {port} never acknowledged")
            time.sleep(0.02)  # polling a kernel counter, bounded by the deadline
        link = json.loads(sh("ip", "-n", self.dc, "-s", "-j", "link", "show", "dev", self.vdc))
        tx = link[0]["stats64"]["tx"]
        return acked, tx["bytes"], tx["packets"]


def spawn_subscribers(
    link: Link, ns: str, name: str, target: str, n: int, args: argparse.Namespace
) -> Proc:
    """N SUBs on `target` in namespace `ns`, waiting for the load in `args`."""
    load_s = args.messages / args.msg_rate
    return link.spawn(ns, name, ["-m", "loadtest.regions", "subscribe", "--endpoint", target,
                      "-n", str(n), "--count", str(args.messages),
                      "--timeout", str(load_s + WAIT)])  # fmt: skip


def probe_until_ready(pub: Proc, subs: Proc) -> None:
    """Probe until every subscriber got one: every subscription is in place, upstream too."""
    deadline = time.monotonic() + WAIT
    while True:
        pub.send("probe")
        try:
            subs.wait_for("^ready", PROBE_EVERY)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def start_publisher(link: Link, name: str) -> tuple[Proc, str]:
    """The event publisher in dc, ready; and its resolved endpoint."""
    pub = link.spawn(link.dc, name, ["-m", "loadtest.regions", "publish", "--bind",
                                     f"tcp://{link.dc_ip}:0"])  # fmt: skip
    endpoint = pub.wait_for(r"^bound (\S+)")[1]
    pub.wait_for("^ready")
    return pub, endpoint


def start_relay(link: Link, upstream: str, bind: str) -> str:
    """`crossroads relay` in nz, ready; the endpoint it serves its region on."""
    cmd = ["-m", "relay.cli", "--upstream", upstream, "--hwm", "0"]
    cmd += ["--bind", bind, "--stats-interval", "0"]
    # The experiment counts the forwarding's own bytes behind a bare publisher (no front, no
    # key): the region is served in clear, as the publisher is, so both sides compare.
    cmd += ["--insecure-players"]
    relay = link.spawn(link.nz, "relay", cmd)
    served = relay.wait_for(r"^updates (\S+)")[1]
    relay.wait_for("^ready")
    return served


def run_mode(link: Link, args: argparse.Namespace, relay: bool) -> dict[str, object]:
    """One mode's bytes across the link and latencies, under the load in ``args``."""
    mode = "relay" if relay else "direct"
    try:
        pub, endpoint = start_publisher(link, f"{mode}-pub")
        port = int(endpoint.rsplit(":", 1)[1])
        target = start_relay(link, endpoint, "tcp://127.0.0.1:0") if relay else endpoint
        subs = spawn_subscribers(link, link.nz, f"{mode}-subs", target, args.subscribers, args)
        probe_until_ready(pub, subs)
        acked0, tx0, pk0 = link.settled(port)
        pub.send(f"go {args.messages} {args.size} {args.msg_rate}")
        report = await_report(subs, args)
        acked1, tx1, pk1 = link.settled(port)
    finally:
        link.kill_all()
    return {"mode": mode, "subscribers": args.subscribers, "payload_bytes": acked1 - acked0,
            "link_bytes": tx1 - tx0, "link_packets": pk1 - pk0, **report}  # fmt: skip


def await_report(subs: Proc, args: argparse.Namespace) -> dict[str, object]:
    """The subscribers' report once they got the whole load (or timed out waiting)."""
    return json.loads(subs.wait_for(r"^done (.*)", args.messages / args.msg_rate + 2 * WAIT)[1])


#: The two-host demo's columns.
MODE_COLUMNS = ("mode", "subscribers", "payload_bytes", "link_bytes", "link_packets", "p50_ms",
                "p99_ms", "max_ms", "received")  # fmt: skip


def table(rows: list[dict[str, object]], cols: tuple[str, ...] = MODE_COLUMNS) -> str:
    """A Markdown table of `rows` in columns `cols`."""
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "-")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _add_load_options(p: argparse.ArgumentParser, delay: str, rate: str) -> None:
    """The event load, the link's shaping and the output options both demos share."""
    p.add_argument("--messages", type=positive(int), default=100, help="events published (100)")
    p.add_argument("--size", type=positive(int), default=100, help="event payload bytes (100)")
    p.add_argument("--msg-rate", type=positive(float), default=10.0, help="events per second (10)")
    p.add_argument(
        "--delay-ms", type=positive(float, zero=True), default=150.0, help=f"{delay} each way (150)"
    )
    p.add_argument("--rate-mbit", type=positive(float), default=2.0, help=f"{rate} each way (2)")
    p.add_argument("--tag", default=str(os.getpid()), help="namespace suffix (the PID)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON object")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.regions",
        description="Bytes across a shaped dc<->nz link and event latency, N subscribers "
        "direct vs behind a relay, in two network namespaces (root). Also: `lan --help` (N players "
        "on a LAN behind a relay, over tcp and over epgm multicast), `publish --help`, "
        "`subscribe --help` (the roles it runs inside the namespaces).",
    )
    p.add_argument("--subscribers", type=positive(int), default=50, help="players in nz (50)")
    _add_load_options(p, "netem delay", "tbf rate")
    return p


def measure(name: str, work: Callable[[Path], T]) -> tuple[int, T | None]:
    """(0, what `work(temp dir)` returned), or the exit code after a one-line error: a timeout or
    a failed command (1), or an interrupt (130). `work` cleans up its namespaces itself."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        try:
            return 0, work(Path(tmp))
        except (TimeoutError, RuntimeError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1, None
        except KeyboardInterrupt:
            print(f"{name}: interrupted; cleaned up", file=sys.stderr)
            return 130, None


def demo(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[a-z0-9]{1,10}", args.tag):
        print("regions: --tag must be 1-10 lowercase letters or digits", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("regions: needs root (network namespaces, tc); run it with sudo", file=sys.stderr)
        return 2

    def both_modes(tmp: Path) -> tuple[list[dict[str, object]], bool]:
        link = Link(args.tag, args.delay_ms, args.rate_mbit, tmp)
        try:
            rows = [run_mode(link, args, relay=False), run_mode(link, args, relay=True)]
            return rows, link.delay_applied
        finally:
            link.close()

    code, outcome = measure("regions", both_modes)
    if outcome is None:
        return code
    rows, delay = outcome
    direct, relayed = rows[0]["payload_bytes"], rows[1]["payload_bytes"]
    ratio = relayed / (direct / args.subscribers) if direct else 0.0  # type: ignore[operator]
    result = {"rows": rows, "ratio_to_1_over_n": round(ratio, 3), "params": vars(args)}
    result["delay_applied"] = delay
    if args.json:
        print(json.dumps(result))
    else:
        shape = f"link {args.delay_ms:g} ms + {args.rate_mbit:g} mbit each way"
        print(f"{args.subscribers} subscribers, {args.messages} events of {args.size} B at "
              f"{args.msg_rate:g}/s, {shape}")  # fmt: skip
        if not delay:
            print("netem delay NOT applied: this kernel has no sch_netem (tbf rate only)")
        print(table(rows))
        print(f"relay payload bytes / (direct / N) = {ratio:.3f}")
    return 0


# -- the region's LAN: N players behind the relay, over tcp and over epgm multicast -----------------
#
# `python -m loadtest.regions lan`: three namespaces. ``dc`` runs the publisher, ``nz`` the
# region's relay (behind the shaped long link above), and ``lan`` the region's N players, on one
# veth LAN with the relay. The relay serves them over tcp (one connection, hence one copy of
# every event, per player) or over epgm multicast (`crossroads relay --bind epgm://...`: one copy
# for the whole LAN). The kernel counts what the relay sent on the LAN (its veth's TX counters)
# while the same event load goes out. The point of multicast: the relay's LAN bytes stay the same
# for any N, against N times as much over tcp.

#: The LAN's multicast group and port (the relay's default port, 7312).
LAN_GROUP, LAN_PORT = "239.192.7.1", 7312
TRANSPORTS = ("tcp", "epgm")


def run_lan(
    link: Link, lan: netns.VethPair, args: argparse.Namespace, transport: str, players: int
) -> dict[str, object]:
    """One load to `players` players over `transport`; what the relay sent on the LAN."""
    relay_ip, players_ip = lan.address_a, lan.address_b
    try:
        pub, upstream = start_publisher(link, f"{transport}{players}-pub")
        if transport == "tcp":
            target = start_relay(link, upstream, f"tcp://{relay_ip}:0")
        else:
            start_relay(link, upstream, f"epgm://{relay_ip};{LAN_GROUP}:{LAN_PORT}")
            target = f"epgm://{players_ip};{LAN_GROUP}:{LAN_PORT}"  # joined on the players' side
        subs = spawn_subscribers(
            link, lan.ns_b, f"{transport}{players}-subs", target, players, args
        )
        probe_until_ready(pub, subs)
        bytes0, packets0 = lan.tx_counters(lan.ns_a, lan.dev_a)
        pub.send(f"go {args.messages} {args.size} {args.msg_rate}")
        report = await_report(subs, args)
        bytes1, packets1 = lan.tx_counters(lan.ns_a, lan.dev_a)
    finally:
        link.kill_all()
    return {
        "transport": transport,
        "players": players,
        "lan_bytes": bytes1 - bytes0,
        "lan_packets": packets1 - packets0,
        **report,
    }


#: The LAN measurement's columns.
LAN_COLUMNS = ("transport", "players", "lan_bytes", "lan_packets", "received", "expected",
               "p50_ms", "p99_ms")  # fmt: skip


def growth(rows: list[dict[str, object]]) -> dict[str, float]:
    """Per transport: the relay's LAN bytes with the most players over those with the fewest."""
    out = {}
    for transport in TRANSPORTS:
        mine = sorted((r for r in rows if r["transport"] == transport), key=lambda r: r["players"])  # type: ignore[arg-type, return-value]
        if len(mine) >= 2 and mine[0]["lan_bytes"]:
            out[transport] = round(mine[-1]["lan_bytes"] / mine[0]["lan_bytes"], 2)  # type: ignore[operator]
    return out


def build_lan_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.regions lan",
        description="Bytes a relay sends on its region's LAN to N players, over tcp and over "
        "epgm multicast, in three network namespaces (root).",
    )
    p.add_argument(
        "--players",
        type=positive(int),
        nargs="+",
        default=[1, 10, 50],
        help="player counts to measure (1 10 50)",
    )
    _add_load_options(p, "dc<->nz delay", "dc<->nz rate")
    return p


def lan_demo(argv: list[str]) -> int:
    args = build_lan_parser().parse_args(argv)
    if not re.fullmatch(r"[a-z0-9]{1,8}", args.tag):
        print("regions lan: --tag must be 1-8 lowercase letters or digits", file=sys.stderr)
        return 2
    if any(n < 1 for n in args.players):
        print("regions lan: --players must be at least 1", file=sys.stderr)
        return 2
    reason = netns.unavailable()
    if reason:
        print(f"regions lan: {reason}; run it with sudo", file=sys.stderr)
        return 2

    def every_run(tmp: Path) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        link = Link(args.tag, args.delay_ms, args.rate_mbit, tmp)
        lan = None
        try:
            lan = netns.VethPair(tag=f"l{args.tag}", existing_a=link.nz).up()
            for players in args.players:
                for transport in TRANSPORTS:
                    rows.append(run_lan(link, lan, args, transport, players))
                    if not args.json:
                        print(f"measured {transport} with {players} player(s)", flush=True)
            return rows
        finally:
            if lan is not None:
                lan.down()
            link.close()

    code, rows = measure("regions lan", every_run)
    if rows is None:
        return code
    result = {"rows": rows, "growth": growth(rows), "params": vars(args)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.messages} events of {args.size} B at {args.msg_rate:g}/s to each player")
        print(table(rows, LAN_COLUMNS))
        for transport, ratio in result["growth"].items():  # type: ignore[attr-defined]
            print(
                f"{transport}: LAN bytes with {max(args.players)} players / with "
                f"{min(args.players)} = {ratio}"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["publish"]:
        p = argparse.ArgumentParser(prog="regions publish", description=publish.__doc__)
        p.add_argument("--bind", required=True, help="XPUB endpoint, e.g. tcp://10.77.0.1:0")
        return publish(p.parse_args(argv[1:]).bind)
    if argv[:1] == ["lan"]:
        _unwind_on_signals()
        return lan_demo(argv[1:])
    if argv[:1] == ["subscribe"]:
        p = argparse.ArgumentParser(prog="regions subscribe", description=subscribe.__doc__)
        p.add_argument("--endpoint", required=True, help="publisher or relay XPUB")
        p.add_argument("-n", type=positive(int), required=True, help="SUB sockets")
        p.add_argument("--count", type=positive(int), required=True, help="events each should get")
        p.add_argument(
            "--timeout", type=positive(float), required=True, help="seconds to wait for them"
        )
        a = p.parse_args(argv[1:])
        return asyncio.run(subscribe(a.endpoint, a.n, a.count, a.timeout))
    _unwind_on_signals()
    return demo(build_parser().parse_args(argv))


def _unwind_on_signals() -> None:
    """SIGINT (even if inherited as ignored), SIGTERM, SIGHUP unwind through finally, atexit."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(128 + 15))


if __name__ == "__main__":
    sys.exit(main())
