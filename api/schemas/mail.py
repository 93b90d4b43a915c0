"""Request and response models for folders and messages."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from mailgate.domain.accounts import Name
from mailgate.domain.base import ResponseModel, StrictModel
from mailgate.domain.mail import BatchResult, Folder, MessageChange

# RFC 3501 flag-keyword: an atom (printable ASCII minus atom-specials); system flags (\Seen...)
# are the boolean fields, so a leading backslash is refused too. "[" is refused as well,
# though an atom may hold it: Courier-IMAP refuses such a keyword, so it would work on some
# accounts only. One that another client set reads fine (adapters.imap.wire.fetch_answers).
Keyword = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=100, pattern=r"^[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+$"
    ),
]


def _no_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


FolderName = Annotated[Name, Field(min_length=1), AfterValidator(_no_blank)]


class FolderCreate(StrictModel):
    name: FolderName = Field(description="The new folder's name (one path segment).")
    parent_id: str | None = Field(None, description="Create inside this folder; null: top level.")


class FolderUpdate(StrictModel):
    """Rename (`name`) and/or move (`parent_id`; null moves to the top level)."""

    name: FolderName | None = None
    parent_id: str | None = None

    @model_validator(mode="after")
    def _something(self) -> FolderUpdate:
        if not self.model_fields_set:
            raise ValueError("give `name` and/or `parent_id`")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("`name` cannot be null")
        return self


class FolderList(ResponseModel):
    items: list[Folder]


class FlagChanges(StrictModel):
    seen: bool | None = Field(None, description="Read (\\Seen).")
    flagged: bool | None = Field(None, description="Starred (\\Flagged).")
    answered: bool | None = Field(None, description="Replied to (\\Answered).")
    draft: bool | None = Field(None, description="A draft (\\Draft).")
    keywords_add: list[Keyword] = Field(default_factory=list, max_length=50)
    keywords_remove: list[Keyword] = Field(default_factory=list, max_length=50)

    def to_change(self) -> MessageChange:
        return MessageChange(
            seen=self.seen,
            flagged=self.flagged,
            answered=self.answered,
            draft=self.draft,
            keywords_add=self.keywords_add,
            keywords_remove=self.keywords_remove,
        )


class MessageUpdate(FlagChanges):
    folder_id: str | None = Field(None, description="Move the message to this folder.")


class CopyRequest(StrictModel):
    folder_id: str = Field(description="The folder to copy into.")


class BatchRequest(FlagChanges):
    """One change for many messages: flags/keywords, a move (`folder_id`) or `delete`."""

    ids: list[str] = Field(min_length=1, max_length=500, description="Message ids.")
    folder_id: str | None = Field(None, description="Move them all to this folder.")
    delete: bool = Field(False, description="Delete them (to the trash, see `permanent`).")
    permanent: bool = Field(False, description="With `delete`: expunge instead of trash.")

    @model_validator(mode="after")
    def _one_action(self) -> BatchRequest:
        if self.delete and self.folder_id is not None:
            raise ValueError("`delete` and `folder_id` exclude each other")
        if self.permanent and not self.delete:
            raise ValueError("`permanent` needs `delete`")
        if not self.delete and self.folder_id is None and self.to_change().is_empty():
            raise ValueError("nothing to do: give flags, keywords, `folder_id` or `delete`")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("`ids` has duplicates")
        return self


class BatchResponse(ResponseModel):
    items: list[BatchResult]
