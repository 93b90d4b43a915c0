"""The examples the OpenAPI document shows are bodies the models accept, and answers give
every field of theirs."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from mailgate.api.schemas.common import Problem
from mailgate.domain.accounts import AccountCreate, AccountOut
from mailgate.domain.base import ResponseModel
from mailgate.domain.keys import KeyCreate, KeyCreated, KeyOut
from mailgate.domain.mail import Folder, Message, MessageSummary
from mailgate.domain.sending import ComposeRequest, SubmissionOut
from mailgate.domain.webhooks import WebhookCreate, WebhookCreated, WebhookOut

MODELS: list[type[BaseModel]] = [
    AccountCreate,
    AccountOut,
    Folder,
    MessageSummary,
    Message,
    WebhookCreate,
    WebhookOut,
    WebhookCreated,
    ComposeRequest,
    SubmissionOut,
    KeyCreate,
    KeyOut,
    KeyCreated,
    Problem,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_examples_are_valid(model: type[BaseModel]) -> None:
    shown = model.model_json_schema(mode="serialization")["examples"]
    assert shown, model
    for example in shown:
        parsed = model.model_validate(example)
        if issubclass(model, ResponseModel):  # an answer: every field, as it is sent
            assert parsed.model_dump(mode="json", by_alias=True) == example
