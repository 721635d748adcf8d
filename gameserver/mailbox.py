"""Pages for players who are offline: kept per recipient, delivered on their private topic at
their next login (the client follows a new private topic from its start, so it fetches them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .events import EventDraft
from .store.records import PlayerRecord
from .store.state import GameState

#: The store namespace of mailboxes (one per recipient key).
MAILBOX = "mailbox"
#: Pages kept per recipient; past this the sender is told the mailbox is full.
MAX_WAITING_PAGES = 20
#: Pages kept from one sender for one recipient: one player cannot fill another's mailbox
#: and so keep everyone else's pages out.
MAX_PAGES_FROM_ONE = 5


class WaitingPage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    sender: str
    message: str
    sent: float


class Mailbox(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    pages: list[WaitingPage] = Field(default_factory=list)


def page_text(sender: str, message: str) -> str:
    return f'{sender} pages you, "{message}"'


class PageRefused(Exception):
    """A page cannot be kept; the message says why, in the sender's words."""


def leave_page(state: GameState, recipient: str, page: WaitingPage) -> None:
    """Queue ``page`` for ``recipient`` (a player key); raises :class:`PageRefused` if their
    mailbox is full, or holds :data:`MAX_PAGES_FROM_ONE` from this sender already."""
    raw = state.tx.get(MAILBOX, recipient)
    box = Mailbox() if raw is None else Mailbox.model_validate(raw)
    if sum(1 for kept in box.pages if kept.sender == page.sender) >= MAX_PAGES_FROM_ONE:
        raise PageRefused(
            f"You have left {MAX_PAGES_FROM_ONE} pages waiting already; "
            "more can wait after they log in."
        )
    if len(box.pages) >= MAX_WAITING_PAGES:
        raise PageRefused("Their mailbox is full; try again after they log in.")
    state.tx.put(MAILBOX, recipient, Mailbox(pages=[*box.pages, page]).model_dump())


def deliver_pages(state: GameState, player: PlayerRecord) -> list[EventDraft]:
    """The waiting pages of ``player``, as events on their (new) private topic; the mailbox
    is emptied in the same transaction, so each page is delivered once."""
    raw = state.tx.get(MAILBOX, player.key)
    if raw is None or player.private_topic is None:
        return []
    state.tx.delete(MAILBOX, player.key)
    drafts = []
    for page in Mailbox.model_validate(raw).pages:
        text = page_text(page.sender, page.message) + " (while you were away)"
        data = {"sender": page.sender, "message": page.message, "sent": page.sent}
        drafts.append(EventDraft(player.private_topic, "page", text, page.sender, dict(data)))
    return drafts
