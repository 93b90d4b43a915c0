"""The next UID of a folder (RFC 3501 section 2.3.1.1), however the server tells it.

RFC 3501 requires UIDNEXT in the SELECT/EXAMINE answer and in STATUS, yet servers omit it:
Courier-IMAP 5 leaves it out of SELECT (seen on the test matrix's real Courier), Winmail Pro
too (modern-email/defects #43), and mail.163.com omits it even from STATUS (#15). Nylas'
sync-engine crashed on the same thing (its PRs #76/#78). So: SELECT's answer where given,
else the highest UID plus one, which is a lower bound of the true UIDNEXT (mail expunged at
the top leaves a gap), and a lower bound is all a watcher needs: it only asks for UIDs from
there on.
"""

from __future__ import annotations

from typing import Any

from imapclient import IMAPClient

from mailgate.adapters.imap.messages import fetch_by_uid


def of_selected(client: IMAPClient, selected: dict[bytes, Any]) -> int:
    """UIDNEXT of the folder ``client`` just selected (``selected``: the SELECT answer)."""
    given = selected.get(b"UIDNEXT")
    if given is not None:
        return int(given)
    exists = int(selected.get(b"EXISTS", 0) or 0)
    if not exists:
        return 1
    # The last message's UID: FETCH <EXISTS> (UID). (Courier answers UID SEARCH UID * with
    # nothing at all, so that is no way to ask.)
    last = fetch_by_uid(client, [exists], [b"UID"], by_sequence=True)
    return max(last, default=0) + 1


def of_status(status: dict[bytes, Any]) -> int | None:
    """UIDNEXT from a STATUS answer; None where the server left it out."""
    given = status.get(b"UIDNEXT")
    return None if given is None else int(given)
