"""What changed in a mailbox: one event per object, as the change log and webhooks carry it.

Adapters report the changes they find on a server through a :class:`ChangeSink` the service
layer hands them (mailgate.gateway.changes), inside the transaction that stores what they
found, so an event exists exactly when its change does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field
from sqlmodel import Session

from mailgate.domain.base import ResponseModel

Kind = Literal["message", "folder"]
Change = Literal["created", "updated", "destroyed"]

_EVENT_SUFFIX: dict[Change, str] = {
    "created": "created",
    "updated": "updated",
    "destroyed": "deleted",
}


@dataclass
class Event:
    """One change of one object; ``data`` is what a webhook carries (a message summary or a
    folder), else just the id."""

    kind: Kind
    object_id: str
    change: Change
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def webhook_type(self) -> str:
        return f"{self.kind}.{_EVENT_SUFFIX[self.change]}"


def payload(model: BaseModel) -> dict[str, Any]:
    """What a webhook carries for a message summary or a folder: its JSON, as the API shows it."""
    return model.model_dump(mode="json", by_alias=True)


class ChangeSink(Protocol):
    """Records the changes of one account in ``session``'s transaction: the change log, and
    (unless ``webhooks`` is false: mail that was there before anyone watched) the webhooks."""

    def __call__(self, session: Session, events: list[Event], *, webhooks: bool = True) -> None:
        """Record ``events`` in the caller's transaction."""


class KindChanges(ResponseModel):
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    destroyed: list[str] = Field(default_factory=list)


class Changes(ResponseModel):
    """The answer of ``/changes``: what changed between a state and ``state``."""

    state: str = Field(description="Pass it as `since` next time.")
    created: list[str] = Field(description="Ids of messages and folders made since then.")
    updated: list[str] = Field(description="Ids whose content, flags or folder changed.")
    destroyed: list[str] = Field(description="Ids that are gone.")
    messages: KindChanges = Field(description="The same, messages only.")
    folders: KindChanges = Field(description="The same, folders only.")
    has_more_changes: bool = Field(description="Ask again with the new state for the rest.")
