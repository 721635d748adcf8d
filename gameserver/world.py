"""The static world - rooms, items, NPCs, clock - loaded from a TOML file and validated.

The file is data, so a typo must fail at load time with a message naming the entry, e.g.
``rooms.hall.exits.north -> "nowhere": no such room``, never as a confusing in-game bug later.
Mutable state (where things are now) lives in the store; this module only describes the start.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from .protocol import DIRECTIONS

OPPOSITE: dict[str, str] = {
    "north": "south",
    "south": "north",
    "east": "west",
    "west": "east",
    "northeast": "southwest",
    "southwest": "northeast",
    "northwest": "southeast",
    "southeast": "northwest",
    "up": "down",
    "down": "up",
}
DEFAULT_WORLD_FILE = "default_world.toml"

# Ids become topic names (room.<id>) and store keys, hence the narrow alphabet.
_ID_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=120)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class WorldError(ValueError):
    """The world file is unreadable or inconsistent; the message names every bad entry."""


class _Def(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoomDef(_Def):
    id: str = ""
    name: ShortText
    description: LongText
    exits: dict[str, str] = Field(default_factory=dict)
    outdoors: bool = True


class ItemDef(_Def):
    id: str = ""
    name: ShortText
    article: str = "a"
    aliases: list[ShortText] = Field(default_factory=list)
    description: LongText
    room: str
    takeable: bool = True

    @property
    def indefinite(self) -> str:
        """Name with its article, for listings ("a brass lamp")."""
        return f"{self.article} {self.name}" if self.article else self.name


class NpcDef(_Def):
    id: str = ""
    name: ShortText
    description: LongText
    room: str
    # `route` is walked in a cycle; `roam` is a set of rooms wandered at random. At most one.
    route: list[str] = Field(default_factory=list)
    roam: list[str] = Field(default_factory=list)
    lines: list[ShortText] = Field(default_factory=list)
    move_every: int = Field(default=3, ge=1)
    talk_every: int = Field(default=4, ge=1)


class PhaseDef(_Def):
    name: ShortText
    message: ShortText


class ClockDef(_Def):
    tick_seconds: float = Field(default=10.0, gt=0)
    ticks_per_phase: int = Field(default=30, ge=1)
    phases: list[PhaseDef] = Field(
        default_factory=lambda: [PhaseDef(name="day", message="The day goes on.")], min_length=1
    )

    def phase_at(self, turn: int) -> PhaseDef:
        return self.phases[(turn // self.ticks_per_phase) % len(self.phases)]


class WorldInfo(_Def):
    name: ShortText
    start_room: str
    welcome: LongText = "Welcome."


class World(_Def):
    world: WorldInfo
    clock: ClockDef = Field(default_factory=ClockDef)
    rooms: dict[str, RoomDef] = Field(min_length=1)
    items: dict[str, ItemDef] = Field(default_factory=dict)
    npcs: dict[str, NpcDef] = Field(default_factory=dict)

    @property
    def start_room(self) -> str:
        return self.world.start_room

    @cached_property
    def digest(self) -> str:
        """Fingerprint of the definition, to notice when a store was seeded from another file."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def room(self, room_id: str) -> RoomDef:
        return self.rooms[room_id]


def _fill_ids(data: dict[str, Any]) -> dict[str, Any]:
    """Copy each table key into the entry's ``id`` so entries are self-describing."""
    filled = dict(data)
    for section in ("rooms", "items", "npcs"):
        entries = data.get(section)
        if isinstance(entries, dict):
            filled[section] = {
                key: {**value, "id": key} if isinstance(value, dict) else value
                for key, value in entries.items()
            }
    return filled


def _structure_errors(exc: ValidationError) -> list[str]:
    messages = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "<top>"
        messages.append(f"{where}: {error['msg']}")
    return messages


def _reference_errors(world: World) -> list[str]:
    errors: list[str] = []
    id_ok = re.compile(_ID_PATTERN).match
    for section in ("rooms", "items", "npcs"):
        for key in getattr(world, section):
            if not id_ok(key):
                errors.append(f"{section}.{key}: invalid id (lowercase letters, digits, _)")
    rooms = world.rooms
    if world.start_room not in rooms:
        errors.append(f'world.start_room -> "{world.start_room}": no such room')
    for room in rooms.values():
        for direction, target in room.exits.items():
            where = f"rooms.{room.id}.exits.{direction}"
            if direction not in DIRECTIONS:
                errors.append(f"{where}: not a direction (use {', '.join(DIRECTIONS)})")
            if target not in rooms:
                errors.append(f'{where} -> "{target}": no such room')
    for item in world.items.values():
        if item.room not in rooms:
            errors.append(f'items.{item.id}.room -> "{item.room}": no such room')
    for npc in world.npcs.values():
        errors.extend(_npc_errors(npc, rooms))
    return errors


def _npc_errors(npc: NpcDef, rooms: dict[str, RoomDef]) -> list[str]:
    where = f"npcs.{npc.id}"
    errors = []
    if npc.room not in rooms:
        errors.append(f'{where}.room -> "{npc.room}": no such room')
    if npc.route and npc.roam:
        errors.append(f"{where}: give either route or roam, not both")
    for field in ("route", "roam"):
        for index, room_id in enumerate(getattr(npc, field)):
            if room_id not in rooms:
                errors.append(f'{where}.{field}[{index}] -> "{room_id}": no such room')
    if errors:
        return errors
    wander = npc.route or npc.roam
    if wander and npc.room not in wander:
        errors.append(
            f'{where}.room -> "{npc.room}": not on its {"route" if npc.route else "roam"}'
        )
    # NPCs walk, they do not teleport: each step of a route must be a real exit.
    route = npc.route
    for index, here in enumerate(route if len(route) > 1 else []):
        there = route[(index + 1) % len(route)]
        if there not in rooms[here].exits.values():
            errors.append(f'{where}.route[{index}] "{here}" -> "{there}": no exit connects them')
    return errors


def parse_world(data: dict[str, Any], source: str = "<world>") -> World:
    """Validate already-parsed TOML data; raises :class:`WorldError` listing every problem."""
    try:
        world = World.model_validate(_fill_ids(data))
    except ValidationError as exc:
        raise WorldError(f"{source}: invalid world\n  " + "\n  ".join(_structure_errors(exc)))
    errors = _reference_errors(world)
    if errors:
        raise WorldError(f"{source}: invalid world\n  " + "\n  ".join(errors))
    return world


def load_world(path: str | Path | None = None) -> World:
    """Load and validate a world file; ``None`` means the packaged default world."""
    if path is None:
        source = f"gameserver/{DEFAULT_WORLD_FILE}"
        raw = resources.files("gameserver").joinpath(DEFAULT_WORLD_FILE).read_bytes()
    else:
        source = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise WorldError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WorldError(f"{source}: not valid TOML: {exc}") from None
    return parse_world(data, source)
