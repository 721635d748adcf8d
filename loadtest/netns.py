"""Two network namespaces joined by a veth pair, with a multicast route: a LAN of two hosts.

Multicast transports (PGM, EPGM, UDP to a group) need a real interface: OpenPGM refuses the
loopback, and a multicast group on ``lo`` proves nothing about a LAN. `VethPair` builds the
smallest LAN that does: namespaces ``a`` and ``b``, one veth between them, the documentation
addresses ``192.0.2.1`` and ``192.0.2.2`` (RFC 5737, so nothing routable is ever touched), and a
route for ``224.0.0.0/4`` on the veth so multicast leaves by it.

Names carry a per-run tag (the PID plus a counter), so parallel runs never collide; the
addresses can repeat because each pair lives in its own namespaces. `up` and `down` are
idempotent. `reap_stale` deletes pairs left by runs that died (their PID is gone). Processes
started with `spawn` are killed by PID in `down`. Loss is injected with nftables (`drop`): this
kernel may lack ``sch_netem``, and a rule that drops chosen packets is deterministic anyway.

Needs root and iproute2; `unavailable()` says why it cannot run here, for a test to skip.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

#: Every name this module creates starts with this, so stale pairs can be found and reaped.
PREFIX = "crx"
#: Bound on one ip/nft command: they are local and quick; a hung one is a broken machine.
COMMAND_TIMEOUT = 20.0
#: Interface names are limited to 15 bytes by the kernel (IFNAMSIZ - 1).
IFNAME_MAX = 15
ADDRESS_A, ADDRESS_B = "192.0.2.1", "192.0.2.2"
PREFIX_LEN = 24
MULTICAST_ROUTE = "224.0.0.0/4"

_counter = itertools.count()


def sh(*cmd: str, check: bool = True, input_text: str | None = None) -> str:
    """Run one command; stdout, or RuntimeError with its stderr when `check` and it fails."""
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, input=input_text
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def unavailable() -> str | None:
    """Why two namespaces cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs `ip` (iproute2)"
    probe = f"{PREFIX}probe{os.getpid()}"
    try:
        sh("ip", "netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` fails here: {exc}"
    sh("ip", "netns", "del", probe, check=False)
    return None


def nft_unavailable() -> str | None:
    """Why `VethPair.drop` cannot inject loss here, or None."""
    if shutil.which("nft") is None:
        return "needs `nft` (nftables) to inject packet loss"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: One file every process on this machine locks while it reaps (see `reap_lock`).
REAP_LOCK_PATH = os.path.join(tempfile.gettempdir(), "crossroads-netns-reap.lock")


@contextmanager
def reap_lock() -> Iterator[None]:
    """Held while stale pairs are reaped, and by whoever builds a pair that looks stale on
    purpose (a test of the reaping): another process's reap, which kills what runs in a stale
    namespace, would otherwise kill the `ip` commands still building it."""
    with open(REAP_LOCK_PATH, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def reap_stale() -> list[str]:
    """Delete namespaces this module made for runs whose process is gone; returns their names."""
    reaped = []
    with reap_lock():
        for line in sh("ip", "netns", "list", check=False).splitlines():
            name = line.split()[0] if line.split() else ""
            m = re.fullmatch(rf"{PREFIX}([ab])(\d+)x\d+", name)
            if m and not _pid_alive(int(m[2])):
                _kill_namespace_processes(name)
                sh("ip", "netns", "del", name, check=False)
                reaped.append(name)
    return reaped


def kill(process: subprocess.Popen[Any]) -> None:
    """SIGKILL `process` by its PID (if it still runs), reap it, and close its pipes."""
    if process.poll() is None:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(COMMAND_TIMEOUT)
    for stream in (process.stdin, process.stdout, process.stderr):
        try:
            if stream is not None:
                stream.close()
        except OSError:  # BrokenPipeError: unflushed input the dead process never read
            pass


def _kill_namespace_processes(ns: str) -> None:
    """SIGKILL, by PID, whatever still runs in `ns` (it was started there by this module)."""
    for pid in sh("ip", "netns", "pids", ns, check=False).split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


class VethPair:
    """Namespaces `ns_a` (192.0.2.1 on `dev_a`) and `ns_b` (192.0.2.2 on `dev_b`), one veth.

    With `existing_a`, side a is a namespace someone else made (a LAN behind a host that is
    already wired elsewhere): it gets the veth end and its address, and is left in place by
    `down`, which removes only side b (and with it the veth).
    """

    def __init__(self, tag: str | None = None, existing_a: str | None = None) -> None:
        self.tag = tag or f"{os.getpid()}x{next(_counter)}"
        # Namespaces and interfaces are named apart by the kernel: each end uses one name.
        self.ns_a, self.ns_b = f"{PREFIX}a{self.tag}", f"{PREFIX}b{self.tag}"
        self.dev_a, self.dev_b = self.ns_a, self.ns_b
        self.existing_a = existing_a is not None
        if existing_a is not None:
            self.ns_a = existing_a
        for dev in (self.dev_a, self.dev_b):
            if len(dev) > IFNAME_MAX:
                raise ValueError(f"tag {self.tag!r} makes interface name {dev!r} too long")
        self.address_a, self.address_b = ADDRESS_A, ADDRESS_B
        self.processes: list[subprocess.Popen[Any]] = []
        self._up = False

    # -- lifecycle ---------------------------------------------------------------------------

    def up(self) -> VethPair:
        """Build both namespaces and the link (again, if a half-built pair is in the way)."""
        if self._up:
            return self
        self.down()
        try:
            if not self.existing_a:
                sh("ip", "netns", "add", self.ns_a)
            sh("ip", "netns", "add", self.ns_b)
            # Made straight inside the namespaces: the pair never appears on the host.
            sh("ip", "link", "add", self.dev_a, "netns", self.ns_a, "type", "veth",
               "peer", "name", self.dev_b, "netns", self.ns_b)  # fmt: skip
            for ns, dev, addr in self.ends():
                sh("ip", "-n", ns, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", dev)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "link", "set", dev, "up")
                sh("ip", "-n", ns, "route", "replace", MULTICAST_ROUTE, "dev", dev)
        except BaseException:
            self.down()
            raise
        self._up = True
        return self

    def down(self) -> None:
        """Kill what `spawn` started (by PID), then delete both namespaces; safe to repeat."""
        while self.processes:
            kill(self.processes.pop())
        if self.existing_a and self.ns_a in sh("ip", "netns", "list", check=False).split():
            # Deleting a namespace destroys its veth end, and the peer end in the namespace
            # that stays, only when the kernel gets round to it: delete our end there now.
            sh("ip", "-n", self.ns_a, "link", "del", self.dev_a, check=False)
        for ns in (self.ns_b,) if self.existing_a else (self.ns_a, self.ns_b):
            if ns in sh("ip", "netns", "list", check=False).split():
                _kill_namespace_processes(ns)
                sh("ip", "netns", "del", ns, check=False)
        self._up = False

    def __enter__(self) -> VethPair:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def ends(self) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
        """((namespace, device, address) of a, the same of b)."""
        return ((self.ns_a, self.dev_a, self.address_a), (self.ns_b, self.dev_b, self.address_b))

    # -- running things inside ---------------------------------------------------------------

    def spawn(self, ns: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside `ns` (``ip netns exec`` execs, so the PID is the program's);
        `down` kills it by PID."""
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **popen)
        self.processes.append(proc)
        return proc

    def run(self, ns: str, *cmd: str, check: bool = True) -> str:
        """Run a short command inside `ns`; its stdout."""
        return sh("ip", "netns", "exec", ns, *cmd, check=check)

    def tx_counters(self, ns: str, dev: str) -> tuple[int, int]:
        """(bytes, packets) the kernel sent out of `dev` in `ns` so far."""
        text = sh("ip", "-n", ns, "-s", "link", "show", "dev", dev)
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("TX:"):
                fields = lines[i + 1].split()
                return int(fields[0]), int(fields[1])
        raise RuntimeError(f"no TX counters for {dev} in {ns}: {text!r}")

    # -- loss --------------------------------------------------------------------------------

    def drop(self, ns: str, rules: Sequence[str]) -> None:
        """Drop packets arriving in `ns` that match any nft `rules` (one match expression each).

        The rules sit on the receiving side's prerouting hook: the packet crossed the wire and
        is lost before any socket sees it, while the sender gets no error (as with a lossy
        network, and unlike a drop on output, which makes ``sendto`` fail with EPERM).
        """
        self._rules(ns, "loss", rules, "drop")

    def dropped(self, ns: str) -> list[int]:
        """Packets each `drop` rule has dropped so far, in rule order."""
        return self._counters(ns, "loss")

    def clear_drops(self, ns: str) -> None:
        self.run(ns, "nft", "delete", "table", "ip", f"{PREFIX}loss", check=False)

    def count(self, ns: str, rules: Sequence[str]) -> None:
        """Count (and let through) packets arriving in `ns` that match each nft rule."""
        self._rules(ns, "count", rules, "accept")

    def counted(self, ns: str) -> list[int]:
        return self._counters(ns, "count")

    def _rules(self, ns: str, table: str, rules: Sequence[str], verdict: str) -> None:
        body = "\n".join(f"    {rule} counter {verdict}" for rule in rules)
        text = f"""
table ip {PREFIX}{table} {{
  chain pre {{
    type filter hook prerouting priority -300; policy accept;
{body}
  }}
}}
"""
        self.run(ns, "nft", "delete", "table", "ip", f"{PREFIX}{table}", check=False)
        sh("ip", "netns", "exec", ns, "nft", "-f", "-", input_text=text)

    def _counters(self, ns: str, table: str) -> list[int]:
        text = self.run(ns, "nft", "list", "table", "ip", f"{PREFIX}{table}")
        return [int(n) for n in re.findall(r"counter packets (\d+)", text)]
