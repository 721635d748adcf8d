"""What a player chose for themselves: a description, a home, nicks, who they ignore, the
channels they left. One small record per player, read and written only by the commands that
change it (in their transaction), so nothing else in the store grows a field for it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .store.state import GameState

#: The store namespace of profiles (a record per player key).
PROFILE = "profile"
MAX_DESCRIPTION_CHARS = 300
MAX_NICKS = 20
MAX_IGNORED = 50


class Profile(BaseModel):
    """Defaults mean "never set": a player without a record has this one."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    description: str = ""
    home: str | None = None  # a room id; None: the world's start room
    nicks: dict[str, str] = Field(default_factory=dict)  # word -> the line it stands for
    ignoring: list[str] = Field(default_factory=list)  # player keys, sorted
    left_channels: list[str] = Field(default_factory=list)  # every channel is joined by default


def load_profile(state: GameState, key: str) -> Profile:
    raw = state.tx.get(PROFILE, key)
    return Profile() if raw is None else Profile.model_validate(raw)


def save_profile(state: GameState, key: str, profile: Profile) -> None:
    state.tx.put(PROFILE, key, profile.model_dump())
