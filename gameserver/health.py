#!/usr/bin/env -S python3 -IS
"""Cheap health checks: `crossroads-health` in the image, `crossroads health` anywhere.

Docker runs a container's health check every few seconds, for every container, so it has to
cost next to nothing. `crossroads ping` pays ~0.7 s of CPU importing the engine, pydantic and
orjson; this module imports only the interpreter's built-in modules and is meant to run as
``python3 -IS health.py`` (no site-packages), which costs ~15 ms of CPU in all.

  front ENDPOINT [--min-workers N]  one ping round trip to the front's actions ROUTER; a front
                                     whose player ports speak CURVE (the default) is asked on
                                     its key announcement instead (the port below), a
                                     round trip through the same event loop
  key ENDPOINT                       the key announcement answers with a public key
  relay ENDPOINT                     the relay's stats REP says "ok": its upstream links are up
  file [PATH] [--max-age SECONDS]    a liveness file is fresh (PATH: $CROSSROADS_HEALTH_FILE)

Options: --timeout SECONDS (network checks; default 2), -q/--quiet. Exit 0 healthy, 1 not,
2 for bad arguments. Long-running roles keep the liveness file fresh (`touch`) while they are
well: the front while it serves, a worker while it hears the front, a relay while its upstream
links are up. The image's HEALTHCHECK is the file check, so it fits every role.

The network checks speak just enough ZMTP 3.1 (RFC 23/37, NULL mechanism) to be a REQ socket:
greeting, READY, one request, one reply. Every size read from the peer is capped, and a peer
that breaks the protocol is simply unhealthy.
"""

from __future__ import annotations

import math
import os
import sys
import time

TYPE_CHECKING = False  # `typing` itself costs imports; checkers see the annotations anyway
if TYPE_CHECKING:
    from collections.abc import Callable

    Reader = Callable[[int], bytes]

#: Network checks answer fast or fail: a healthy front or relay replies in milliseconds, and the
#: checker must finish well inside Docker's own timeout.
DEFAULT_TIMEOUT_S = 2.0
#: A liveness file older than this is stale. Writers touch it every second or so
#: (TOUCH_EVERY_S); a worker stops as soon as it has not heard the front for its heartbeat
#: liveness (3 s by default), so ten seconds means "really gone", not "one slow beat".
DEFAULT_MAX_AGE_S = 10.0
#: How often a healthy process touches its liveness file.
TOUCH_EVERY_S = 1.0
#: The environment variable that names the liveness file (set by the image).
HEALTH_FILE_ENV = "CROSSROADS_HEALTH_FILE"
#: A pong, a relay's answer or a peer's READY is at most a few hundred bytes; anything larger
#: than this is not a healthy Crossroads peer, and we never buffer it.
MAX_FRAME = 64 * 1024
#: A REQ reply is [empty delimiter, body]; allow a little more, never an endless stream.
MAX_FRAMES = 4
#: The front's health request and the relay's (gameserver.front.PING_BODY; relay.forwarder).
PING_BODY = b'{"v":1,"type":"ping"}'
PONG_MARK = b'"type":"pong"'
RELAY_HEALTH = b"health"
#: The key announcement's request and its answer's size (gameserver.cluster_keys).
KEY_REQUEST = b"KEY?"
KEY_LENGTH = 40
RELAY_OK = b"ok"

# ZMTP 3.1 wire constants (RFC 37).
_GREETING = (
    b"\xff"
    + b"\x00" * 8
    + b"\x7f"  # signature
    + b"\x03\x01"  # version 3.1
    + b"NULL".ljust(20, b"\x00")  # mechanism
    + b"\x00"  # as-server: no
    + b"\x00" * 31  # filler
)
_FLAG_MORE, _FLAG_LONG, _FLAG_COMMAND = 0x01, 0x02, 0x04
_READY = b"\x05READY\x0bSocket-Type\x00\x00\x00\x03REQ"


class Unhealthy(Exception):
    """The check failed; the message says why, in one line."""


class SpeaksCurve(Unhealthy):
    """The peer's greeting asks for CURVE, which this standard-library checker cannot speak."""


class _Conn:
    """A blocking TCP connection with one deadline for everything read or written."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        import _socket  # the C module: `socket` itself costs ~15 ms of imports

        self._socket_module = _socket
        self.deadline = time.monotonic() + timeout
        host, port = _parse_tcp(endpoint)
        try:
            # Bytes, not str: a str host drags in the idna codec, whose imports cost ~30 ms.
            family, kind, proto, _, address = _socket.getaddrinfo(
                host.encode("ascii"), port, 0, _socket.SOCK_STREAM
            )[0]
            self.sock = _socket.socket(family, kind, proto)
        except (OSError, UnicodeError) as exc:
            raise Unhealthy(f"cannot resolve {endpoint}: {exc}") from None
        try:
            self.sock.settimeout(self._left())
            self.sock.connect(address)
        except OSError as exc:
            self.sock.close()
            raise Unhealthy(f"cannot connect to {endpoint}: {_reason(exc)}") from None
        self.buffer = b""

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Unhealthy("no answer in time")
        return left

    def send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(self._left())
            self.sock.sendall(data)
        except OSError as exc:
            raise Unhealthy(f"send failed: {_reason(exc)}") from None

    def read(self, count: int) -> bytes:
        """Exactly ``count`` bytes (``count`` is always capped by the caller)."""
        while len(self.buffer) < count:
            try:
                self.sock.settimeout(self._left())
                chunk = self.sock.recv(max(count - len(self.buffer), 4096))
            except OSError as exc:
                raise Unhealthy(f"receive failed: {_reason(exc)}") from None
            if not chunk:
                raise Unhealthy("the peer closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def close(self) -> None:
        self.sock.close()


def _reason(exc: OSError) -> str:
    return "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))


def _parse_tcp(endpoint: str) -> tuple[str, int]:
    """``tcp://host:port`` (``[v6]`` allowed; ``*`` means this machine) as (host, port)."""
    if not endpoint.startswith("tcp://"):
        raise Unhealthy(f"not a tcp:// endpoint: {endpoint!r}")
    host, sep, port = endpoint[len("tcp://") :].rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise Unhealthy(f"expected tcp://HOST:PORT, got {endpoint!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return ("127.0.0.1" if host in ("*", "0.0.0.0") else host), int(port)


def read_frame(read: Reader) -> tuple[int, bytes]:
    """One ZMTP frame as (flags, body); ``read(n)`` returns exactly n bytes or raises."""
    flags = read(1)[0]
    if flags & ~(_FLAG_MORE | _FLAG_LONG | _FLAG_COMMAND):
        raise Unhealthy(f"not ZMTP: reserved frame flags 0x{flags:02x}")
    size = int.from_bytes(read(8), "big") if flags & _FLAG_LONG else read(1)[0]
    if size > MAX_FRAME:
        raise Unhealthy(f"frame of {size} bytes is over the {MAX_FRAME}-byte cap")
    return flags, read(size)


def read_greeting(read: Reader) -> None:
    """The peer's 64-byte greeting: a ZMTP 3.x peer offering the NULL mechanism."""
    greeting = read(64)
    if greeting[0] != 0xFF or greeting[9] & 0x01 != 0x01:
        raise Unhealthy("the peer does not speak ZMTP")
    if greeting[10] < 3:
        raise Unhealthy(f"the peer speaks ZMTP {greeting[10]}.x, not 3.x")
    if greeting[12:32] == b"CURVE".ljust(20, b"\x00"):
        raise SpeaksCurve("the peer speaks CURVE")
    if greeting[12:32] != b"NULL".ljust(20, b"\x00"):
        raise Unhealthy("the peer wants a security mechanism other than NULL")


def read_reply(read: Reader) -> bytes:
    """The peer's READY, then the body of the first REQ-framed reply (commands are skipped)."""
    flags, body = read_frame(read)
    if not flags & _FLAG_COMMAND or not body.startswith(b"\x05READY"):
        raise Unhealthy("the peer did not send READY")
    frames: list[bytes] = []
    while True:
        flags, body = read_frame(read)
        if flags & _FLAG_COMMAND:
            continue  # a heartbeat PING (ZMTP 3.1): a one-shot check need not answer it
        frames.append(body)
        if len(frames) > MAX_FRAMES:
            raise Unhealthy(f"a reply of more than {MAX_FRAMES} frames")
        if not flags & _FLAG_MORE:
            break
    if len(frames) != 2 or frames[0] != b"":
        raise Unhealthy("the reply is not REQ-framed ([empty, body])")
    return frames[1]


def request(endpoint: str, body: bytes, timeout: float = DEFAULT_TIMEOUT_S) -> bytes:
    """Send ``body`` as a REQ socket would and return the reply's body."""
    conn = _Conn(endpoint, timeout)
    try:
        conn.send(_GREETING)
        read_greeting(conn.read)
        conn.send(bytes((_FLAG_COMMAND, len(_READY))) + _READY)
        size = len(body).to_bytes(8, "big") if len(body) > 255 else bytes((len(body),))
        flag = _FLAG_LONG if len(body) > 255 else 0
        conn.send(bytes((_FLAG_MORE, 0, flag)) + size + body)
        return read_reply(conn.read)
    finally:
        conn.close()


def check_key(endpoint: str, timeout: float) -> str:
    reply = request(endpoint, KEY_REQUEST, timeout)
    if len(reply) != KEY_LENGTH:
        raise Unhealthy("the answer is not a public key")
    return "key announced"


def check_front(endpoint: str, timeout: float, min_workers: int) -> str:
    try:
        reply = request(endpoint, PING_BODY, timeout)
    except SpeaksCurve:
        # Secure player ports: the announcement beside them (the port below) is answered by
        # the same event loop, so it shows the front alive. Its workers' count is sealed.
        if min_workers > 0:
            raise Unhealthy("--min-workers needs `crossroads ping` on a CURVE front") from None
        host, port = _parse_tcp(endpoint)
        host = f"[{host}]" if ":" in host else host
        return "CURVE; " + check_key(f"tcp://{host}:{port - 1}", timeout)
    if PONG_MARK not in reply:
        raise Unhealthy("the answer is not a pong")
    if min_workers <= 0:
        return "pong"
    import json  # only here: it costs more than the rest of the check

    workers = json.loads(reply).get("workers")
    if not isinstance(workers, int) or workers < min_workers:
        raise Unhealthy(f"{workers} worker(s) connected, fewer than {min_workers}")
    return f"pong, {workers} worker(s)"


def check_relay(endpoint: str, timeout: float) -> str:
    reply = request(endpoint, RELAY_HEALTH, timeout)
    if reply != RELAY_OK:
        raise Unhealthy(reply[:200].decode("utf-8", "replace"))
    return "ok"


def check_file(path: str, max_age: float) -> str:
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError as exc:
        raise Unhealthy(f"{path}: {exc.strerror}") from None
    if age > max_age:
        raise Unhealthy(f"{path} is {age:.0f}s old (more than {max_age:g}s)")
    return f"fresh ({age:.1f}s)"


def touch(path: str) -> None:
    """Mark this process alive now; a missing directory is made, errors are the caller's."""
    try:
        os.utime(path)
    except FileNotFoundError:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "ab"):
            pass


class Toucher:
    """Touches the liveness file at most every TOUCH_EVERY_S; call ``beat()`` when healthy."""

    def __init__(self, path: str | None) -> None:
        self.path = path or None
        self._next = 0.0

    def due_in(self, now: float) -> float | None:
        """Seconds until the next touch is due (None: no file to touch)."""
        return None if self.path is None else max(0.0, self._next - now)

    def beat(self, now: float) -> None:
        if self.path is None or now < self._next:
            return
        self._next = now + TOUCH_EVERY_S
        try:
            touch(self.path)
        except OSError as exc:  # a read-only or full disk must not stop the game
            print(f"health file {self.path}: {exc.strerror}", file=sys.stderr)
            self.path = None


USAGE = """usage: crossroads-health front ENDPOINT [--min-workers N] [--timeout S] [-q]
       crossroads-health key ENDPOINT [--timeout S] [-q]
       crossroads-health relay ENDPOINT [--timeout S] [-q]
       crossroads-health file [PATH] [--max-age S] [-q]"""


def _number(flag: str, text: str | None, kind: type) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} needs a number") from None
    if not math.isfinite(value):  # float() takes "nan", which passes `< 0`
        raise ValueError(f"{flag} needs a finite number")
    if value < 0:
        raise ValueError(f"{flag} must not be negative")
    return value


def parse(argv: list[str]) -> tuple[str, str | None, dict[str, float], bool]:
    """(check, target, options, quiet); raises ValueError with a one-line message."""
    if not argv or argv[0] not in ("front", "key", "relay", "file"):
        raise ValueError("the first argument is the check: front, key, relay or file")
    check, rest = argv[0], list(argv[1:])
    options: dict[str, float] = {}
    allowed = {"front": ("--timeout", "--min-workers"), "relay": ("--timeout",)}
    allowed["key"] = ("--timeout",)
    allowed["file"] = ("--max-age",)
    target, quiet = None, False
    while rest:
        word = rest.pop(0)
        if word in ("-q", "--quiet"):
            quiet = True
        elif word in allowed[check]:
            kind = int if word == "--min-workers" else float
            options[word] = _number(word, rest.pop(0) if rest else None, kind)
        elif word.startswith("-"):
            raise ValueError(f"{check}: unknown option {word}")
        elif target is None:
            target = word
        else:
            raise ValueError(f"{check}: unexpected argument {word!r}")
    if check != "file" and target is None:
        raise ValueError(f"{check}: which endpoint? e.g. tcp://127.0.0.1:7301")
    return check, target, options, quiet


def run(check: str, target: str | None, options: dict[str, float]) -> str:
    timeout = options.get("--timeout", DEFAULT_TIMEOUT_S) or DEFAULT_TIMEOUT_S
    if check == "front":
        return check_front(str(target), timeout, int(options.get("--min-workers", 0)))
    if check == "relay":
        return check_relay(str(target), timeout)
    if check == "key":
        return check_key(str(target), timeout)
    path = target or os.environ.get(HEALTH_FILE_ENV)
    if not path:
        raise Unhealthy(f"no liveness file: give PATH or set {HEALTH_FILE_ENV}")
    return check_file(path, options.get("--max-age", DEFAULT_MAX_AGE_S))


def main(argv: list[str] | None = None, prog: str = "crossroads-health") -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(word in ("-h", "--help") for word in argv):
        print(USAGE.replace("crossroads-health", prog) + "\n\n" + __doc__.split("\n\n", 1)[1])
        return 0
    try:
        check, target, options, quiet = parse(argv)
    except ValueError as exc:
        print(f"{prog}: {exc}\n{USAGE.replace('crossroads-health', prog)}", file=sys.stderr)
        return 2
    try:
        said = run(check, target, options)
    except Unhealthy as exc:
        if not quiet:
            print(f"{prog}: unhealthy: {exc}", file=sys.stderr)
        return 1
    if not quiet:
        print(f"{check} {target or ''} healthy: {said}".replace("  ", " "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
