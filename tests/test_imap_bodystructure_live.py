"""BODYSTRUCTURE from a real Dovecot through adapters.imap.bodystructure and adapters.transfer.

Three MIME messages built with the stdlib are APPENDed; each listed part is then fetched with
``BODY.PEEK[<part_id>]`` and decoded in random chunks, which must give back the exact bytes
that went in.
"""

from __future__ import annotations

import random
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

import pytest

from mailgate.adapters.imap.bodystructure import (
    PartInfo,
    find_part,
    first_text_part,
    has_attachments,
    iter_parts,
)
from mailgate.adapters.transfer import make_decoder
from tests.harness.dovecot import DovecotServer, MailUser

SEED = 7


def text_only() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Ann <ann@example.org>"
    msg["To"] = "bob@example.org"
    msg["Subject"] = "plain"
    msg.set_content("Grüße aus Köln!\n" + "A long line of text. " * 30 + "\n")
    return msg


def alternative_with_pdf(pdf: bytes) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "ann@example.org"
    msg["To"] = "bob@example.org"
    msg["Subject"] = "CV"
    msg.set_content("Hi, my CV is attached. — Ann\n")
    msg.add_alternative("<p>Hi, my CV is attached. &mdash; Ann</p>\n", subtype="html")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="Résumé.pdf")
    return msg


def related_with_message(png: bytes, inner_blob: bytes) -> tuple[EmailMessage, EmailMessage]:
    inner = EmailMessage()
    inner["From"] = "Carl <carl@example.org>"
    inner["To"] = "ann@example.org"
    inner["Subject"] = "Forwarded ü"
    inner.set_content("the original text\n")
    inner.add_attachment(
        inner_blob, maintype="application", subtype="octet-stream", filename="data.bin"
    )
    msg = EmailMessage()
    msg["From"] = "ann@example.org"
    msg["To"] = "bob@example.org"
    msg["Subject"] = "logo and forward"
    msg.set_content('<p>Logo: <img src="cid:logo@example.org"></p>\n', subtype="html")
    msg.add_related(png, "image", "png", cid="<logo@example.org>")
    msg.add_attachment(inner)
    return msg, inner


def fetch_structure(dovecot: DovecotServer, user: MailUser, uid: int) -> object:
    with dovecot.imap_client(user) as client:
        client.select_folder("INBOX", readonly=True)
        return client.fetch([uid], ["BODYSTRUCTURE"])[uid][b"BODYSTRUCTURE"]


def fetch_decoded(
    dovecot: DovecotServer, user: MailUser, uid: int, part: PartInfo, rng: random.Random
) -> bytes:
    """``BODY.PEEK[part]``, checked against the reported size, decoded in random chunks."""
    key = f"BODY[{part.part_id}]".encode()
    with dovecot.imap_client(user) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([uid], [f"BODY.PEEK[{part.part_id}]"])[uid][key]
    assert isinstance(raw, bytes)
    assert len(raw) == part.size, part
    decode = make_decoder(part.encoding)
    out, pos = [], 0
    while pos < len(raw):
        size = rng.randint(1, 97)
        out.append(decode(raw[pos : pos + size], False))
        pos += size
    out.append(decode(b"", True))
    return b"".join(out)


def stdlib_payload(raw: bytes, *path: int) -> bytes:
    """What the stdlib email package decodes for a part of ``raw`` (path: payload indexes)."""
    part: Message = message_from_bytes(raw, policy=policy.SMTP)
    for index in path:
        payload = part.get_payload()
        assert isinstance(payload, list)
        child = payload[index]
        assert isinstance(child, Message)
        part = child
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def test_dovecot_bodystructures(dovecot: DovecotServer, mail_user: MailUser) -> None:
    rng = random.Random(SEED)
    pdf = b"%PDF-1.4\r\n" + rng.randbytes(40_000) + b"\r\n%%EOF\r\n"
    png = b"\x89PNG\r\n\x1a\n" + rng.randbytes(3_000)
    blob = rng.randbytes(5_000)

    # 1: a single text part
    raw1 = text_only().as_bytes(policy=policy.SMTP)
    uid1 = dovecot.append(mail_user, raw1)
    structure1 = fetch_structure(dovecot, mail_user, uid1)
    parts1 = iter_parts(structure1)
    assert [(p.part_id, p.content_type, p.charset) for p in parts1] == [
        ("1", "text/plain", "utf-8")
    ]
    assert not has_attachments(structure1)
    assert first_text_part(structure1) == parts1[0]
    assert find_part(structure1, "1") == parts1[0]
    assert fetch_decoded(dovecot, mail_user, uid1, parts1[0], rng) == stdlib_payload(raw1)

    # 2: mixed(alternative(plain, html), application/pdf "Résumé.pdf" per RFC 2231)
    raw2 = alternative_with_pdf(pdf).as_bytes(policy=policy.SMTP)
    uid2 = dovecot.append(mail_user, raw2)
    structure2 = fetch_structure(dovecot, mail_user, uid2)
    parts2 = iter_parts(structure2)
    assert [(p.part_id, p.content_type) for p in parts2] == [
        ("1.1", "text/plain"),
        ("1.2", "text/html"),
        ("2", "application/pdf"),
    ]
    attachment = parts2[2]
    assert (attachment.filename, attachment.disposition, attachment.encoding) == (
        "Résumé.pdf",
        "attachment",
        "base64",
    )
    assert has_attachments(structure2)
    assert first_text_part(structure2) == parts2[0]
    assert find_part(structure2, "2") == attachment
    assert find_part(structure2, "1") is None
    assert fetch_decoded(dovecot, mail_user, uid2, attachment, rng) == pdf
    assert fetch_decoded(dovecot, mail_user, uid2, parts2[0], rng) == stdlib_payload(raw2, 0, 0)
    assert fetch_decoded(dovecot, mail_user, uid2, parts2[1], rng) == stdlib_payload(raw2, 0, 1)

    # 3: mixed(related(html, cid png), message/rfc822(mixed(plain, data.bin)))
    outer, inner = related_with_message(png, blob)
    raw3 = outer.as_bytes(policy=policy.SMTP)
    inner_raw = inner.as_bytes(policy=policy.SMTP)  # after the outer: same boundaries
    uid3 = dovecot.append(mail_user, raw3)
    structure3 = fetch_structure(dovecot, mail_user, uid3)
    parts3 = iter_parts(structure3)
    assert [(p.part_id, p.content_type) for p in parts3] == [
        ("1.1", "text/html"),
        ("1.2", "image/png"),
        ("2", "message/rfc822"),
    ]
    image, forwarded = parts3[1], parts3[2]
    assert (image.content_id, image.encoding) == ("logo@example.org", "base64")
    assert forwarded.disposition == "attachment"
    assert has_attachments(structure3)
    assert first_text_part(structure3) == parts3[0]
    inner_text = find_part(structure3, "2.1")
    inner_file = find_part(structure3, "2.2")
    assert inner_text is not None and inner_text.content_type == "text/plain"
    assert inner_file is not None and inner_file.filename == "data.bin"
    assert find_part(structure3, "2.3") is None
    assert fetch_decoded(dovecot, mail_user, uid3, image, rng) == png
    assert fetch_decoded(dovecot, mail_user, uid3, forwarded, rng) == inner_raw
    assert fetch_decoded(dovecot, mail_user, uid3, inner_file, rng) == blob
    assert fetch_decoded(dovecot, mail_user, uid3, inner_text, rng) == stdlib_payload(inner_raw, 0)
    assert fetch_decoded(dovecot, mail_user, uid3, parts3[0], rng) == stdlib_payload(raw3, 0, 0)


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_dovecot_part_in_both_encodings(
    dovecot: DovecotServer, mail_user: MailUser, encoding: str
) -> None:
    """A binary-ish text attachment forced into each encoding comes back byte for byte."""
    rng = random.Random(f"{SEED}-{encoding}")
    content = "".join(rng.choice("abc xyz=äöü€\t.\n") for _ in range(20_000))
    msg = EmailMessage()
    msg["Subject"] = encoding
    msg.set_content("see attachment\n")
    msg.add_attachment(content, subtype="plain", cte=encoding, filename="notes.txt")
    raw = msg.as_bytes(policy=policy.SMTP)
    uid = dovecot.append(mail_user, raw)
    structure = fetch_structure(dovecot, mail_user, uid)
    part = find_part(structure, "2")
    assert part is not None
    assert (part.encoding, part.filename, part.charset) == (encoding, "notes.txt", "utf-8")
    assert fetch_decoded(dovecot, mail_user, uid, part, rng) == stdlib_payload(raw, 1)
