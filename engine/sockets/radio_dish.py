"""RADIO and DISH (ZeroMQ RFC 48): groups instead of topic prefixes, one frame per message.

A DISH joins groups (exact names, up to 255 bytes); a RADIO sends each message to the peers
that joined its group, dropping for a peer at its high-water mark rather than blocking (unless
XPUB_NODROP). Over tcp a message travels as two frames, the group then the body, and joins and
leaves as ZMTP JOIN and LEAVE commands, which the codec turns into one-frame messages
``0x01 + group`` and ``0x00 + group`` (as SUB's subscriptions). Over udp nobody joins at the
sender: a udp pipe takes every group and the DISH filters what it reads, as libzmq does.

Inside the engine a message is ``[group, body]``; the face puts the group in and takes it out
(pyzmq's ``send(..., group=...)`` and ``Frame.group``).
"""

from __future__ import annotations

from .. import constants as c
from ..errors import ZMQError
from ..pipe import Message, Pipe
from ..udp_datagram import GROUP_MAX
from .parts import all_have_room, distribute, distribute_always
from .threadsafe import GROUP, ThreadSafeSocket

JOIN = b"\x01"
LEAVE = b"\x00"


def check_group(group: bytes) -> bytes:
    if len(group) > GROUP_MAX:
        raise ZMQError(c.EINVAL, f"a group is at most {GROUP_MAX} bytes, not {len(group)}")
    return group


class RadioSocket(ThreadSafeSocket):
    """Sends each message to the peers that joined its group; cannot receive."""

    socket_type = c.RADIO
    metadata = GROUP

    def __init__(self, *args) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args)
        #: group -> {pipe: joins}: a peer that joined twice must leave twice (libzmq's multimap).
        self.members: dict[bytes, dict[Pipe, int]] = {}
        #: Pipes that take every group (udp: the DISHes filter).
        self.everything: list[Pipe] = []

    def pipe_attached(self, pipe: Pipe) -> None:
        if pipe.takes_all:
            self.everything.append(pipe)

    def pipe_detached(self, pipe: Pipe) -> None:
        if pipe in self.everything:
            self.everything.remove(pipe)
        for group in [g for g, pipes in self.members.items() if pipe in pipes]:
            del self.members[group][pipe]
            if not self.members[group]:
                del self.members[group]

    def _read_joins(self) -> None:
        """Apply the JOINs and LEAVEs the DISHes sent."""
        inbox = self.inbox
        while True:
            msg = inbox.take()
            if msg is None:
                return
            pipe = inbox.pipe
            if len(msg) != 1 or not msg[0] or pipe is None:
                continue
            kind, group = msg[0][:1], msg[0][1:]
            if len(group) > GROUP_MAX:
                continue  # no DISH can have joined it: a peer's made-up command
            pipes = self.members.get(group)
            if kind == JOIN:
                if pipes is None:
                    pipes = self.members[group] = {}
                pipes[pipe] = pipes.get(pipe, 0) + 1
            elif kind == LEAVE and pipes and pipe in pipes:
                pipes[pipe] -= 1
                if not pipes[pipe]:
                    del pipes[pipe]
                    if not pipes:
                        del self.members[group]

    def _send(self, msg: Message) -> bool:
        if self.inbox.waiting():
            self._read_joins()
        members = self.members.get(msg[0])
        if self.everything:
            targets = [*(members or ()), *self.everything]
        elif members:
            targets = list(members)
        else:
            return True  # nobody joined: the message goes nowhere, as a publisher's would
        if self.options.xpub_nodrop and not all_have_room(targets):
            return False
        distribute(targets, msg)
        return True

    def can_send(self) -> bool:
        return True

    def can_recv(self) -> bool:
        return False


class DishSocket(ThreadSafeSocket):
    """Receives the messages of the groups it joined, fair-queued; cannot send."""

    socket_type = c.DISH
    metadata = GROUP

    def __init__(self, *args) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args)
        self.groups: set[bytes] = set()
        self.options.linger = 0  # as libzmq's DISH, for XSUB's reason (pubsub.py)

    def join(self, group: bytes) -> None:
        with self.lock:
            self._change(group, JOIN)

    def leave(self, group: bytes) -> None:
        with self.lock:
            self._change(group, LEAVE)

    def _change(self, group: bytes, kind: bytes) -> None:
        check_group(group)
        if self._commands:
            self.process_commands()
        joined = group in self.groups
        if kind == JOIN and joined:
            raise ZMQError(c.EINVAL, f"already joined {group!r}")
        if kind == LEAVE and not joined:
            raise ZMQError(c.EINVAL, f"not joined to {group!r}")
        if kind == JOIN:
            self.groups.add(group)
        else:
            self.groups.discard(group)
        distribute_always(self.pipes, [kind + group])

    def pipe_attached(self, pipe: Pipe) -> None:
        for group in self.groups:
            pipe.push([JOIN + group])

    pipe_reconnected = pipe_attached

    def _recv(self) -> Message | None:
        groups, take = self.groups, self.inbox.take
        while True:
            msg = take()
            if msg is None:
                return None
            # A well-formed message is [group, body]; anything else is not a RADIO's.
            if len(msg) == 2 and msg[0] in groups:
                return msg
