"""The one FETCH path for summaries, on answers as imaplib hands them to imapclient's parser:
adapters.imap.wire.fetch_answers (each untagged FETCH on its own), adapters.imap.summary
(the header item found by its start) and adapters.imap.messages.fetch_summary_data (what a
summary is made of), without a server. The same quirks against real servers and the proxy:
tests/test_imap_quirks.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from imapclient.exceptions import ProtocolError
from imapclient.response_types import BodyData

from mailgate.adapters.imap import messages, wire
from mailgate.adapters.imap.summary import TEXT_ITEM, TEXT_KEY, build_summary, header_block

HEADER = b"Subject: Hi\r\nFrom: Ann <ann@example.org>\r\n\r\n"
ASKED_HEADER = (
    b"BODY[HEADER.FIELDS (SUBJECT FROM TO CC DATE MESSAGE-ID CONTENT-TYPE"
    b" CONTENT-TRANSFER-ENCODING MIME-VERSION)]"
)
# Courier-IMAP 5.0.13 (tests/harness/courier.py) echoes the section with the names quoted
COURIER_HEADER = (
    b'BODY[HEADER.FIELDS ("SUBJECT" "FROM" "TO" "CC" "DATE" "MESSAGE-ID" "CONTENT-TYPE"'
    b' "CONTENT-TRANSFER-ENCODING" "MIME-VERSION")]'
)


def literal(head: bytes, body: bytes, tail: bytes = b")") -> list[Any]:
    """One untagged FETCH with a literal, split as imaplib does: ``[(head {n}, body), tail]``."""
    return [(head + b" {%d}" % len(body), body), tail]


def summary_line(seq: int, uid: int | None, header_key: bytes = ASKED_HEADER) -> list[Any]:
    uid_item = b"" if uid is None else b"UID %d " % uid
    head = (
        b'%d (%sFLAGS (\\Seen) RFC822.SIZE 321 INTERNALDATE "01-May-2024 12:00:00 +0200"'
        b' BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL'
        b" NIL) PREVIEW NIL " % (seq, uid_item)
    ) + header_key
    return literal(head, HEADER)


# -- wire.fetch_answers --------------------------------------------------------------------


def test_each_answer_stays_on_its_own_with_its_uid() -> None:
    data = [*summary_line(1, 7), b"1 (FLAGS (\\Flagged))", b"2 (UID 9 FLAGS ())"]
    answers = wire.fetch_answers(data)
    assert [(a[b"SEQ"], a.get(b"UID")) for a in answers] == [(1, 7), (1, None), (2, 9)]
    first = answers[0]
    assert first[ASKED_HEADER] == HEADER
    assert first[b"PREVIEW"] is None
    assert isinstance(first[b"BODYSTRUCTURE"], BodyData)
    assert isinstance(first[b"INTERNALDATE"], datetime)
    assert first[b"RFC822.SIZE"] == 321
    assert answers[1] == {b"SEQ": 1, b"FLAGS": (b"\\Flagged",)}  # not merged into UID 7


def test_an_answer_without_uid_has_no_uid_item() -> None:
    """RFC 3501 section 6.4.8 requires UID in answers to UID commands; some servers and
    proxies leave it out (nextcloud/mail#13507): the key imapclient would use is the
    sequence number, here there is simply no UID."""
    [answer] = wire.fetch_answers(summary_line(3, None))
    assert b"UID" not in answer and answer[b"SEQ"] == 3


def test_a_uid_that_is_not_a_uid_is_none() -> None:
    answers = wire.fetch_answers([b'1 (UID "x" FLAGS ())', b"2 (UID 0 FLAGS ())"])
    assert [b"UID" in answer for answer in answers] == [False, False]  # RFC 3501: nz-number


def test_the_courier_header_key_is_kept_as_sent() -> None:
    [answer] = wire.fetch_answers(summary_line(1, 4, COURIER_HEADER))
    assert answer[COURIER_HEADER] == HEADER
    assert header_block(answer) == HEADER


def test_item_names_are_upper_cased() -> None:
    [answer] = wire.fetch_answers([b"1 (uid 5 rfc822.size 10 flags ())"])
    assert answer == {b"SEQ": 1, b"UID": 5, b"RFC822.SIZE": 10, b"FLAGS": ()}


def test_an_unreadable_internaldate_is_none() -> None:
    [answer] = wire.fetch_answers([b'1 (UID 5 INTERNALDATE "yesterday")'])
    assert answer[b"INTERNALDATE"] is None


@pytest.mark.parametrize(
    "structure",
    [
        # the subtype of a multipart NIL: imapclient's BodyData.create raises TypeError
        b'(("text" "plain" NIL NIL NIL "7bit" 1 1) NIL NIL NIL NIL)',
        # a child part NIL
        b'(("text" "plain" NIL NIL NIL "7bit" 1 1) NIL "mixed")',
    ],
)
def test_a_bodystructure_imapclient_cannot_shape_stays_raw(structure: bytes) -> None:
    [answer] = wire.fetch_answers([b"1 (UID 5 BODYSTRUCTURE " + structure + b")"])
    assert isinstance(answer[b"BODYSTRUCTURE"], tuple)
    assert not isinstance(answer[b"BODYSTRUCTURE"], BodyData)


@pytest.mark.parametrize(
    "data",
    [
        [b"1 (UID 5 FLAGS)"],  # odd number of items
        [b"x (UID 5)"],  # no message number
        [b"1 UID 5"],  # no list
        [b"1 (UID 5 FLAGS (\\Seen)"],  # unbalanced
    ],
)
def test_an_answer_that_is_not_a_fetch_answer_is_a_protocol_error(data: list[Any]) -> None:
    with pytest.raises(ProtocolError):
        wire.fetch_answers(data)


def test_no_answers() -> None:
    assert wire.fetch_answers([None]) == []
    assert wire.fetch_answers([]) == []


@pytest.mark.parametrize(
    "keywords", [b"x[y", b"x[y]", b"[", b"]z[", b"a[b c]d", b"Z0_I[xw8"], ids=repr
)
def test_a_keyword_with_an_open_bracket_is_read_as_it_was_set(keywords: bytes) -> None:
    """RFC 3501 lets a keyword hold "[" (another client may set one; Dovecot keeps it), but
    imapclient's lexer takes "[" for a section (BODY[TEXT]) and read on to the next "]":
    the whole answer, and so the folder's list, failed."""
    line = b"7 (UID 9 FLAGS (\\Seen " + keywords + b" $Work) BODY[HEADER.FIELDS (SUBJECT)] {6}"
    bodystructure = b' BODYSTRUCTURE ("text" "plain" ("name" "FLAGS (a[b).txt") NIL NIL'
    [answer] = wire.fetch_answers(
        [(line, b"Hi\r\n\r\n"), bodystructure + b' "7bit" 3 1 NIL NIL NIL NIL))']
    )
    assert answer[b"FLAGS"] == (b"\\Seen", *keywords.split(b" "), b"$Work")
    assert answer[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Hi\r\n\r\n"
    # a quoted string that looks like FLAGS is left as it was
    assert answer[b"BODYSTRUCTURE"][2] == (b"name", b"FLAGS (a[b).txt")
    assert answer[b"UID"] == 9 and answer[b"SEQ"] == 7


def test_answers_without_a_bracket_in_their_flags_go_to_the_lexer_untouched() -> None:
    data = [(b"1 (UID 3 FLAGS (\\Seen) BODY[TEXT] {2}", b"ok"), b")"]
    assert wire._bracket_flags_quoted(data[0]) is data[0]
    assert wire._bracket_flags_quoted(data[1]) is data[1]


# -- wire.redact ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("> b'ABCD1 LOGIN alice \"s3cret\"'", "> b'ABCD1 LOGIN ***"),
        ("> b'ABCD1 login alice s3cret'", "> b'ABCD1 login ***"),
        ("> b'ABCD2 AUTHENTICATE PLAIN AGFsaWNlAHMzY3JldA=='", "> b'ABCD2 AUTHENTICATE ***"),
        ("< b'* 1 FETCH (UID 5)'", "< b'* 1 FETCH (UID 5)'"),
        (
            "< b'* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS LOGINDISABLED AUTH=PLAIN'",
            "< b'* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS LOGINDISABLED AUTH=PLAIN'",
        ),
    ],
)
def test_secrets_are_redacted(line: str, shown: str) -> None:
    assert wire.redact(line) == shown


# -- summary.build_summary -----------------------------------------------------------------


def test_a_summary_from_nil_and_missing_items_is_empty_not_an_error() -> None:
    data: dict[bytes, Any] = {
        b"UID": 5,
        b"FLAGS": None,
        b"RFC822.SIZE": None,
        b"INTERNALDATE": None,
        b"BODYSTRUCTURE": None,
        ASKED_HEADER: None,
        b"PREVIEW": None,
        TEXT_KEY: None,
    }
    summary = build_summary("msg_x", "fld_x", data)
    assert (summary.subject, summary.size, summary.preview) == (None, 0, "")
    assert summary.has_attachments is False and summary.from_ == []


def test_a_summary_reads_8bit_latin1_header_bytes() -> None:
    header = b"Subject: Caf\xe9 cr\xe8me\r\nFrom: Ren\xe9e <renee@example.org>\r\n\r\n"
    summary = build_summary("msg_x", "fld_x", {ASKED_HEADER: header, b"PREVIEW": b"x"})
    assert summary.subject == "Café crème"
    assert [(a.name, a.email) for a in summary.from_] == [("Renée", "renee@example.org")]


def test_summaries_of_the_same_bytes_share_the_parse_but_not_what_is_their_own() -> None:
    """The parse of a header block and body start is kept by those bytes (``_parsed``): two
    copies of one message, or one listed twice, still show their own flags, date and size,
    and a message whose preview differs shows its own preview."""
    copy = {ASKED_HEADER: HEADER, TEXT_KEY: b"Lunch at noon?", b"RFC822.SIZE": 120}
    first = build_summary(
        "msg_a",
        "fld_x",
        copy | {b"FLAGS": (b"\\Seen",), b"INTERNALDATE": datetime(2026, 1, 2, tzinfo=UTC)},
    )
    second = build_summary(
        "msg_b",
        "fld_y",
        copy | {b"FLAGS": (b"$Work",), b"INTERNALDATE": datetime(2026, 3, 4, tzinfo=UTC)},
    )
    assert (first.subject, second.subject) == ("Hi", "Hi")
    assert (first.id, first.folder_id, first.flags.seen, first.keywords) == (
        "msg_a",
        "fld_x",
        True,
        [],
    )
    assert (second.id, second.folder_id, second.flags.seen, second.keywords) == (
        "msg_b",
        "fld_y",
        False,
        ["$Work"],
    )
    assert (first.received_at.month, second.received_at.month) == (1, 3)
    other = build_summary("msg_c", "fld_x", copy | {TEXT_KEY: b"Dinner instead?"})
    assert (first.preview, other.preview) == ("Lunch at noon?", "Dinner instead?")
    server_preview = build_summary("msg_d", "fld_x", copy | {b"PREVIEW": b"From the server"})
    assert server_preview.preview == "From the server"


# -- messages.fetch_summary_data -----------------------------------------------------------


class FakeServer:
    """What ``wire.fetch`` would return for each FETCH, in order; records the requests."""

    def __init__(self, preview: bool, *replies: list[Any]) -> None:
        self.preview = preview
        self.replies = list(replies)
        self.requests: list[tuple[list[int], list[bytes], bool]] = []

    def has_capability(self, name: str) -> bool:
        return name == "PREVIEW" and self.preview

    def fetch(
        self, client: object, ids: list[int], items: list[bytes], *, uid: bool = True
    ) -> list[dict[bytes, Any]]:
        self.requests.append((list(ids), list(items), uid))
        return wire.fetch_answers(self.replies.pop(0))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer(True)
    monkeypatch.setattr(wire, "fetch", fake.fetch)
    return fake


def test_only_requested_uids_with_real_answers_become_summaries(server: FakeServer) -> None:
    """Unsolicited FETCH during the command (RFC 3501 section 7.4.1; ProtonMail Bridge,
    getmail6#93): FLAGS of a message not asked for, FLAGS only of one asked for, an answer
    without UID. None of them is a summary."""
    server.replies = [
        [
            *summary_line(1, 7),
            b"4 (FLAGS (\\Seen) UID 40)",  # another message's flag change
            b"2 (UID 8 FLAGS (\\Flagged))",  # asked for, but only its flags came
            *summary_line(3, None),  # no UID: skipped, never guessed from its number
        ],
        [],
    ]
    server.preview = False
    found = messages.fetch_summary_data(server, [7, 8, 3])  # type: ignore[arg-type]
    assert list(found) == [7]
    assert found[7][ASKED_HEADER] == HEADER


def test_a_later_flag_change_of_an_asked_message_is_merged(server: FakeServer) -> None:
    server.preview = False
    server.replies = [[*summary_line(1, 7), b"1 (UID 7 FLAGS (\\Flagged))"]]
    found = messages.fetch_summary_data(server, [7])  # type: ignore[arg-type]
    assert found[7][b"FLAGS"] == (b"\\Flagged",) and found[7][b"RFC822.SIZE"] == 321


def test_by_sequence_keeps_the_asked_numbers_keyed_by_uid(server: FakeServer) -> None:
    server.preview = False
    server.replies = [[*summary_line(5, 50), *summary_line(6, 60), b"2 (UID 20 FLAGS ())"]]
    found = messages.fetch_summary_data(server, [5, 6], by_sequence=True)  # type: ignore[arg-type]
    assert sorted(found) == [50, 60]
    assert server.requests[0][2] is False  # a plain FETCH of sequence numbers


def test_a_nil_preview_fetches_the_body_start(server: FakeServer) -> None:
    """Cyrus 3.6 answers PREVIEW NIL for messages it did not index (RFC 8970 makes the
    preview an nstring): the start of the body is fetched for those only."""
    with_preview = [
        (
            b'2 (UID 8 FLAGS () RFC822.SIZE 5 PREVIEW "From the server" '
            + ASKED_HEADER
            + b" {%d}" % len(HEADER),
            HEADER,
        ),
        b")",
    ]
    server.replies = [
        [*summary_line(1, 7), *with_preview],
        literal(b"1 (UID 7 BODY[TEXT]<0>", b"Hello from the body\r\n"),
    ]
    found = messages.fetch_summary_data(server, [7, 8])  # type: ignore[arg-type]
    assert server.requests[1] == ([7], [b"UID", TEXT_ITEM], True)
    assert found[7][TEXT_KEY] == b"Hello from the body\r\n"
    assert build_summary("m", "f", found[7]).preview == "Hello from the body"
    assert build_summary("m", "f", found[8]).preview == "From the server"


def test_no_body_fetch_when_every_preview_came(server: FakeServer) -> None:
    server.replies = [[b'1 (UID 7 RFC822.SIZE 1 PREVIEW "p")']]
    messages.fetch_summary_data(server, [7])  # type: ignore[arg-type]
    assert len(server.requests) == 1
