"""A relay serving its region over epgm multicast, on a two-namespace LAN, with loss.

The publisher and `crossroads relay --bind epgm://...` run in one namespace, the players' SUBs
(engine sockets) in the other. The relay takes every event from upstream (no subscription
travels back over PGM) and multicasts it once; each player keeps its topics. ODATA packets lost
on the LAN are repaired, so each player gets its events complete and in order. Then the same
across the LAN with `python -m loadtest.regions lan`: the relay's LAN bytes stay flat with the
number of players over epgm, and grow with it over tcp.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest import netns
from loadtest.regions import Proc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transports"))

from peerkit import LinePeer, engine_argv
from pgmkit import frames_of, odata_rule

pytestmark = pytest.mark.timeout(150)

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISHER = Path(__file__).resolve().parent / "publisher.py"
GROUP, PORT = "239.192.7.1", 7312


@pytest.fixture
def lan(tmp_path: Path):  # type: ignore[no-untyped-def]
    reason = netns.unavailable() or netns.nft_unavailable()
    if reason:
        pytest.skip(reason)
    netns.reap_stale()
    pair = netns.VethPair().up()
    try:
        count_pgm(pair, pair.ns_b, COUNTED_TO_PLAYERS)  # for a failure's report
        count_pgm(pair, pair.ns_a, COUNTED_TO_RELAY)
    except Exception:
        pair.down()
        raise
    procs: list[Proc] = []
    peers: list[LinePeer] = []
    yield pair, procs, peers
    # Printed, so shown when the test failed: what each side said and what crossed the LAN.
    try:
        print(diagnosis(pair, procs, peers))
    finally:
        for proc in procs:
            proc.kill()
        for peer in peers:
            peer.close()
        pair.down()


#: PGM packet types (RFC 3208 section 8) counted on each side of the LAN for a failure's report.
COUNTED_TO_PLAYERS = {"SPM": 0x00, "ODATA": 0x04, "RDATA": 0x05, "NCF": 0x0A}
COUNTED_TO_RELAY = {"NAK": 0x08, "SPMR": 0x0C}


def count_pgm(pair, ns: str, kinds: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    pair.count(ns, [f"udp dport {PORT} @th,96,8 {kind}" for kind in kinds.values()])


def diagnosis(pair, procs: list[Proc], peers: list[LinePeer]) -> str:  # type: ignore[no-untyped-def]
    """The logs and the LAN's packet counts, for a failure to explain itself."""
    lines = []
    try:
        for ns, kinds in ((pair.ns_b, COUNTED_TO_PLAYERS), (pair.ns_a, COUNTED_TO_RELAY)):
            counts = pair.counted(ns)
            lines.append(f"packets into {ns}: {dict(zip(kinds, counts, strict=False))}")
        lines.append(f"dropped into {pair.ns_b}: {pair.dropped(pair.ns_b)}")
    except RuntimeError as exc:  # a table this test did not make: the rest still helps
        lines.append(f"(packet counts: {exc})")
    for proc in procs:
        lines.append(f"--- {proc.process.args[4:]} (exit {proc.process.poll()}) stdout:")
        lines.extend(proc.lines[-20:])
        lines.append("--- its log:")
        lines.append(proc.log.read_text(errors="replace")[-3000:])
    for peer in peers:
        got = sum(event["event"] == "message" for event in peer.events)
        lines.append(f"--- {peer.process.args[-3:]}: {got} messages; its log:")
        lines.append(peer.log.read_text(errors="replace")[-1500:])
    return "\n".join(lines)


def test_relay_multicasts_every_event_once_and_loss_is_repaired(lan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pair, procs, peers = lan
    pair.drop(pair.ns_b, [odata_rule("epgm", n).replace("5555", str(PORT)) for n in (3, 7, 8)])
    pub = Proc(pair.ns_a, [str(PUBLISHER)], tmp_path / "pub.log")
    procs.append(pub)
    upstream = pub.wait_for(r"^bound (\S+)")[1]
    pub.wait_for("^ready")
    relay = Proc(
        pair.ns_a,
        [
            "-m",
            "relay.cli",
            "--upstream",
            upstream,
            "--stats-interval",
            "1",  # its log says what it forwarded, should this test fail
            "--bind",
            f"epgm://{pair.address_a};{GROUP}:{PORT}",
        ],
        tmp_path / "relay.log",
    )
    procs.append(relay)
    assert relay.wait_for(r"^updates (\S+)")[1].startswith("epgm://")
    relay.wait_for("^ready")
    players = {}
    for topic in ("room.hall", "room.cellar"):
        peer = LinePeer(
            engine_argv("sub", f"epgm://{pair.address_b};{GROUP}:{PORT}", "connect"),
            tmp_path / f"{topic}.log",
            spawn=lambda argv, **kw: pair.spawn(pair.ns_b, argv, **kw),
        )
        peers.append(peer)
        peer.next_event("ready")
        peer.command(subscribe=(topic + "\0").encode().hex())
        players[topic] = peer
    pub.send("burst room.cellar 5 300")  # for the other player only
    pub.send("rate room.hall 100")  # numbered events: order and completeness are checkable
    hall = frames_of(players["room.hall"].messages(40))
    pub.send("rate room.hall 0")
    seqs = [int(frames[1].split()[1]) for frames in hall]
    assert all(frames[0] == b"room.hall\0" for frames in hall)
    assert seqs == list(range(seqs[0], seqs[0] + 40))  # complete and in order
    cellar = frames_of(players["room.cellar"].messages(5))
    assert all(frames[0] == b"room.cellar\0" for frames in cellar)  # each keeps its topics
    assert pair.dropped(pair.ns_b) == [1, 1, 1]  # lost on the LAN, repaired


def test_lan_bytes_flat_over_epgm_and_growing_over_tcp(tmp_path: Path) -> None:
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    tag = f"t{os.getpid() % 100000}"
    args = [
        "--players",
        "1",
        "4",
        "--messages",
        "30",
        "--msg-rate",
        "30",
        "--delay-ms",
        "10",
        "--rate-mbit",
        "20",
        "--tag",
        tag,
        "--json",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtest.regions", "lan", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGTERM)  # it unwinds: kills its children, deletes namespaces
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"the LAN demo took over 120 s: {err[-2000:]}")
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    for row in result["rows"]:
        assert row["received"] == row["expected"] == 30 * row["players"]
    assert result["growth"]["epgm"] <= 1.2  # one multicast copy, whatever the number
    assert result["growth"]["tcp"] >= 3.2  # a copy per player
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tag not in names


def test_players_get_the_game_over_multicast(lan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The real game: the front and a relay serving epgm on one host; Bob on the LAN plays with
    `crossroads play --updates epgm://...` (actions over tcp); Alice, elsewhere, says something
    in his room, and Bob sees it, carried by multicast with packets lost and repaired."""
    pair, procs, _ = lan
    pair.drop(pair.ns_b, [odata_rule("epgm", n).replace("5555", str(PORT)) for n in (1, 2)])
    # The front's keys and the relay's pinned upstream key stay in this test's directory.
    # Serve's local worker port too (killed outright at the end, serve cannot remove it).
    servers_data = {"XDG_DATA_HOME": str(tmp_path / "servers"), "XDG_RUNTIME_DIR": str(tmp_path)}
    serve = Proc(
        pair.ns_a,
        [
            "-m",
            "crossroads",
            "serve",
            "--workers",
            "1",
            "--store",
            f"sqlite:///{tmp_path / 'game.db'}",
            "--actions-bind",
            f"tcp://{pair.address_a}:0",
            "--updates-bind",
            "tcp://127.0.0.1:0",
            "--workers-bind",
            "tcp://127.0.0.1:0",
        ],
        tmp_path / "serve.log",
        env=servers_data,
    )
    procs.append(serve)
    actions = serve.wait_for(r"^actions (\S+)")[1]
    updates = serve.wait_for(r"^updates (\S+)")[1]
    key_endpoint = serve.wait_for(r"^key (\S+)")[1]  # CURVE actions: players learn the key
    serve.wait_for("^ready", timeout=60)
    relay = Proc(
        pair.ns_a,
        [
            "-m",
            "relay.cli",
            "--upstream",
            updates,
            "--upstream-key-endpoint",  # the front's key, learnt on first use (CURVE upstream)
            key_endpoint,
            "--stats-interval",
            "1",  # its log says what it forwarded, should this test fail
            "--bind",
            f"epgm://{pair.address_a};{GROUP}:{PORT}",
        ],
        tmp_path / "relay.log",
        env=servers_data,
    )
    procs.append(relay)
    relay.wait_for("^ready")

    def play(ns: str, name: str, updates_endpoint: str, *extra: str) -> Proc:
        env = {"CROSSROADS_PASSWORD": f"{name}-password", "XDG_DATA_HOME": str(tmp_path / name)}
        args = [
            "-m",
            "crossroads",
            "play",
            "--name",
            name,
            "--server",
            actions,
            "--updates",
            updates_endpoint,
            "--key-endpoint",
            key_endpoint,
            *extra,
        ]
        proc = Proc(ns, args, tmp_path / f"{name}.log", env=env)
        procs.append(proc)
        return proc

    bob = play(pair.ns_b, "Bob", f"epgm://{pair.address_b};{GROUP}:{PORT}")
    bob.wait_for("Exits: north, south, east, west", timeout=60)  # logged in, in the crossroads
    script = tmp_path / "alice.txt"
    script.write_text("say hello over multicast\nsay and once more\n")
    alice = play(pair.ns_a, "Alice", updates, "--script", str(script))
    alice.wait_for("Goodbye, Alice", timeout=60)
    bob.wait_for('Alice says, "hello over multicast"', timeout=30)
    bob.wait_for('Alice says, "and once more"', timeout=30)
    assert pair.dropped(pair.ns_b) == [1, 1]  # two of the relay's packets were lost, repaired
