"""Unit tests for adapters.imap.roles (RFC 6154 special-use and well-known folder names)."""

from __future__ import annotations

import pytest

from mailgate.adapters.imap.roles import assign_roles, detect_role


@pytest.mark.parametrize("path", ["INBOX", "inbox", "Inbox", "iNbOx"])
def test_inbox_any_case(path: str) -> None:
    assert detect_role(path, (), "/") == "inbox"
    assert detect_role(path, (b"\\HasNoChildren",), None) == "inbox"


def test_inbox_must_be_the_whole_path() -> None:
    assert detect_role("INBOX/Sub", (), "/") is None
    assert detect_role("INBOXES", (), "/") is None


@pytest.mark.parametrize(
    ("flag", "role"),
    [
        (b"\\Sent", "sent"),
        (b"\\Drafts", "drafts"),
        (b"\\Trash", "trash"),
        (b"\\Junk", "junk"),
        (b"\\Archive", "archive"),
        ("\\SENT", "sent"),
        ("\\drafts", "drafts"),
        (b"\\tRaSh", "trash"),
    ],
)
def test_special_use_flags(flag: bytes | str, role: str) -> None:
    flags = (b"\\HasNoChildren", flag)
    assert detect_role("Whatever/Deep/Folder", flags, "/") == role
    assert detect_role("[Gmail]/Something", flags, b"/") == role


def test_special_use_flag_beats_name() -> None:
    assert detect_role("Sent", (b"\\Trash",), "/") == "trash"
    assert detect_role("Papierkorb", (b"\\Junk",), ".") == "junk"


@pytest.mark.parametrize("flag", [b"\\All", b"\\Flagged", "\\all", b"\\Important"])
def test_views_get_no_role(flag: bytes | str) -> None:
    assert detect_role("[Gmail]/All Mail", (b"\\HasNoChildren", flag), "/") is None
    # the server said what it is: no guessing by name
    assert detect_role("Archive", (flag,), "/") is None


@pytest.mark.parametrize("flag", [b"\\Noselect", b"\\NonExistent", "\\NOSELECT"])
def test_unselectable_folders_get_no_role(flag: bytes | str) -> None:
    assert detect_role("Sent", (flag,), "/") is None
    assert detect_role("Sent", (flag, b"\\Sent"), "/") is None


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("Sent", "sent"),
        ("Sent Items", "sent"),
        ("sent messages", "sent"),
        ("SENT MAIL", "sent"),
        ("Gesendet", "sent"),
        ("Gesendete Objekte", "sent"),
        ("Envoyés", "sent"),
        ("ENVOYÉS", "sent"),
        ("Elementos enviados", "sent"),
        ("Enviados", "sent"),
        ("Posta inviata", "sent"),
        ("Verzonden", "sent"),
        ("Drafts", "drafts"),
        ("Draft", "drafts"),
        ("Entwürfe", "drafts"),
        ("Brouillons", "drafts"),
        ("Borradores", "drafts"),
        ("Bozze", "drafts"),
        ("Trash", "trash"),
        ("Deleted Messages", "trash"),
        ("Deleted Items", "trash"),
        ("Deleted", "trash"),
        ("Bin", "trash"),
        ("Papierkorb", "trash"),
        ("Corbeille", "trash"),
        ("Papelera", "trash"),
        ("Cestino", "trash"),
        ("Prullenbak", "trash"),
        ("Junk", "junk"),
        ("Spam", "junk"),
        ("Junk E-mail", "junk"),
        ("Junk Email", "junk"),
        ("Bulk Mail", "junk"),
        ("Junk-E-Mail", "junk"),
        ("Spam-Verdacht", "junk"),
        ("Courrier indésirable", "junk"),
        ("Indésirables", "junk"),
        ("Archive", "archive"),
        ("Archives", "archive"),
        ("Archiv", "archive"),
    ],
)
def test_names(name: str, role: str) -> None:
    assert detect_role(name, (b"\\HasNoChildren",), "/") == role
    assert detect_role(f"INBOX.{name}", [], ".") == role
    assert detect_role(f"INBOX/{name}", [], "/") == role
    assert detect_role(f"inbox/{name}", [], b"/") == role


def test_decomposed_unicode_names_match() -> None:
    assert detect_role("Entwu\u0308rfe", (), "/") == "drafts"  # NFD, as macOS writes it
    assert detect_role("Envoye\u0301s", (), "/") == "sent"


@pytest.mark.parametrize(
    ("path", "delimiter"),
    [
        ("Projects/Sent", "/"),
        ("Projects.Sent", "."),
        ("INBOX/Old/Trash", "/"),
        ("INBOX.Old.Trash", "."),
        ("Sent/Sub", "/"),
        ("Sentinel", "/"),
        ("Sent Stuff", "/"),
        ("My Drafts", "/"),
        ("", "/"),
    ],
)
def test_name_only_at_top_level_or_under_inbox(path: str, delimiter: str) -> None:
    assert detect_role(path, (), delimiter) is None


def test_no_delimiter_means_flat_namespace() -> None:
    assert detect_role("Sent", (), None) == "sent"
    assert detect_role("INBOX.Sent", (), None) is None  # "." is not a delimiter here
    assert detect_role("Archive", (), "") == "archive"


def test_odd_inputs_do_not_raise() -> None:
    assert detect_role("Sent", (None, 3, b"\\Sent"), "/") == "sent"  # type: ignore[arg-type]
    assert detect_role(None, (), "/") is None  # type: ignore[arg-type]


def test_assign_roles_special_use_beats_name() -> None:
    folders = [
        ("INBOX", (b"\\HasChildren",), "/"),
        ("Sent", (b"\\HasNoChildren",), "/"),
        ("Sent Items", (b"\\HasNoChildren", b"\\Sent"), "/"),
        ("Trash", (), "/"),
        ("Deleted Items", (), "/"),
        ("Projects", (), "/"),
    ]
    assert assign_roles(folders) == {
        "INBOX": "inbox",
        "Sent": None,
        "Sent Items": "sent",
        "Trash": "trash",
        "Deleted Items": None,
        "Projects": None,
    }


def test_assign_roles_name_order_then_shortest_path() -> None:
    folders = [
        ("Sent Items", (), "/"),
        ("INBOX/Sent", (), "/"),
        ("Sent", (), "/"),
        ("Papierkorb", (), "/"),
        ("INBOX/Trash", (), "/"),
        ("Deleted", (), "/"),
        ("INBOX/Junk", (), "/"),
        ("Junk", (), "/"),
    ]
    roles = assign_roles(folders)
    assert roles == {
        "Sent Items": None,
        "INBOX/Sent": None,
        "Sent": "sent",
        "Papierkorb": None,
        "INBOX/Trash": "trash",
        "Deleted": None,
        "INBOX/Junk": None,
        "Junk": "junk",
    }


def test_assign_roles_two_flags_first_wins() -> None:
    folders = [
        ("Old Trash", (b"\\Trash",), "/"),
        ("Trash", (b"\\Trash",), "/"),
        ("Bin", (), "/"),
    ]
    assert assign_roles(folders) == {"Old Trash": None, "Trash": "trash", "Bin": None}


def test_assign_roles_courier_namespace() -> None:
    folders = [
        ("INBOX", (b"\\HasChildren",), "."),
        ("INBOX.Sent", (b"\\HasNoChildren",), "."),
        ("INBOX.Drafts", (b"\\HasNoChildren",), "."),
        ("INBOX.Trash", (b"\\HasNoChildren",), "."),
        ("INBOX.spam", (b"\\HasNoChildren",), "."),
        ("INBOX.Archives.2023", (b"\\HasNoChildren",), "."),
    ]
    assert assign_roles(folders) == {
        "INBOX": "inbox",
        "INBOX.Sent": "sent",
        "INBOX.Drafts": "drafts",
        "INBOX.Trash": "trash",
        "INBOX.spam": "junk",
        "INBOX.Archives.2023": None,
    }


def test_assign_roles_gmail() -> None:
    folders = [
        ("INBOX", (b"\\HasNoChildren",), "/"),
        ("[Gmail]", (b"\\HasChildren", b"\\Noselect"), "/"),
        ("[Gmail]/All Mail", (b"\\All", b"\\HasNoChildren"), "/"),
        ("[Gmail]/Drafts", (b"\\Drafts", b"\\HasNoChildren"), "/"),
        ("[Gmail]/Important", (b"\\HasNoChildren", b"\\Important"), "/"),
        ("[Gmail]/Sent Mail", (b"\\HasNoChildren", b"\\Sent"), "/"),
        ("[Gmail]/Spam", (b"\\HasNoChildren", b"\\Junk"), "/"),
        ("[Gmail]/Starred", (b"\\Flagged", b"\\HasNoChildren"), "/"),
        ("[Gmail]/Trash", (b"\\HasNoChildren", b"\\Trash"), "/"),
        ("Archive", (b"\\HasNoChildren",), "/"),
    ]
    assert assign_roles(folders) == {
        "INBOX": "inbox",
        "[Gmail]": None,
        "[Gmail]/All Mail": None,
        "[Gmail]/Drafts": "drafts",
        "[Gmail]/Important": None,
        "[Gmail]/Sent Mail": "sent",
        "[Gmail]/Spam": "junk",
        "[Gmail]/Starred": None,
        "[Gmail]/Trash": "trash",
        "Archive": "archive",
    }


def test_assign_roles_skips_garbage_entries() -> None:
    folders = [("Sent", (), "/"), ("bad",), None, (3, (), "/"), ("Drafts", (), "/")]
    assert assign_roles(folders) == {"Sent": "sent", "Drafts": "drafts"}  # type: ignore[arg-type]
    assert assign_roles([]) == {}
