"""The change feed (``/changes``): what changed in an account since a state, for clients
that keep a copy (delta sync, JMAP style)."""

from __future__ import annotations

from sqlmodel import Session

from mailgate.domain.changes import Changes, KindChanges
from mailgate.domain.errors import CannotCalculateChanges
from mailgate.domain.ids import MAX_NUMBER
from mailgate.gateway.accounts import load_account
from mailgate.gateway.context import Gateway
from mailgate.store.changes import StateTooNew, changes_since, current_state

MAX_CHANGES = 10_000
# A state is "s" and the number of the account's last change seen. The bare numbers of
# before (the global log position) are unknown states: a resync, never a wrong delta.
_PREFIX = "s"


def state_string(number: int) -> str:
    """The state a client holds after the account's change ``number``."""
    return f"{_PREFIX}{number}"


def state_number(state: str) -> int | None:
    """The change number of a state, None when it is no state this API gave."""
    digits = state.removeprefix(_PREFIX)
    if digits == state or not (digits.isascii() and digits.isdigit()):
        return None
    number = int(digits)
    return number if number <= MAX_NUMBER else None


def get_changes(gw: Gateway, tenant_id: str, account_id: str, since: str | None) -> Changes:
    """What changed after the state ``since`` (None: the current state alone)."""
    with Session(gw.engine) as session:
        load_account(session, tenant_id, account_id)
    if since is None:
        return Changes(
            state=state_string(current_state(gw.engine, account_id)),
            created=[],
            updated=[],
            destroyed=[],
            messages=KindChanges(),
            folders=KindChanges(),
            has_more_changes=False,
        )
    number = state_number(since)
    if number is None:
        raise CannotCalculateChanges("Unknown state; resync.")
    try:
        delta = changes_since(gw.engine, account_id, number, MAX_CHANGES)
    except StateTooNew:
        raise CannotCalculateChanges("Unknown state; resync.") from None
    messages = KindChanges(
        created=delta.created["message"],
        updated=delta.updated["message"],
        destroyed=delta.destroyed["message"],
    )
    folders = KindChanges(
        created=delta.created["folder"],
        updated=delta.updated["folder"],
        destroyed=delta.destroyed["folder"],
    )
    return Changes(
        state=state_string(delta.state),
        created=folders.created + messages.created,
        updated=folders.updated + messages.updated,
        destroyed=folders.destroyed + messages.destroyed,
        messages=messages,
        folders=folders,
        has_more_changes=delta.state < current_state(gw.engine, account_id),
    )
