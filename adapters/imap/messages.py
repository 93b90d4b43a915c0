"""Message operations on one IMAP connection: select, locate, list, fetch, flag, move."""

from __future__ import annotations

import contextlib
import imaplib
import logging
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import ProtocolError

from mailgate.adapters.base import AliasStore
from mailgate.adapters.imap import uidset, wire
from mailgate.adapters.imap.connect import NOT_A_REFUSAL, server_words
from mailgate.adapters.imap.listing import parse_status
from mailgate.adapters.imap.search import needs_utf8, search_criteria
from mailgate.adapters.imap.summary import TEXT_ITEM, TEXT_KEY, build_summary, summary_items
from mailgate.domain.errors import (
    CursorExpired,
    InvalidCursor,
    InvalidRequest,
    NotFound,
    Unsupported,
)
from mailgate.domain.ids import (
    Cursor,
    MessageLocation,
    filter_fingerprint,
    folder_id,
    message_id,
    message_location,
)
from mailgate.domain.mail import MessageChange, MessageFilter, MessagePage, MessageSummary

log = logging.getLogger("mailgate.imap")

FLAG_NAMES = {
    "seen": b"\\Seen",
    "flagged": b"\\Flagged",
    "answered": b"\\Answered",
    "draft": b"\\Draft",
}


def select(client: IMAPClient, path: str) -> dict[bytes, Any]:
    """SELECT ``path``; an unknown folder is a 404, never a 500."""
    try:
        selected = dict(client.select_folder(path))
    except (imaplib.IMAP4.abort, ProtocolError):
        raise  # a dropped connection, or an answer that is not IMAP: not a missing folder
    except NOT_A_REFUSAL:
        raise
    except imaplib.IMAP4.error as exc:
        raise NotFound("folder") from exc
    validity = selected.get(b"UIDVALIDITY")
    if isinstance(validity, int):
        wire.remember_selection(client, path, validity)
    return selected


def unselect(client: IMAPClient) -> None:
    """Leave the selected folder: STATUS on it would answer from this session's stale view
    (RFC 3501 section 6.3.10), and Dovecot does."""
    if not wire.is_selected(client):
        return
    if client.has_capability("UNSELECT"):
        client.unselect_folder()
    else:  # CLOSE would expunge; a failed SELECT leaves no folder selected (section 6.3.1)
        with contextlib.suppress(imaplib.IMAP4.error):
            client.select_folder("mailgate-unselect-7c1e2b", readonly=True)


def folder_status(client: IMAPClient, path: str, items: list[bytes]) -> dict[bytes, Any]:
    """STATUS of ``path``. Under NOTIFY the server also sends STATUS of other folders
    unasked; those are dropped first, so the answer is this folder's."""
    wire.drop_untagged(client, "STATUS")
    return dict(parse_status(wire.status(client, path, items)))


def all_uids(client: IMAPClient) -> set[int]:
    """Every UID of the selected folder; with ESEARCH (RFC 4731) as one compact sequence set
    rather than a number per message (a large folder's UIDs are a few bytes, not megabytes)."""
    if not client.has_capability("ESEARCH"):
        return {int(uid) for uid in client.search(["ALL"])}
    wire.drop_untagged(client, "ESEARCH")
    data = wire.command_untagged(client, b"SEARCH", [b"RETURN", b"(ALL)", b"ALL"], "ESEARCH")
    answer = data[-1] if data and isinstance(data[-1], bytes) else b""
    _, found, rest = answer.partition(b" ALL ")
    return uidset.decode(rest.split()[0].decode()) if found and rest.strip() else set()


def uidvalidity(selected: dict[bytes, Any]) -> int:
    return int(selected[b"UIDVALIDITY"])


def locate(aliases: AliasStore, id_: str) -> MessageLocation:
    location = aliases.resolve(id_) or message_location(id_, aliases.account_id)
    if location is None:
        raise NotFound("message")
    return location


def select_message(client: IMAPClient, location: MessageLocation) -> dict[bytes, Any]:
    """Select the message's folder and make sure the message is still there, as it was."""
    try:
        selected = select(client, location.path)
    except NotFound:
        raise NotFound("message") from None
    if uidvalidity(selected) != location.uidvalidity:
        raise NotFound("message")  # the folder was recreated: old ids never point elsewhere
    return selected


# What a NOOP may bring in the selected folder; dropped before the FETCH it prepares.
_SYNC_NEWS = ("EXISTS", "RECENT", "EXPUNGE", "FETCH", "VANISHED")


def fetch_message(
    client: IMAPClient, location: MessageLocation, items: list[bytes]
) -> dict[bytes, Any] | None:
    """FETCH ``items`` of the message at ``location``: the answer, or None when the folder
    or the message is not there (any more).

    A read needs no new SELECT when this connection has the folder selected already, with
    the same UIDVALIDITY: a NOOP brings its view up to date (new mail, expunges; a server
    that dropped the folder ends the session, and the pool retries on a new connection),
    for a fraction of a SELECT (on Dovecot, a SELECT after a FETCH costs thirty to forty NOOPs).
    A message not found so is looked for once more after a SELECT, for a server whose NOOP
    would not show mail that arrived since; an expunge or a refusal is left to a SELECT
    too (:func:`_fetch_selected`).

    Only on servers that offer CONDSTORE (RFC 7162: Dovecot, Cyrus, Gmail, Fastmail): seen
    on the test matrix, Courier-IMAP, which does not, goes on serving a folder that another
    client deleted and made again under the old UIDVALIDITY in the session that had it
    selected (a new message under an old id; its NOOP tells of nothing but a flag), where
    a new SELECT gives the new UIDVALIDITY. Dovecot ends such a session, Cyrus refuses the
    FETCH."""
    kept = wire.remembered_selection(client) == (location.path, location.uidvalidity)
    if kept and client.has_capability("CONDSTORE"):
        data = _fetch_selected(client, location, items)
        if data is not None and set(data) - _UNSOLICITED_ITEMS:
            return data
    try:
        select_message(client, location)
    except NotFound:
        return None
    return fetch_by_uid(client, [location.uid], items).get(location.uid)


def _fetch_selected(
    client: IMAPClient, location: MessageLocation, items: list[bytes]
) -> dict[bytes, Any] | None:
    """:func:`fetch_message` without a SELECT; None where a SELECT must decide: after an
    expunge (Courier, when another client deletes the folder and makes it again, reports
    the old messages expunged and gives the new ones their UIDs under the old UIDVALIDITY;
    a new SELECT tells the new one), or a refused FETCH (Cyrus answers one in a folder
    deleted meanwhile with ``NO Mailbox does not exist``)."""
    try:
        wire.noop(client)
        if wire.take_news(client, ("EXPUNGE", "VANISHED")):
            return None
        if wire.remembered_selection(client) != (location.path, location.uidvalidity):
            return None
        wire.drop_untagged(client, *_SYNC_NEWS)
        return fetch_by_uid(client, [location.uid], items).get(location.uid)
    except (imaplib.IMAP4.abort, ProtocolError):
        raise  # a dropped connection, or an answer that is not IMAP
    except NOT_A_REFUSAL:
        raise
    except imaplib.IMAP4.error:
        return None


def ids_for(aliases: AliasStore, path: str, validity: int, uids: list[int]) -> dict[int, str]:
    moved_here = aliases.ids_at(path, validity, uids)
    return {
        uid: moved_here.get(uid)
        or message_id(MessageLocation(path, validity, uid), aliases.account_id)
        for uid in uids
    }


# -- summaries: one FETCH path ----------------------------------------------------------------

# Items of a FETCH answer that an unsolicited one (a flag change, RFC 3501 section 7.4.1) also
# carries; an answer with nothing else is no answer to the summary items.
_UNSOLICITED_ITEMS = {b"SEQ", b"UID", b"FLAGS", b"MODSEQ"}


def fetch_by_uid(
    client: IMAPClient, ids: list[int], items: list[bytes], *, by_sequence: bool = False
) -> dict[int, dict[bytes, Any]]:
    """FETCH ``items`` of ``ids`` (UIDs; sequence numbers with ``by_sequence``) on the
    selected folder: the answers about those messages, keyed by their UID item.

    * A FETCH answer without UID is skipped, never guessed: RFC 3501 section 6.4.8 makes UID
      part of every answer to a UID command, yet some servers and proxies leave it out
      (nextcloud/mail#13507; chatmail/core skips them too). The message number of an answer
      is never taken for its UID.
    * Unsolicited FETCH answers during the command (RFC 3501 sections 5.2, 7.4.1; ProtonMail
      Bridge sends FLAGS of other messages, getmail6/getmail6#93) count only when they are
      about a message asked for; their items are merged into its answer, later ones win.
      EXISTS and EXPUNGE on the way are left to imaplib: UIDs do not shift.
    """
    wanted = set(ids)
    by_uid: dict[int, dict[bytes, Any]] = {}
    for answer in wire.fetch(client, ids, items, uid=not by_sequence):
        uid = answer.get(b"UID")
        if uid is None:
            log.info("skipping a FETCH answer without UID", extra={"seq": answer[b"SEQ"]})
        elif (answer[b"SEQ"] if by_sequence else uid) in wanted:
            by_uid.setdefault(uid, {}).update(answer)
    return by_uid


def fetch_summary_data(
    client: IMAPClient, ids: list[int], *, by_sequence: bool = False
) -> dict[int, dict[bytes, Any]]:
    """The summary items of ``ids`` (:func:`fetch_by_uid`), keyed by UID: the one FETCH path
    of lists and single summaries (each case in tests/test_imap_quirks.py).

    * A message whose answer has nothing but FLAGS/MODSEQ (an unsolicited flag change, not
      an answer to the summary items) is no summary.
    * PREVIEW (RFC 8970) answered NIL, as Cyrus 3.6 does for messages it has not indexed
      (delivered as files): the start of the body is fetched for those, and the preview
      made from it as for servers without PREVIEW.
    """
    if not ids:
        return {}
    server_preview = client.has_capability("PREVIEW")
    items = summary_items(server_preview)
    by_uid = fetch_by_uid(client, ids, items, by_sequence=by_sequence)
    by_uid = {uid: data for uid, data in by_uid.items() if set(data) - _UNSOLICITED_ITEMS}
    if server_preview:
        _body_starts(client, by_uid)
    return by_uid


def _body_starts(client: IMAPClient, by_uid: dict[int, dict[bytes, Any]]) -> None:
    """``BODY.PEEK[TEXT]<0.2048>`` for the messages whose PREVIEW the server left NIL."""
    missing = [uid for uid, data in by_uid.items() if not isinstance(data.get(b"PREVIEW"), bytes)]
    if not missing:
        return
    for uid, answer in fetch_by_uid(client, missing, [b"UID", TEXT_ITEM]).items():
        if uid in by_uid and TEXT_KEY in answer:
            by_uid[uid][TEXT_KEY] = answer[TEXT_KEY]


def fetch_summaries(
    client: IMAPClient, aliases: AliasStore, path: str, validity: int, uids: list[int]
) -> dict[int, MessageSummary]:
    return _summaries(aliases, path, validity, fetch_summary_data(client, uids))


def _summaries(
    aliases: AliasStore, path: str, validity: int, by_uid: dict[int, dict[bytes, Any]]
) -> dict[int, MessageSummary]:
    ids = ids_for(aliases, path, validity, list(by_uid))
    fid = folder_id(path)
    return {uid: build_summary(ids[uid], fid, data) for uid, data in by_uid.items()}


def newest_by_sequence(
    client: IMAPClient, aliases: AliasStore, path: str, validity: int, exists: int, limit: int
) -> MessagePage:
    """The first unfiltered page without a SEARCH: the newest messages are the highest
    sequence numbers (RFC 3501 section 2.3.1.2), fixed while this connection has the folder
    selected, so one FETCH of the last ``limit`` of them is exact."""
    if exists <= 0:
        return MessagePage(items=[], next_cursor=None)
    first = max(1, exists - limit + 1)
    by_uid = fetch_summary_data(client, list(range(first, exists + 1)), by_sequence=True)
    summaries = _summaries(aliases, path, validity, by_uid)
    ordered = sorted(summaries, reverse=True)
    next_cursor = None
    if first > 1 and ordered:
        fingerprint = filter_fingerprint({})
        next_cursor = Cursor(path, validity, ordered[-1], fingerprint).encode()
    return MessagePage(items=[summaries[uid] for uid in ordered], next_cursor=next_cursor)


def list_page(
    client: IMAPClient,
    aliases: AliasStore,
    path: str,
    filters: MessageFilter,
    limit: int,
    cursor: str | None,
) -> MessagePage:
    fingerprint = filter_fingerprint(filters.model_dump(exclude_none=True))
    selected = select(client, path)
    validity = uidvalidity(selected)
    below: int | None = None
    if cursor is not None:
        decoded = Cursor.decode(cursor)
        if decoded is None or decoded.folder != path or decoded.filters != fingerprint:
            raise InvalidCursor("the cursor does not belong to this folder and these filters")
        if decoded.epoch != validity:
            raise CursorExpired(
                "the folder was reset on the server (UIDVALIDITY changed); start again without "
                "a cursor"
            )
        below = decoded.before
    if below is None and fingerprint == filter_fingerprint({}):
        return newest_by_sequence(
            client, aliases, path, validity, int(selected.get(b"EXISTS", 0)), limit
        )
    criteria = search_criteria(filters, below)
    uids = wire.search(client, criteria, "UTF-8" if needs_utf8(filters) else None)
    if below is not None:
        uids = [uid for uid in uids if uid < below]
    ordered = sorted(uids, reverse=True)
    page_uids = ordered[:limit]
    summaries = fetch_summaries(client, aliases, path, validity, page_uids)
    items = [summaries[uid] for uid in page_uids if uid in summaries]
    next_cursor = None
    if len(ordered) > limit:
        next_cursor = Cursor(path, validity, page_uids[-1], fingerprint).encode()
    return MessagePage(items=items, next_cursor=next_cursor)


def summary_of(
    client: IMAPClient, aliases: AliasStore, location: MessageLocation, id_: str | None = None
) -> MessageSummary:
    data = fetch_summary_data(client, [location.uid]).get(location.uid)
    if data is None:
        raise NotFound("message")
    shown = (
        id_ or ids_for(aliases, location.path, location.uidvalidity, [location.uid])[location.uid]
    )
    return build_summary(shown, folder_id(location.path), data)


def exists(client: IMAPClient, uid: int) -> bool:
    return bool(client.search(["UID", str(uid)]))


def apply_change(
    client: IMAPClient, uids: list[int], change: MessageChange, permanent: tuple[bytes, ...]
) -> None:
    """STORE the flag and keyword changes (RFC 3501 section 6.4.6)."""
    add = [FLAG_NAMES[name] for name in FLAG_NAMES if getattr(change, name) is True]
    remove = [FLAG_NAMES[name] for name in FLAG_NAMES if getattr(change, name) is False]
    if change.keywords_add and b"\\*" not in permanent:
        raise Unsupported("this mailbox does not keep keywords")
    add += [k.encode("utf-8") for k in change.keywords_add]
    remove += [k.encode("utf-8") for k in change.keywords_remove]
    try:
        if add:
            client.add_flags(uids, add, silent=True)
        if remove:
            client.remove_flags(uids, remove, silent=True)
    except NOT_A_REFUSAL:
        raise
    except imaplib.IMAP4.error as exc:  # e.g. a keyword longer than the server takes
        raise InvalidRequest(f"the server refused the change: {server_words(exc)}") from exc
