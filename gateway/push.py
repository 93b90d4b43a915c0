"""Event streams (Server-Sent Events, WHATWG HTML section 9.2): the events webhooks carry,
replayed from the change log for a browser, resumable at an event id.

An account's stream numbers its events with the change-feed state (``s42``, as ``/changes``
answers). The tenant-wide stream's id holds every account's state, ``t:acc_a:42,acc_b:7``
(accounts without changes left out), so that it too resumes exactly: nothing missed, nothing
repeated. An id this API did not give, or of a state an account never had, answers a
``resync`` event and the stream goes on from now.

Browsers' ``EventSource`` cannot send headers: :func:`issue_token` gives a short-lived token
for the query instead of the API key (which must not end up in URLs and their logs).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from mailgate.domain.errors import NotFound
from mailgate.domain.keys import KeyGrant
from mailgate.domain.push import TOKEN_TTL_MAX, EventToken, EventTokenCreate
from mailgate.gateway.accounts import load_account
from mailgate.gateway.context import Gateway
from mailgate.gateway.feed import state_number, state_string
from mailgate.store.changes import current_states, events_after
from mailgate.store.models import Account
from mailgate.store.outbox import iso_utc, logged

# Set when the process is told to stop (SIGTERM): open streams end at once, cleanly, and
# their clients reconnect (with Last-Event-ID) to a process that stays.
draining = threading.Event()

TOKEN_PURPOSE = "mgev"  # noqa: S105 - tokens read mgev_..., a prefix, not a secret
TENANT_PREFIX = "t:"
BATCH = 500  # events read at once; a fuller backlog is read in more rounds without waiting


@dataclass(frozen=True)
class Grant:
    """Who opens a stream: a tenant, the one account a token is bound to (if any), and the
    accounts the key is bound to (None: all)."""

    tenant_id: str
    account_id: str | None = None
    account_ids: frozenset[str] | None = None
    key_id: str | None = None  # the key it was opened with: the stream ends with the key

    @classmethod
    def of(cls, key: KeyGrant, account_id: str | None = None) -> Grant:
        return cls(key.tenant_id, account_id, key.account_ids, key.key_id)

    def sees(self, account_id: str) -> bool:
        return self.account_id in (None, account_id) and (
            self.account_ids is None or account_id in self.account_ids
        )


@dataclass(frozen=True)
class TokenClaims:
    key_id: str  # the key it was made with: it stops with the key
    account_id: str | None


def issue_token(gw: Gateway, key: KeyGrant, body: EventTokenCreate) -> EventToken:
    """A token that opens the streams the key may open (or one account's) for
    ``ttl_seconds``, while the key lives."""
    if body.account_id is not None:
        if not key.sees(body.account_id):
            raise NotFound("account")
        with Session(gw.engine) as session:
            load_account(session, key.tenant_id, body.account_id)
    claims = {"k": key.key_id, "a": body.account_id}
    token, expires = gw.passwords.signer(TOKEN_PURPOSE).seal(claims, body.ttl_seconds)
    return EventToken(
        token=token,
        expires_at=datetime.fromtimestamp(expires, UTC),
        account_id=body.account_id,
    )


def open_token(gw: Gateway, token: str) -> TokenClaims | None:
    """The claims of a token :func:`issue_token` made and that has not expired; else None."""
    claims = gw.passwords.signer(TOKEN_PURPOSE).open(token, TOKEN_TTL_MAX + 60)
    if claims is None:
        return None
    key_id, account_id = claims.get("k"), claims.get("a")
    if not isinstance(key_id, str) or not isinstance(account_id, str | None):
        return None  # a token from before keys had scopes (they last an hour) included
    return TokenClaims(key_id, account_id)


def is_token(credential: str) -> bool:
    return credential.startswith(TOKEN_PURPOSE + "_")


@dataclass(frozen=True)
class Frame:
    """One server-sent event: its type (``event:``), id and JSON data."""

    event: str
    id: str
    data: str


@dataclass
class Stream:
    """Where one open stream stands: each account's last change number sent."""

    tenant_id: str
    account_id: str | None  # the one account whose events it carries; None: every account
    tenant_wide: bool  # ids of the tenant-wide kind
    positions: dict[str, int]
    bound: frozenset[str] | None = None  # the accounts its key may see; None: all
    opening: list[Frame] = field(default_factory=list)

    def last_id(self) -> str:
        if not self.tenant_wide:
            assert self.account_id is not None
            return state_string(self.positions.get(self.account_id, 0))
        return TENANT_PREFIX + ",".join(
            f"{account_id}:{number}"
            for account_id, number in sorted(self.positions.items())
            if number
        )


def open_stream(
    gw: Gateway, grant: Grant, account_id: str | None, last_event_id: str | None
) -> Stream:
    """A stream of one account (``account_id``), or of the tenant (None). 404 for an account
    that is not the tenant's or not the one the grant is bound to."""
    with Session(gw.engine) as session:
        if account_id is not None:
            if not grant.sees(account_id):
                raise NotFound("account")  # as for any account the caller may not see
            load_account(session, grant.tenant_id, account_id)
        elif grant.account_id is not None:
            load_account(session, grant.tenant_id, grant.account_id)
    only = account_id or grant.account_id
    stream = Stream(
        grant.tenant_id,
        only,
        tenant_wide=account_id is None,
        positions={},
        bound=grant.account_ids,
    )
    current = current_states(gw.engine, _accounts(gw, stream))
    resumed = None if last_event_id is None else _parse(stream, last_event_id, current)
    stream.positions = current if resumed is None else resumed
    if last_event_id is None:
        stream.opening.append(_control(stream, "ready", {}))
    elif resumed is None:
        stream.opening.append(_control(stream, "resync", {"last_event_id": last_event_id[:200]}))
    return stream


def next_frames(gw: Gateway, stream: Stream) -> tuple[list[Frame], bool]:
    """The events after where the stream stands, moving it on; and whether more are waiting
    (a full batch)."""
    accounts = _accounts(gw, stream)
    stream.positions = {account_id: stream.positions.get(account_id, 0) for account_id in accounts}
    logged = events_after(gw.engine, stream.positions, BATCH)
    frames = []
    for entry in logged:
        stream.positions[entry.account_id] = entry.number
        if entry.body is not None:
            event_type = json.loads(entry.body)["type"]
            frames.append(Frame(event_type, stream.last_id(), entry.body))
    return frames, len(logged) == BATCH


def drain() -> None:
    """End every open stream of this process (it is stopping)."""
    draining.set()
    logged.ring()  # wake the streams waiting for events


def rung() -> int:
    """How often this process has logged events so far (pass it to :func:`wait`)."""
    return logged.rung


async def wait(seconds: float, seen: int) -> bool:
    """Until this process logs events after ``seen`` (:func:`rung`), or ``seconds`` pass,
    on the event loop: no thread, no database connection. True when events were logged."""
    return await logged.wait(seconds, seen)


def _accounts(gw: Gateway, stream: Stream) -> list[str]:
    """The accounts the stream carries now (a tenant's new accounts join, deleted ones go)."""
    with Session(gw.engine) as session:
        query = select(Account.id).where(col(Account.tenant_id) == stream.tenant_id)
        if stream.account_id is not None:
            query = query.where(col(Account.id) == stream.account_id)
        elif stream.bound is not None:
            query = query.where(col(Account.id).in_(stream.bound))
        return list(session.exec(query).all())


def _parse(stream: Stream, last_event_id: str, current: dict[str, int]) -> dict[str, int] | None:
    """The positions an id names; None when it is no id of this stream's kind, or names a
    state an account never had."""
    if not stream.tenant_wide:
        number = state_number(last_event_id)
        if stream.account_id is None or number is None or number > current[stream.account_id]:
            return None
        return {stream.account_id: number}
    if not last_event_id.startswith(TENANT_PREFIX):
        return None
    positions = dict.fromkeys(current, 0)  # accounts left out had no changes then
    body = last_event_id[len(TENANT_PREFIX) :]
    for part in body.split(",") if body else []:
        account_id, sep, state = part.rpartition(":")
        number = state_number("s" + state) if sep else None
        if number is None:
            return None
        if account_id in current:  # another tenant's, or a deleted account: no matter
            if number > current[account_id]:
                return None
            positions[account_id] = number
    return positions


def _control(stream: Stream, event: str, data: dict[str, str]) -> Frame:
    """A frame of the stream itself (``ready``, ``resync``), with the id to resume from."""
    last_id = stream.last_id()
    body = {
        "type": event,
        "timestamp": iso_utc(datetime.now(UTC)),
        "data": {**data, "last_id": last_id},
    }
    return Frame(event, last_id, json.dumps(body, separators=(",", ":")))
